// The parent-side core of a supervised unit. See detail/unit.hpp.
#include "procsup/supervisor/detail/unit.hpp"

#include <sys/epoll.h>
#include <sys/wait.h>
#include <signal.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <fstream>
#include <iterator>

#include "procsup/shm/futex.hpp"
#include "procsup/worker/behavior.hpp"
#include "procsup/worker/main.hpp"

namespace procsup::detail {

using namespace std::chrono_literals;

namespace {
std::string as_text(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}
inline void cpu_relax() noexcept {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}
std::string ms_text(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

// Every forked child's channel region, process-wide. Never destroyed (regions may be released
// while statics go away); its chunks are unmapped as soon as they are empty.
shm::region_pool& channel_pool() {
  static auto* pool = new shm::region_pool();
  return *pool;
}
}  // namespace

// ---------------------------------------------------------------- reply_state

void reply_state::publish() {
  // release: the value/error written before is visible to whoever sees word == 1 (acquire).
  if (word.exchange(1, std::memory_order_acq_rel) == 2)
    shm::futex_wake(word, INT_MAX);
}

void reply_state::fulfill(std::span<const std::byte> body) {
  bytes.assign(body.begin(), body.end());
  publish();
}

void reply_state::fail(std::string why) {
  failed = true;
  error = std::move(why);
  publish();
}

bool reply_state::sleep(std::chrono::nanoseconds timeout) {
  const bool forever = timeout.count() < 0;
  const auto deadline = std::chrono::steady_clock::now() + (forever ? 0ns : timeout);
  for (;;) {
    std::uint32_t w = word.load(std::memory_order_acquire);
    if (w == 1) return true;
    // acq_rel CAS 0 -> 2 announces a sleeper to publish(); if it fails, re-check.
    if (w == 0 && !word.compare_exchange_weak(w, 2, std::memory_order_acq_rel)) continue;
    auto left = forever ? -1ns : deadline - std::chrono::steady_clock::now();
    if (!forever && left <= 0ns) return word.load(std::memory_order_acquire) == 1;
    // A shared futex works within one process too.
    shm::futex_wait(word, 2, std::chrono::duration_cast<std::chrono::nanoseconds>(left));
  }
}

// ---------------------------------------------------------------- unit

unit::unit(event_loop& loop, unit_spec spec) : loop_(loop), spec_(std::move(spec)) {}

unit::~unit() {
  sys::close_fd(setup_report_fd_);
  // Owners stop units before dropping them; whatever is still waiting must not hang.
  std::lock_guard lk(mu_);
  for (auto& [id, r] : inflight_.take_all()) r.state->fail("process " + spec_.id + " was destroyed");
  fail_all_locked(pending_, "process " + spec_.id + " was destroyed");
}

process_state unit::state() const {
  std::lock_guard lk(mu_);
  return state_;
}

pid_t unit::pid() const {
  std::lock_guard lk(mu_);
  return pid_;
}

process_info unit::info() const {
  std::lock_guard lk(mu_);
  process_info i;
  i.id = spec_.id;
  i.state = state_;
  i.pid = pid_;
  i.started_at = started_at_;
  i.restart_count = restarts_;
  i.last_error = last_error_;
  i.last_exit_status = last_exit_status_;
  i.on_failure = strategy_;
  return i;
}

void unit::fail_all_locked(std::deque<pending_send>& q, const std::string& why) {
  for (auto& p : q) p.state->fail(why);
  q.clear();
}

void unit::launch() {
  {
    std::lock_guard lk(mu_);
    state_ = process_state::starting;
    stopping_ = false;
  }
  kill_reason_.clear();
  {
    std::lock_guard rk(recv_mu_);
    init_error_.clear();
    handler_error_.clear();
    protocol_error_.clear();
  }
  ready_seen_ = false;

  child_setup setup = spec_.setup;
  if (spec_.cgroup) {
    setup.cgroup_procs_fd = spec_.cgroup->procs_fd();
    if (setup.cgroup_procs_fd < 0) {
      // Out of fds: not started at all rather than started outside its cgroup.
      const int e = errno;
      loop_.reap_exited();
      fail_launch(launch_error{e, "cgroup", "cannot open " + spec_.cgroup->path() + "/cgroup.procs: " + std::strerror(e)});
      return;
    }
    setup.cgroup_dir_fd = spec_.cgroup->dir_fd();  // -1: the move through cgroup.procs above
    if (spec_.cgroup->tracks_memory()) oom_kills_at_start_ = spec_.cgroup->usage().oom_kills;
  }
  std::vector<int> close_after;
  try {
    if (spec_.prepare_launch) close_after = spec_.prepare_launch(setup);
  } catch (const std::system_error& e) {
    // Out of fds for its output pipes (EMFILE): a failed start of this instance, retried by its
    // strategy, never an error of the supervisor.
    loop_.reap_exited();
    fail_launch(launch_error{e.code().value(), "pipe", e.what()});
    return;
  }
  const bool with_channel = static_cast<bool>(spec_.body) || spec_.protocol;

  std::optional<ipc::channel> chan;
  std::variant<pid_t, launch_error> r;
  try {
    // A forked child's channel comes from the pool (few mappings in the parent, so forks stay
    // fast with many children); an exec'd worker gets a memfd of its own.
    if (with_channel) chan = spec_.body ? ipc::channel::create(spec_.channel, channel_pool()) : ipc::channel::create(spec_.channel);
    if (spec_.body) {
      // The child maps its region at the parent's address and keeps the eventfd under its own
      // number.
      setup.maps.push_back(chan->region_source());
      setup.fds.emplace_back(chan->parent_eventfd(), chan->parent_eventfd());
      auto* c = &*chan;
      auto* body = &spec_.body;
      // Not waiting for the child's setup (closing the parent's other fds in it is most of the
      // start when the parent has many): the loop goes on, the setup pipe reports later.
      auto forked = launch_fork_async(setup, [c, body] {
        auto ep = c->child_end();
        return (*body)(ep);
      });
      if (auto* f = std::get_if<forked_child>(&forked)) {
        r = f->pid;
        setup_report_fd_ = f->report_fd;
      } else {
        r = std::get<launch_error>(forked);
      }
    } else {
      // The spec as it is (no copy of its argv and environment per restart), with this run's
      // setup; a protocol worker's environment also names its channel.
      const exec_spec* ex = &*spec_.exec;
      exec_spec with_channel_env;
      if (spec_.protocol) {
        setup.fds.emplace_back(chan->memfd(), worker::channel_memfd);
        setup.fds.emplace_back(chan->parent_eventfd(), worker::channel_eventfd);
        with_channel_env = *spec_.exec;
        with_channel_env.env.push_back(std::string(worker::channel_env) + "=" + std::to_string(worker::channel_memfd) +
                                   ":" + std::to_string(worker::channel_eventfd));
        ex = &with_channel_env;
      }
      // A restart: its start first, our bookkeeping after.
      r = launch_exec(*ex, setup, loop_.in_exit_handler());
    }
  } catch (const std::exception& e) {
    r = launch_error{errno, "channel", std::string("cannot create the channel: ") + e.what()};
  }
  for (int fd : close_after) sys::close_fd(fd);
  // A restart: the previous instance is reaped only now, after the new one is on its way.
  loop_.reap_exited();

  if (auto* err = std::get_if<launch_error>(&r)) {
    fail_launch(*err);
    return;
  }
  const pid_t pid = std::get<pid_t>(r);
  {
    std::lock_guard rk(recv_mu_);
    std::lock_guard lk(mu_);
    pid_ = pid;
    started_at_ = std::chrono::system_clock::now();
    started_mono_ = std::chrono::steady_clock::now();
    if (chan) {
      chan_ = std::move(chan);
      // A forked child has its mapping; an exec'd one has its own copy of the memfd.
      chan_->seal_in_parent();
      ep_ = chan_->parent_end();
      ep_valid_ = true;
      send_start_locked();
    }
  }
  if (emit) {
    // The cause says which start this is (events carry a cause for every kind).
    const char* how = spec_.body ? "forked" : spec_.protocol ? "exec'd worker" : "exec'd program";
    emit({event_kind::spawned, spec_.id, pid, std::chrono::system_clock::now(),
          std::string(how) + (restarts_ == 0 ? ", first start" : ", restart " + std::to_string(restarts_)), restarts_, {}, -1});
  }
  std::weak_ptr<unit> weak = weak_from_this();
  if (auto err = loop_.try_watch_child(pid, [weak](int status) {
        if (auto self = weak.lock()) self->on_exit(status);
      })) {
    // No pidfd for it (EMFILE): it cannot be watched, so it must not run. A failed start.
    signal_all(SIGKILL);
    ::waitpid(pid, nullptr, 0);
    {
      std::lock_guard rk(recv_mu_);
      std::lock_guard lk(mu_);
      drop_channel_locked();
      pid_ = 0;
    }
    if (setup_report_fd_ >= 0) sys::close_fd(std::exchange(setup_report_fd_, -1));
    fail_launch(launch_error{*err, "pidfd", "pidfd_open for " + spec_.id + ": " + std::strerror(*err)});
    return;
  }
  if (setup_report_fd_ >= 0)
    loop_.watch(setup_report_fd_, EPOLLIN, [weak](std::uint32_t) {
      if (auto self = weak.lock()) self->on_setup_report();
    });
  if (!with_channel && !spec_.ready_later) {
    become_ready();
    return;
  }
  arm_start_timer(spec_.start_timeout);
  if (!with_channel) return;  // ready_later: the owner calls mark_ready()
  loop_.watch(ep_.wake_fd(), EPOLLIN, [weak](std::uint32_t) {
    if (auto self = weak.lock()) self->service();
  });
  service();  // arms the wakeup for the ready frame
}

void unit::arm_start_timer(std::chrono::milliseconds after) {
  if (start_timer_) loop_.cancel_timer(std::exchange(start_timer_, 0));
  std::weak_ptr<unit> weak = weak_from_this();
  start_timer_ = loop_.add_timer(after, [weak] {
    if (auto self = weak.lock()) {
      self->start_timer_ = 0;
      self->kill_for("did not become ready within " + ms_text(self->spec_.start_timeout));
    }
  });
}

void unit::mark_ready(pid_t pid, std::string how) {
  if (this->pid() != pid || pid == 0 || state() != process_state::starting) return;
  ready_how_ = std::move(how);
  become_ready();
}

void unit::extend_start_timeout(std::chrono::milliseconds more) {
  if (state() != process_state::starting || start_timer_ == 0) return;
  arm_start_timer(more);
}

void unit::become_ready() {
  if (start_timer_) loop_.cancel_timer(std::exchange(start_timer_, 0));
  pid_t pid;
  {
    std::lock_guard lk(mu_);
    if (state_ != process_state::starting) return;
    state_ = process_state::running;
    pid = pid_;
    flush_pending_locked();
  }
  if (emit) {
    const bool worker = spec_.body || spec_.protocol;
    const std::string how = std::exchange(ready_how_, {});
    emit({event_kind::ready, spec_.id, pid, std::chrono::system_clock::now(),
          worker ? "init() finished" : how.empty() ? "exec'd" : how, restarts_, {}, -1});
  }
  if (on_ready) on_ready(*this);
  notify_started("");
  ensure_hang_timer();
  service();
}

void unit::flush_pending_locked() {
  if (state_ != process_state::running || !ep_valid_) return;
  while (!pending_.empty()) {
    auto& p = pending_.front();
    const std::uint64_t id = next_id_;
    auto st = ep_.try_send(ipc::frame_kind::request, id, p.body);
    if (st == shm::ring_status::full) return;
    if (st == shm::ring_status::ok) {
      ++next_id_;
      inflight_.add(id, std::move(p));
    } else if (st == shm::ring_status::too_large) {
      p.state->fail("request of " + std::to_string(p.body.size()) + " bytes exceeds process " + spec_.id +
                    "'s channel limit of " + std::to_string(ep_.max_body()) + " bytes");
    } else {
      return;  // corrupt: the service loop kills it
    }
    pending_.pop_front();
  }
}

std::shared_ptr<reply_state> unit::send_bytes(std::vector<std::byte> body) {
  auto st = std::make_shared<reply_state>();
  st->owner = weak_from_this();
  bool need_service = false;
  {
    std::lock_guard lk(mu_);
    switch (state_) {
      case process_state::stopped:
      case process_state::failed:
      case process_state::fatal:
      case process_state::stopping:
        st->fail("process " + spec_.id + " is " + to_string(state_) +
                 (last_error_.empty() ? std::string() : " (last error: " + last_error_ + ")"));
        return st;
      case process_state::starting:
        break;
      case process_state::running:
        if (pending_.empty() && ep_valid_) {
          const std::uint64_t id = next_id_;
          auto r = ep_.try_send(ipc::frame_kind::request, id, body);
          if (r == shm::ring_status::ok) {
            ++next_id_;
            inflight_.add(id, pending_send{std::move(body), st});  // kept in case it must be re-sent
            // Now, while the child works on it, rather than on the reply's path.
            retired_.clear();
            goto sent;
          }
          if (r == shm::ring_status::too_large) {
            st->fail("request of " + std::to_string(body.size()) + " bytes exceeds process " + spec_.id +
                     "'s channel limit of " + std::to_string(ep_.max_body()) + " bytes");
            return st;
          }
          need_service = true;  // full (or corrupt): the loop waits for space (or kills it)
        }
        break;
    }
    if (pending_.size() >= spec_.max_pending) {
      st->fail("process " + spec_.id + ": send queue is full (" + std::to_string(spec_.max_pending) +
               " requests waiting while it " + (state_ == process_state::starting ? "starts" : "is busy") + ")");
      return st;
    }
    pending_.push_back({std::move(body), st});
  }
sent:
  if (need_service && !service_posted_.exchange(true)) {
    std::weak_ptr<unit> weak = weak_from_this();
    loop_.post([weak] {
      if (auto self = weak.lock()) self->service();
    });
  }
  if (spec_.request_timeout.count() > 0 && !hang_timer_on_.load(std::memory_order_relaxed)) {
    std::weak_ptr<unit> weak = weak_from_this();
    loop_.post([weak] {
      if (auto self = weak.lock()) self->ensure_hang_timer();
    });
  }
  return st;
}

void unit::drain_locked() {
  if (!ep_valid_) return;
  for (;;) {
    ipc::message m;
    auto r = ep_.try_receive(m);
    if (r == shm::ring_status::empty) return;
    if (r != shm::ring_status::ok) {
      if (protocol_error_.empty()) protocol_error_ = "its channel is corrupt: " + ep_.error();
      return;
    }
    switch (m.kind) {
      case ipc::frame_kind::reply:
      case ipc::frame_kind::error:
      case ipc::frame_kind::rejected: {
        std::shared_ptr<reply_state> st;
        if (m.id == 0 && m.kind == ipc::frame_kind::error) {
          init_error_ = as_text(m.body);
        } else {
          std::lock_guard lk(mu_);
          if (pending_send answered; inflight_.take(m.id, answered)) {
            st = std::move(answered.state);
            // A small body is freed by the next send (off the reply's path); a large one, or any
            // once 64 wait (a stream that never takes the fast path), here.
            if (answered.body.capacity() <= 4096 && retired_.size() < 64) retired_.push_back(std::move(answered.body));
            last_answered_ = m.id;  // answered: never sent again
          }
          // An error frame says handle() threw and the instance is on its way out: sends from
          // now on wait for the next instance instead of going to the dying one.
          // (Also without a restart: such sends then fail once its exit is confirmed, naming how
          // it failed, rather than racing the dying instance.) A rejected frame fails its
          // request alone: the instance goes on serving.
          if (m.kind == ipc::frame_kind::error && state_ == process_state::running) state_ = process_state::starting;
        }
        if (st) {
          if (m.kind == ipc::frame_kind::reply) {
            st->fulfill(m.body);
          } else if (m.kind == ipc::frame_kind::rejected) {
            st->fail(as_text(m.body));
          } else {
            handler_error_ = as_text(m.body);
            st->fail(handler_error_);
          }
        } else if (m.id != 0 && protocol_error_.empty()) {
          protocol_error_ = "it replied to request " + std::to_string(m.id) + ", which is not in flight";
        }
        break;
      }
      case ipc::frame_kind::ready:
        ready_seen_.store(true, std::memory_order_release);
        break;
      case ipc::frame_kind::heartbeat:
        break;
      default:
        if (protocol_error_.empty())
          protocol_error_ = std::string("it sent a frame of kind ") + ipc::to_string(m.kind) + " to its supervisor";
        break;
    }
    ep_.release();
    if (!protocol_error_.empty()) return;
  }
}

void unit::service() {
  service_posted_.store(false, std::memory_order_relaxed);
  if (!ep_valid_) return;
  ep_.clear_wake();
  std::string broken;
  bool ready_now = false;
  {
    std::lock_guard rk(recv_mu_);
    for (;;) {
      if (!ep_valid_) return;
      drain_locked();
      if (!protocol_error_.empty()) {
        broken = protocol_error_;
        break;
      }
      if (ready_seen_.exchange(false, std::memory_order_acq_rel)) ready_now = true;
      std::size_t want_space = 0;
      bool want_read;
      {
        std::lock_guard lk(mu_);
        flush_pending_locked();
        if (!pending_.empty() && state_ == process_state::running)
          want_space = std::min(pending_.front().body.size(), ep_.max_body());
        // The loop listens for replies only when somebody waits for them in the kernel, while a
        // hang timer runs, or to catch the ready frame; a caller in get() reads the ring itself
        // (so a hot request/reply loop makes no wake-up per reply).
        want_read = (state_ == process_state::starting && !ready_now) || blocked_waiters_.load() > 0 ||
                    (spec_.request_timeout.count() > 0 && !inflight_.empty()) || !async_.empty();
      }
      if (!want_read && want_space == 0) break;
      if (ep_.arm_wakeup(want_space)) break;
      if (ep_.broken()) {
        broken = "its channel is corrupt: " + ep_.error();
        break;
      }
    }
  }
  if (!broken.empty()) {
    kill_for(broken);
    return;
  }
  if (ready_now) become_ready();
  complete_async();
}

bool unit::wait_reply(reply_state& st, std::chrono::nanoseconds timeout) {
  if (st.ready()) return true;
  if (loop_.in_loop_thread())
    throw std::logic_error("waiting for a reply on the supervisor's event-loop thread would deadlock");
  const auto t0 = std::chrono::steady_clock::now();
  const auto spin = std::min(spec_.reply_spin, timeout.count() < 0 ? spec_.reply_spin : timeout);
  if (spin.count() > 0 && recv_mu_.try_lock()) {
    std::lock_guard rk(recv_mu_, std::adopt_lock);
    while (!st.ready()) {
      drain_locked();
      if (st.ready() || !protocol_error_.empty() || !ep_valid_) break;
      if (std::chrono::steady_clock::now() - t0 >= spin) break;
      for (int i = 0; i < 8; ++i) cpu_relax();
    }
    if (ready_seen_.load() || !protocol_error_.empty()) {
      if (!service_posted_.exchange(true))
        loop_.post([weak = weak_from_this()] {
          if (auto self = weak.lock()) self->service();
        });
    }
  }
  if (st.ready()) return true;
  blocked_waiters_.fetch_add(1);
  {
    // Make sure the loop will be woken by the next reply: arm the reader, or drain what is there.
    std::lock_guard rk(recv_mu_);
    while (!st.ready() && ep_valid_) {
      drain_locked();
      if (st.ready() || !protocol_error_.empty()) break;
      if (ep_.arm_wakeup(0)) break;
    }
    if (!protocol_error_.empty() || ready_seen_.load())
      loop_.post([weak = weak_from_this()] {
        if (auto self = weak.lock()) self->service();
      });
  }
  bool ok = st.ready();
  if (!ok) {
    if (timeout.count() < 0) {
      ok = st.sleep(timeout);
    } else {
      auto left = timeout - (std::chrono::steady_clock::now() - t0);
      ok = left.count() > 0 ? st.sleep(std::chrono::duration_cast<std::chrono::nanoseconds>(left)) : st.ready();
    }
  }
  blocked_waiters_.fetch_sub(1);
  return ok;
}

void unit::ensure_hang_timer() {
  if (spec_.request_timeout.count() <= 0 || hang_timer_) return;
  {
    std::lock_guard lk(mu_);
    if (inflight_.empty() || state_ != process_state::running) {
      hang_timer_on_ = false;
      return;
    }
    hang_seen_oldest_ = inflight_.oldest();
  }
  hang_timer_on_ = true;
  hang_timer_ = loop_.add_timer(spec_.request_timeout, [weak = weak_from_this()] {
    if (auto self = weak.lock()) {
      self->hang_timer_ = 0;
      self->hang_check();
    }
  });
  service();  // listen for replies while the timer runs
}

void unit::hang_check() {
  {
    std::lock_guard rk(recv_mu_);
    drain_locked();
  }
  complete_async();
  std::uint64_t oldest = 0;
  {
    std::lock_guard lk(mu_);
    if (!inflight_.empty() && state_ == process_state::running) oldest = inflight_.oldest();
  }
  if (oldest == 0) {
    hang_timer_on_ = false;
    return;
  }
  if (oldest == hang_seen_oldest_) {
    kill_for("hung: request " + std::to_string(oldest) + " got no reply within " + ms_text(spec_.request_timeout));
    return;
  }
  ensure_hang_timer();
}

void unit::kill_for(std::string reason) {
  pid_t pid = this->pid();
  if (pid == 0) return;
  if (kill_reason_.empty()) kill_reason_ = std::move(reason);
  signal_all(SIGKILL);
}

void unit::signal_all(int sig) {
  if (sig == SIGKILL && spec_.cgroup) spec_.cgroup->kill();
  else if (spec_.cgroup) spec_.cgroup->signal(sig);
  signal(sig);
}

void unit::signal(int sig) {
  pid_t pid = this->pid();
  if (pid == 0) return;
  // The child leads its own process group (setsid): the group takes grandchildren along.
  // Once: a process gets a signal sent to its group and to itself twice when both are pending
  // at different times. The child itself if it left the group.
  if (!spec_.setup.new_session || ::kill(-pid, sig) != 0) ::kill(pid, sig);
}

std::string unit::exit_cause(int status) const {
  if (!kill_reason_.empty()) return kill_reason_;
  if (!protocol_error_.empty()) return protocol_error_;
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && spec_.cgroup && spec_.cgroup->tracks_memory() &&
      spec_.cgroup->usage().oom_kills > oom_kills_at_start_) {
    std::ifstream in(spec_.cgroup->path() + "/memory.max");
    std::string max;
    in >> max;
    return "killed by the OOM killer (memory.max " + (max.empty() ? std::string("?") : max) + ")";
  }
  const bool worker = static_cast<bool>(spec_.body) || spec_.protocol;
  if (worker && WIFEXITED(status)) {
    const int code = WEXITSTATUS(status);
    if (code == worker::exit_init_failed && !init_error_.empty()) return init_error_;
    if (code == worker::exit_handler_threw)
      return std::string("handle() threw") + (handler_error_.empty() ? "" : ": " + handler_error_);
    if (const char* what = worker::describe_exit_code(code))
      return std::string("exited with code ") + std::to_string(code) + " (" + what + ")";
  }
  return describe_wait_status(status);
}

void unit::fail_launch(const launch_error& err) {
  {
    std::lock_guard lk(mu_);
    last_error_ = err.message;
  }
  notify_started(err.message);
  if (on_launch_failed) on_launch_failed(*this, err);
  complete_async();
}

void unit::drop_channel_locked() {
  retired_.clear();
  if (ep_valid_) loop_.unwatch(ep_.wake_fd());
  ep_valid_ = false;
  ep_ = ipc::endpoint();
  chan_.reset();
}

void unit::send_start_locked() {
  next_id_ = 1;
  last_answered_ = 0;
  start_info info{spec_.id, ++instances_, restarts_, last_error_, last_exit_status_};
  // A fresh ring holds the frame unless it is tiny: shorten the texts to fit, or send an empty
  // body (the child then gets a default start_info) rather than none (it would wait for ever).
  const std::size_t room = ep_.max_body();
  auto body = worker::encode_start_info(info);
  if (body.size() > room) {
    const std::size_t over = body.size() - room;
    info.last_error.resize(info.last_error.size() > over ? info.last_error.size() - over : 0);
    body = worker::encode_start_info(info);
    if (body.size() > room) body.clear();
  }
  (void)ep_.try_send(ipc::frame_kind::start, 0, body);  // a fresh ring has room for it
}

void unit::requeue_unstarted_locked(std::map<std::uint64_t, pending_send>& lost, std::uint64_t handling, bool trusted) {
  if (lost.empty() || state_ != process_state::starting || !trusted) return;
  // An honest child handles requests in id order and answers each before it starts the next, so
  // the one it can have started is the oldest unanswered (and it published that id before
  // starting it), and every request in flight is newer than the last one it answered.
  const std::uint64_t oldest = lost.begin()->first;
  if (oldest <= last_answered_) return;
  if (handling != 0 && handling != last_answered_ && handling != oldest) return;  // not its honest word
  std::deque<pending_send> again;
  for (auto it = lost.begin(); it != lost.end();) {
    if (it->first == handling) {
      ++it;  // in progress when it died: fails with the cause (at most once)
      continue;
    }
    again.push_back(std::move(it->second));
    it = lost.erase(it);
  }
  // Ahead of the sends queued meanwhile: those were made after these (they were not in the ring).
  pending_.insert(pending_.begin(), std::make_move_iterator(again.begin()), std::make_move_iterator(again.end()));
}

void unit::on_setup_report() {
  launch_error err;
  const auto st = read_setup_report(setup_report_fd_, err);
  if (st == setup_report::pending) return;
  close_setup_report();
  if (st == setup_report::failed) setup_error_ = std::move(err);
}

void unit::close_setup_report() {
  loop_.unwatch(setup_report_fd_);
  sys::close_fd(std::exchange(setup_report_fd_, -1));
}

void unit::on_exit(int status) {
  if (start_timer_) loop_.cancel_timer(std::exchange(start_timer_, 0));
  if (stop_timer_) loop_.cancel_timer(std::exchange(stop_timer_, 0));
  if (hang_timer_) loop_.cancel_timer(std::exchange(hang_timer_, 0));
  hang_timer_on_ = false;
  // The child is gone, so its setup report (a failed step, or EOF) is in the pipe by now.
  if (setup_report_fd_ >= 0) on_setup_report();
  if (setup_report_fd_ >= 0) close_setup_report();
  if (auto err = std::exchange(setup_error_, std::nullopt)) {
    loop_.reap_exited();
    // A setup step failed: the instance never ran. Handled as a failed launch, like a fork
    // that failed (spawn_failed, then the owner's retry / give-up), not as a crash.
    {
      std::lock_guard rk(recv_mu_);
      std::lock_guard lk(mu_);
      drop_channel_locked();
      pid_ = 0;
      last_exit_status_ = status;
    }
    fail_launch(*err);
    return;
  }
  // Stragglers of its process group (grandchildren) go with it.
  pid_t dead;
  {
    std::lock_guard lk(mu_);
    dead = pid_;
  }
  if (spec_.setup.new_session && dead > 0) ::kill(-dead, SIGKILL);
  // And everything else it started, wherever it went (setsid, double fork): the cgroup.
  if (spec_.cgroup) spec_.cgroup->kill();
  // A stop is complete only once nothing of the instance is left (the SIGKILL above takes a
  // moment to land): the main process's exit alone does not say so.
  const bool leftovers = spec_.cgroup && stopping_ && spec_.cgroup->populated();

  instance_end end;
  end.wait_status = status;
  std::map<std::uint64_t, pending_send> lost;
  bool restart_after = false;  // stopped as part of a restart (request_stop for_restart)
  {
    std::lock_guard rk(recv_mu_);
    drain_locked();  // replies written before it died are good
    end.cause = exit_cause(status);
    std::lock_guard lk(mu_);
    // What the child said it was handling, and whether its channel is sound (before it goes).
    const std::uint64_t handling = ep_valid_ ? ep_.published_handling() : 0;
    const bool trusted = ep_valid_ && !ep_.broken() && protocol_error_.empty();
    drop_channel_locked();
    lost = inflight_.take_all();
    end.requested = stopping_;
    restart_after = std::exchange(restart_after_stop_, false);
    end.uptime = std::chrono::steady_clock::now() - started_mono_;
    const bool success_code =
        WIFEXITED(status) && !spec_.body && !spec_.protocol &&
        std::find(spec_.success_codes.begin(), spec_.success_codes.end(), WEXITSTATUS(status)) != spec_.success_codes.end();
    end.clean = end.requested || (success_code && kill_reason_.empty());
    pid_ = 0;
    last_exit_status_ = status;
    if (!end.clean) last_error_ = end.cause;
    // Until the owner decides, the unit is failed (or stopped); sends made now are refused or,
    // once the owner calls set_restarting(), queued.
    state_ = end.clean ? process_state::stopped : process_state::failed;
    // An owner that restarts keeps the queue open without a gap (it may still decide otherwise).
    if (!end.requested && on_end && strategy_ == strategy::restart) state_ = process_state::starting;
    // Stopped to be started again: sends queued meanwhile wait for the next instance.
    if (end.requested && restart_after) state_ = process_state::starting;
    else if (end.requested && leftovers) state_ = process_state::stopping;  // until the cgroup is empty
    stopping_ = false;
    // The requests it never started wait for the next instance; the one in progress fails.
    requeue_unstarted_locked(lost, handling, trusted);
  }
  // The event sink hears of the exit now (the zombie may still be there until a restart is
  // launched); whoever else learns of it finds the process reaped.
  if (!lost.empty() || !start_waiters_.empty() || end.requested) loop_.reap_exited();
  for (auto& [id, r] : lost) r.state->fail("process " + spec_.id + " " + end.cause);
  lifecycle_event exit_event{end.clean ? event_kind::exited : event_kind::crashed,
                             spec_.id,
                             dead,
                             std::chrono::system_clock::now(),
                             end.cause,
                             restarts_,
                             {},
                             status};
  // A stop that waits for its cgroup to empty tells of the exit once nothing is left: whoever
  // hears "exited" may take the stop as complete.
  if (emit && !(end.requested && leftovers)) emit(exit_event);
  if (!start_waiters_.empty()) notify_started(end.cause);
  auto done = std::move(stop_done_);
  stop_done_.clear();
  if (end.requested) {
    auto finish = [this, restart_after, done = std::move(done), exit_event, late = leftovers] {
      if (!restart_after) set_final(process_state::stopped, "process " + spec_.id + " was stopped");
      if (late && emit) emit(exit_event);
      complete_async();
      for (auto& f : done) f();
    };
    if (leftovers) wait_cgroup_empty(std::move(finish));
    else finish();
    return;
  }
  if (on_end) {
    on_end(*this, end);
  } else {
    set_final(end.clean ? process_state::stopped : process_state::failed,
              "process " + spec_.id + (end.clean ? " stopped: " : " failed: ") + end.cause);
  }
  complete_async();
}

void unit::send_bytes_async(std::vector<std::byte> body, async_done done) {
  auto st = send_bytes(std::move(body));
  async_.emplace_back(std::move(st), std::move(done));
  // Listen for the reply now: without async sends pending the loop may not be reading.
  service();
  complete_async();  // refused at once (stopped, queue full, too large)
}

void unit::complete_async() {
  if (async_.empty()) return;
  loop_.reap_exited();
  std::vector<std::pair<std::shared_ptr<reply_state>, async_done>> finished;
  for (auto it = async_.begin(); it != async_.end();) {
    if (it->first->ready()) {
      finished.push_back(std::move(*it));
      it = async_.erase(it);
    } else {
      ++it;
    }
  }
  // Outside the iteration: a callback may send again.
  for (auto& [st, done] : finished) {
    if (!done) continue;
    if (st->failed) done(false, st->error);
    else done(true, as_text(st->bytes));
  }
}

void unit::set_restarting() {
  std::lock_guard lk(mu_);
  state_ = process_state::starting;
}

void unit::set_final(process_state s, const std::string& why) {
  loop_.reap_exited();  // whoever sees the final state may look for the process: it is gone
  std::lock_guard lk(mu_);
  if (pid_ != 0) return;  // a new instance runs already
  state_ = s;
  fail_all_locked(pending_, why);
}

void unit::wait_cgroup_empty(std::function<void()> then) {
  const int fd = spec_.cgroup->events_fd();
  if (fd < 0 || !spec_.cgroup->populated()) {
    then();
    return;
  }
  cgroup_emptied_ = std::move(then);
  std::weak_ptr<unit> weak = weak_from_this();
  loop_.watch(fd, EPOLLPRI, [weak](std::uint32_t) {
    if (auto self = weak.lock()) self->on_cgroup_event();
  });
  // Everything in it has had its SIGKILL; a process that still does not go is stuck in the
  // kernel (uninterruptible sleep). The stop does not wait for it for ever.
  cgroup_timer_ = loop_.add_timer(spec_.shutdown_timeout, [weak] {
    if (auto self = weak.lock()) {
      self->cgroup_timer_ = 0;
      self->spec_.cgroup->kill();
      self->on_cgroup_event(true);
    }
  });
}

void unit::on_cgroup_event(bool give_up) {
  if (!cgroup_emptied_) return;
  if (!give_up && spec_.cgroup->populated()) return;  // the read re-arms EPOLLPRI
  loop_.unwatch(spec_.cgroup->events_fd());
  if (cgroup_timer_) loop_.cancel_timer(std::exchange(cgroup_timer_, 0));
  auto then = std::exchange(cgroup_emptied_, nullptr);
  then();
}

void unit::request_stop(std::function<void()> done, bool for_restart) {
  pid_t pid;
  {
    std::lock_guard lk(mu_);
    pid = pid_;
    if (for_restart) {
      // Sends wait for the next instance (queued, not given to the one shutting down).
      state_ = process_state::starting;
      if (pid != 0) {
        stopping_ = true;
        restart_after_stop_ = true;
      }
    } else if (pid == 0) {
      // A failed (or fatal) instance stays so (info() keeps saying so); anything else is now stopped.
      if (state_ != process_state::failed && state_ != process_state::fatal) state_ = process_state::stopped;
      fail_all_locked(pending_, "process " + spec_.id + " was stopped");
    } else {
      stopping_ = true;
      restart_after_stop_ = false;
      state_ = process_state::stopping;
      fail_all_locked(pending_, "process " + spec_.id + " is stopping");
    }
  }
  complete_async();  // queued sends failed above
  if (pid == 0) {
    if (done) done();
    return;
  }
  if (done) stop_done_.push_back(std::move(done));
  if (stop_timer_) return;  // a stop is already under way
  bool asked = false;
  if (ep_valid_) {
    std::lock_guard lk(mu_);
    asked = ep_.try_send(ipc::frame_kind::shutdown, 0, {}) == shm::ring_status::ok;
  }
  // Worker: shutdown frame, then SIGTERM, then SIGKILL. Program: stop_signal, then SIGKILL.
  int first = asked ? 0 : spec_.stop_signal;
  if (first) signal_all(first);
  auto weak = weak_from_this();
  stop_timer_ = loop_.add_timer(spec_.shutdown_timeout, [weak, asked] {
    auto self = weak.lock();
    if (!self) return;
    self->stop_timer_ = 0;
    if (asked) {
      self->signal_all(SIGTERM);
      self->stop_timer_ = self->loop_.add_timer(self->spec_.shutdown_timeout, [weak] {
        if (auto s = weak.lock()) {
          s->stop_timer_ = 0;
          s->signal_all(SIGKILL);
        }
      });
    } else {
      self->signal_all(SIGKILL);
    }
  });
}

}  // namespace procsup::detail
