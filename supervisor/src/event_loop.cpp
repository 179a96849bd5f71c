// The event loop: epoll over fds; timers on one timerfd; pidfds for children; signalfd for the
// daemon. See event_loop.hpp.
#include "procsup/supervisor/event_loop.hpp"

#include "procsup/supervisor/launcher.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>
#include <utility>

namespace procsup {

namespace {
// glibc 2.36's <sys/pidfd.h> lacks extern "C" (its declarations get C++ linkage): call the
// syscall directly.
int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
}  // namespace

event_loop::event_loop() {
  epoll_.reset(sys::check("epoll_create1", [] { return ::epoll_create1(EPOLL_CLOEXEC); }));
  wake_.reset(sys::check("eventfd", [] { return ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }));
  timerfd_.reset(sys::check("timerfd_create", [] {
    return ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  }));
  loop_thread_id_ = std::this_thread::get_id();
  watch(wake_.get(), EPOLLIN, [this](std::uint32_t) {
    std::uint64_t v;
    (void)::read(wake_.get(), &v, sizeof v);
    run_posted();
  });
  watch(timerfd_.get(), EPOLLIN, [this](std::uint32_t) {
    std::uint64_t v;
    (void)::read(timerfd_.get(), &v, sizeof v);
    armed_for_ = {};
    run_timers();
  });
}

event_loop::~event_loop() {
  if (running_thread_) stop();
  for (auto& [pid, c] : children_) sys::close_fd(c.pidfd);
  sys::close_fd(exited_pidfd_);
}

bool event_loop::in_loop_thread() const noexcept { return std::this_thread::get_id() == loop_thread_id_; }

void event_loop::post(std::function<void()> fn) {
  {
    std::lock_guard lk(posted_mu_);
    posted_.push_back(std::move(fn));
  }
  std::uint64_t one = 1;
  (void)sys::retry_eintr([&] { return ::write(wake_.get(), &one, sizeof one); });
}

void event_loop::run_posted() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lk(posted_mu_);
    batch.swap(posted_);
  }
  for (auto& fn : batch) fn();
}

void event_loop::run() {
  loop_thread_id_ = std::this_thread::get_id();
  reserve_launch_fds();  // the loop's thread launches the children: its fd slots while fds are few
  stop_requested_ = false;
  while (!stop_requested_) run_once(-1);
  run_posted();  // whoever posted and waits must not hang
}

void event_loop::start_thread() {
  if (running_thread_) return;
  running_thread_ = true;
  std::promise<void> started;
  auto f = started.get_future();
  thread_ = std::thread([this, &started] {
    loop_thread_id_ = std::this_thread::get_id();
    reserve_launch_fds();
    started.set_value();
    while (!stop_requested_) run_once(-1);
    run_posted();
  });
  f.wait();
}

void event_loop::stop() {
  if (running_thread_ && !in_loop_thread()) {
    post([this] { stop_requested_ = true; });
    thread_.join();
    running_thread_ = false;
    loop_thread_id_ = std::this_thread::get_id();
  } else {
    stop_requested_ = true;
  }
}

void event_loop::run_once(int timeout_ms) {
  epoll_event evs[64];
  int n = ::epoll_wait(epoll_.get(), evs, 64, timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return;
    throw std::system_error(errno, std::generic_category(), "epoll_wait");
  }
  for (int i = 0; i < n; ++i) {
    int fd = evs[i].data.fd;
    auto it = handlers_.find(fd);
    if (it == handlers_.end()) continue;  // unwatched by an earlier handler in this batch
    auto handler = it->second;            // a copy: the handler may unwatch itself
    handler(evs[i].events);
  }
}

void event_loop::watch(int fd, std::uint32_t events, fd_handler handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  bool existed = handlers_.count(fd) != 0;
  sys::check("epoll_ctl", [&] { return ::epoll_ctl(epoll_.get(), existed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev); });
  handlers_[fd] = std::move(handler);
}

void event_loop::modify(int fd, std::uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  sys::check("epoll_ctl(MOD)", [&] { return ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev); });
}

void event_loop::unwatch(int fd) {
  if (handlers_.erase(fd) != 0) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

event_loop::timer_id event_loop::add_timer(clock::duration after, std::function<void()> fn) {
  const timer_id id = next_timer_++;
  auto it = timers_.emplace(clock::now() + after, timer{id, std::move(fn)});
  timer_index_[id] = it;
  arm_timerfd();
  return id;
}

void event_loop::cancel_timer(timer_id id) {
  auto it = timer_index_.find(id);
  if (it == timer_index_.end()) return;
  timers_.erase(it->second);
  timer_index_.erase(it);
  arm_timerfd();
}

void event_loop::arm_timerfd() {
  itimerspec spec{};
  if (timers_.empty()) {
    if (armed_for_ == clock::time_point{}) return;
    armed_for_ = {};
  } else {
    const auto when = timers_.begin()->first;
    if (when == armed_for_) return;
    armed_for_ = when;
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count();
    if (ns <= 0) ns = 1;
    spec.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    spec.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  }
  // steady_clock is CLOCK_MONOTONIC on Linux, so its time points are absolute timerfd times.
  ::timerfd_settime(timerfd_.get(), TFD_TIMER_ABSTIME, &spec, nullptr);
}

void event_loop::run_timers() {
  const auto now = clock::now();
  while (!timers_.empty() && timers_.begin()->first <= now) {
    auto node = timers_.extract(timers_.begin());
    timer_index_.erase(node.mapped().id);
    node.mapped().fn();
  }
  arm_timerfd();
}

void exit_context::reap_now() { loop_.reap_exited(); }
void exit_context::defer(std::function<void()> fn) { loop_.after_exit_handlers(std::move(fn)); }

void event_loop::watch_child(pid_t pid, exit_handler on_exit) {
  if (auto err = try_watch_child(pid, [h = std::move(on_exit)](int status, exit_context&) { h(status); }))
    throw std::system_error(*err, std::generic_category(), "pidfd_open(" + std::to_string(pid) + ")");
}

std::optional<int> event_loop::try_watch_child(pid_t pid, exit_handler_with_context on_exit) {
  int fd = pidfd_open(pid);
  if (fd < 0) {
    const int error = errno;
    // Already reaped elsewhere or gone: report what we can.
    int status = 0;
    if (error != EMFILE && error != ENFILE && error != ENOMEM && ::waitpid(pid, &status, WNOHANG) == pid) {
      exit_context ctx(*this);
      on_exit(status, ctx);
      return std::nullopt;
    }
    return error;
  }
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  children_[pid] = child{fd, std::move(on_exit)};
  watch(fd, EPOLLIN, [this, pid, fd](std::uint32_t) { on_pidfd(pid, fd); });
  return std::nullopt;
}

void event_loop::forget_child(pid_t pid) {
  auto it = children_.find(pid);
  if (it == children_.end()) return;
  unwatch(it->second.pidfd);
  sys::close_fd(it->second.pidfd);
  children_.erase(it);
}

void event_loop::on_pidfd(pid_t pid, int fd) {
  // WNOWAIT: the status now, the reap when the handler says so or returns (reap_exited()).
  siginfo_t info{};
  int r = sys::retry_eintr([&] {
    return ::waitid(static_cast<idtype_t>(3 /* P_PIDFD, Linux 5.4 */), static_cast<id_t>(fd), &info,
                    WEXITED | WNOHANG | WNOWAIT);
  });
  if (r == -1) {
    // ECHILD: reaped by reap_all() already, which dispatched it.
    if (errno == ECHILD) forget_child(pid);
    return;
  }
  if (info.si_pid == 0) return;  // not yet
  int status = info.si_code == CLD_EXITED ? W_EXITCODE(info.si_status, 0) : info.si_status;
  if (info.si_code == CLD_DUMPED) status |= 0x80;
  unreaped_ = pid;
  dispatch_exit(pid, status);
}

// `pid` has exited (reaped by reap_all(), or still a zombie from on_pidfd()): its handler runs,
// the zombie is reaped if the handler did not, then what the handler deferred runs.
void event_loop::dispatch_exit(pid_t pid, int status) {
  auto it = children_.find(pid);
  if (it == children_.end()) {
    reap_exited();
    if (on_orphan_) on_orphan_(pid, status);
    return;
  }
  auto handler = std::move(it->second.on_exit);
  // Out of the tables now (the handler may watch a new child), but the pidfd is closed with the
  // reap (reap_exited()): that close, and its removal from epoll, are not on a restart's path.
  close_exited_pidfd();  // a nested exit's (not expected)
  exited_pidfd_ = it->second.pidfd;
  handlers_.erase(exited_pidfd_);
  children_.erase(it);
  ++exit_depth_;
  auto finish = [this] {
    reap_exited();
    if (--exit_depth_ == 0) run_deferred();
  };
  exit_context ctx(*this);
  try {
    handler(status, ctx);
  } catch (...) {
    finish();
    throw;
  }
  finish();
}

void event_loop::reap_exited() {
  if (unreaped_ != 0) {
    const pid_t pid = std::exchange(unreaped_, 0);
    sys::retry_eintr([&] { return ::waitpid(pid, nullptr, WNOHANG); });
  }
  close_exited_pidfd();
}

void event_loop::close_exited_pidfd() {
  if (exited_pidfd_ < 0) return;
  const int fd = std::exchange(exited_pidfd_, -1);
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  sys::close_fd(fd);
}

void event_loop::after_exit_handlers(std::function<void()> fn) {
  if (exit_depth_ > 0) {
    deferred_.push_back(std::move(fn));
  } else {
    fn();
  }
}

void event_loop::run_deferred() {
  // What these run defers runs at once (exit_depth_ is 0), so the order stays as deferred.
  auto batch = std::move(deferred_);
  deferred_.clear();
  for (auto& fn : batch) fn();
}

void event_loop::watch_signals(const sigset_t& signals, std::function<void(const signalfd_siginfo&)> handler,
                               std::function<void(pid_t, int)> orphan) {
  signalfd_.reset(sys::check("signalfd", [&] { return ::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK); }));
  on_signal_ = std::move(handler);
  on_orphan_ = std::move(orphan);
  reap_any_ = sigismember(&signals, SIGCHLD) == 1;
  watch(signalfd_.get(), EPOLLIN, [this](std::uint32_t) {
    signalfd_siginfo si{};
    bool chld = false;
    while (::read(signalfd_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
      if (si.ssi_signo == SIGCHLD) {
        chld = true;  // signalfd coalesces: one record may stand for many exits
        continue;
      }
      if (on_signal_) on_signal_(si);
    }
    if (chld && reap_any_) reap_all();
  });
  if (reap_any_) reap_all();  // exits that happened before the signalfd existed
}

void event_loop::reap_all() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;  // 0: none exited; -1 ECHILD: no children at all
    dispatch_exit(pid, status);
  }
}

}  // namespace procsup
