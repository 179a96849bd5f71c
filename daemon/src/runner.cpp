// `procsup run`: the supervisor tree of a config on one event loop in the main thread. This
// file wires the loop (control socket, http, signals, the supervisor's event sink) and runs the
// daemon's life: READY=1 and STATUS=, exit_when, shutdown, and the sweep after the loop. The
// other parts of the runner: daemon_runner.hpp.
#include "daemon_runner.hpp"

#include <dirent.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "procsup/daemon/exit_policy.hpp"
#include "procsup/daemon/logging.hpp"
#include "procsup/daemon/pid_namespace.hpp"

namespace procsup::daemon {

namespace {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;

// Every pid that is our child now (any thread's), from /proc.
std::vector<pid_t> our_children() {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc/self/task");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(std::string("/proc/self/task/") + e->d_name + "/children");
    pid_t p;
    while (f >> p) out.push_back(p);
  }
  ::closedir(d);
  return out;
}

}  // namespace

int daemon_runner::run(const sigset_t& signals) {
  if (::getpid() != 1) ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  raise_fd_limit();
  notify_ = notifier::from_env();
  loop_.watch_signals(
      signals, [this](const signalfd_siginfo& si) { on_signal(si); },
      [](pid_t pid, int status) {
        log_event(spdlog::level::debug, "reaped orphan", {{"pid", pid}, {"exit", describe_wait_status(status)}});
      });

  if (!open_control()) return exit_codes::usage;
  if (!open_http()) return exit_codes::usage;
  // After the socket (it makes the cgroup subtree ours), before anything starts.
  contain_ = std::make_unique<containment>(cfg_);
  if (!contain_->swept().empty()) {
    json pids = contain_->swept();
    log_event(spdlog::level::warn, "killed what an earlier procsup with this control socket left running",
              {{"cgroup", contain_->root()}, {"pids", pids}, {"count", contain_->swept().size()}});
  }
  if (contain_->active()) {
    log_event(spdlog::level::info, "containment: a cgroup per instance", {{"cgroup", contain_->root()}});
  } else {
    log_event(spdlog::level::warn,
              "containment: process groups only (" + contain_->reason() +
                  "): what a program starts in a new session (setsid, daemons) is not stopped with it and "
                  "survives a SIGKILL of procsup; run procsup as root, under systemd with Delegate=yes, or "
                  "with pid_namespace = true");
  }
  if (!contain_->limit_error().empty() &&
      std::any_of(cfg_.programs.begin(), cfg_.programs.end(), [](const program_config& p) { return p.resources.any(); })) {
    log_event(spdlog::level::err, "cannot apply the cgroup limits of the config", {{"error", contain_->limit_error()}});
    return exit_codes::usage;
  }

  supervisor_options so;
  so.name = "procsup";
  so.policy = cfg_.supervisor.policy;
  so.intensity = cfg_.supervisor.intensity;
  so.period = cfg_.supervisor.period;
  so.loop = &loop_;
  so.log = false;
  so.emit = [this](const lifecycle_event& e) { on_event(e); };
  so.on_escalate = [this](const std::string& cause) {
    log_event(spdlog::level::critical, "giving up", {{"cause", cause}});
    metrics_.gave_up();
    notify_.status("gave up: " + cause);
    // A program that escalated hands procsup its own exit code (tini's rule), not "gave up".
    begin_shutdown(escalation_code_.value_or(exit_codes::gave_up));
  };
  sup_ = std::make_unique<supervisor>(so);

  log_event(spdlog::level::info, "procsup starting",
            {{"pid", host_pid(::getpid())}, {"pid_namespace", in_own_pid_namespace()}, {"config", cfg_.path.empty() ? "(built-in demo)" : cfg_.path},
             {"programs", cfg_.programs.size()}, {"socket", cfg_.supervisor.socket}});
  // The runner owns its programs' settings (program_registry): a reload replaces them while
  // units still refer to the old ones.
  for (const auto& p : cfg_.programs) reg_.programs.push_back({p, program_registry::entry::start_state::waiting, {}});
  for (const auto& p : reg_.programs)
    if (!hold_sockets(p.cfg)) return exit_codes::usage;  // before anything starts
  start_waiting();  // in dependency order (depends_on)
  launched_ = true;
  if (cfg_.supervisor.exit_when == exit_rule::all_done) loop_.post([this] { check_all_done(); });

  if (auto every = notify_.watchdog_interval()) schedule_watchdog(*every);
  if (opt_.exit_after)
    loop_.add_timer(*opt_.exit_after, [this] {
      log_event(spdlog::level::info, "exit-after reached: shutting down");
      begin_shutdown(exit_codes::clean);
    });
  check_ready();
  loop_.run();
  finish();
  log_event(spdlog::level::info, "procsup stopped", {{"exit_code", exit_code_}});
  return exit_code_;
}

bool daemon_runner::open_control() {
  control_fd_hooks hooks;
  hooks.added = [this](int fd) {
    loop_.watch(fd, EPOLLIN, [this, fd](std::uint32_t ev) { ctl_->on_event(fd, ev); });
  };
  hooks.interest = [this](int fd, bool readable, bool writable) {
    loop_.modify(fd, (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u));
  };
  hooks.removed = [this](int fd) {
    output_.unfollow(fd);  // a `ctl logs -f` on that connection ends (before the fd is reused)
    loop_.unwatch(fd);
  };
  // The idle timeout's timer: armed only while a connection is open.
  hooks.add_timer = [this](std::chrono::milliseconds after, std::function<void()> fn) {
    return loop_.add_timer(after, std::move(fn));
  };
  hooks.cancel_timer = [this](std::uint64_t id) { loop_.cancel_timer(id); };
  auto r = control_server::open(cfg_.supervisor.socket, [this](const json& req) { return handle(req); }, hooks);
  if (auto* err = std::get_if<control_error>(&r)) {
    log_event(spdlog::level::err, "cannot open the control socket", {{"error", err->message}});
    return false;
  }
  ctl_ = std::move(std::get<std::unique_ptr<control_server>>(r));
  const int lfd = ctl_->listen_fd();
  loop_.watch(lfd, EPOLLIN, [this, lfd](std::uint32_t) { ctl_->on_readable(lfd); });
  return true;
}

// ---- [supervisor] http (issue 16): see http_server.hpp; answers are computed on the loop

bool daemon_runner::open_http() {
  if (cfg_.supervisor.http.empty()) return true;
  auto r = http_server::open(cfg_.supervisor.http, *this, [this](std::function<void()> fn) { loop_.post(std::move(fn)); });
  if (auto* err = std::get_if<std::string>(&r)) {
    log_event(spdlog::level::err, "cannot open the http endpoint", {{"error", *err}, {"address", cfg_.supervisor.http}});
    return false;
  }
  http_ = std::move(std::get<std::unique_ptr<http_server>>(r));
  log_event(spdlog::level::info, "http listening", {{"address", http_->address()}});
  return true;
}

void daemon_runner::on_event(const lifecycle_event& e) {
  ends_procsup(e);
  svc_.on_event(e);
  metrics_.on_event(e);
  // The run's last output first, then its end.
  if (e.kind == event_kind::exited || e.kind == event_kind::crashed) output_.run_ended(e.process_id);
  // The log line of an exit, and of the restart it causes, is written once the new instance is
  // launched: building and writing it is most of procsup's own share of a restart.
  loop_.after_exit_handlers([this, e] {
    lifecycle_event shown = e;
    shown.pid = host_pid(e.pid);  // as the host sees it (pid_namespace)
    log_lifecycle_event(shown);
    // Posted: a first start's ready comes from inside spawn_program, before the instance's
    // unit is recorded (start_instance lists it first); dependents are started after that.
    if (e.kind == event_kind::ready)
      loop_.post([this, e] {
        on_instance_ready(e);
        check_ready();  // the dependents it started may all be up already
      });
    // A dependency that failed for good fails the programs waiting on it.
    if (e.kind != event_kind::ready && reg_.any_waiting()) fail_waiting_on_failed();
    check_ready();  // after the line, so "ready" follows the event that made it so
    if (!waits_.empty()) settle_waits(&e);  // ctl start / stop / restart replies
    // Posted: the lines of this event's other deferred events (its "stopped") come first.
    if (cfg_.supervisor.exit_when == exit_rule::all_done) loop_.post([this] { check_all_done(); });
  });
}

// Issue 20: an essential program that ended for good, or one that escalated, ends procsup
// with its exit code (exit_policy.hpp). Called from the event sink, before the supervisor acts.
void daemon_runner::ends_procsup(const lifecycle_event& e) {
  instance* it = reg_.find(e.process_id);
  if (it == nullptr) return;  // the supervisor's own events
  if (e.kind == event_kind::spawned) it->could_not_start = false;
  if (e.kind == event_kind::spawn_failed) it->could_not_start = true;
  if (shutting_down_) return;
  const int status = it->handle ? it->handle.info().last_exit_status : -1;
  if (e.kind == event_kind::escalated) {
    escalation_code_ = escalation_exit_code(it->prog->cfg, status, it->could_not_start);
    return;
  }
  if (auto code = essential_exit_code(it->prog->cfg, e.kind, status, it->could_not_start)) {
    const std::string id = it->id;
    const int c = *code;
    log_event(spdlog::level::warn, "essential program ended: stopping",
              {{"program", it->prog->cfg.name}, {"instance", id}, {"event", to_string(e.kind)}, {"exit_code", c}});
    // Once the supervisor has finished handling the event (it may be inside a restart).
    loop_.post([this, c] { begin_shutdown(c); });
  }
}

void daemon_runner::check_all_done() {
  // Not while the first launches are under way: a batch program may end before the next starts.
  if (!launched_ || shutting_down_ || reloading_) return;
  std::vector<process_state> states;
  for (auto& i : reg_.instances) states.push_back(i.handle ? i.handle.state() : process_state::starting);
  if (!all_ended(states)) return;
  log_event(spdlog::level::info, "every program has ended (exit_when = \"all_done\"): stopping");
  begin_shutdown(exit_codes::clean);
}

// Every instance costs procsup about five fds (pidfd, both ends of its stdout and stderr
// pipes), so the usual soft limit of 1024 (systemd's default for services) would stop it at
// ~200 instances with EMFILE. Like systemd itself, procsup raises its soft limit to the hard
// one and gives each program the limit it was started with.
void daemon_runner::raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
  const rlimit raised{rl.rlim_max, rl.rlim_max};
  if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
    log_event(spdlog::level::warn, "cannot raise the open-file limit",
              {{"soft", rl.rlim_cur}, {"hard", rl.rlim_max}, {"error", std::strerror(errno)}});
    return;
  }
  inherited_nofile_ = rlimit_setting{RLIMIT_NOFILE, rl.rlim_cur, rl.rlim_max};
  log_event(spdlog::level::debug, "raised the open-file limit", {{"from", rl.rlim_cur}, {"to", rl.rlim_max}});
}

void daemon_runner::check_ready() {
  if (!launched_) return;
  // Counting locks every instance: once READY=1 is out, only a STATUS= for systemd needs it
  // (not on every event of every restart with 1,000 instances and nobody listening).
  if (ready_sent_ && (shutting_down_ || !notify_.enabled())) return;
  int running = 0, starting = 0, failed = 0;
  for (auto& i : reg_.instances) {
    if (!i.handle) {  // being launched (start_instance lists it first)
      ++starting;
      continue;
    }
    switch (i.handle.state()) {
      case process_state::running: ++running; break;
      case process_state::starting: ++starting; break;
      case process_state::failed:
      case process_state::fatal: ++failed; break;
      default: break;
    }
  }
  if (!ready_sent_ && starting == 0 && !reg_.any_waiting()) {
    ready_sent_ = true;
    notify_.send("READY=1");
    log_event(spdlog::level::info, "ready", {{"running", running}, {"failed", failed}});
  }
  if (!shutting_down_)
    notify_.status(std::to_string(running) + " running, " + std::to_string(starting) + " starting, " +
                   std::to_string(failed) + " failed");
}

void daemon_runner::schedule_watchdog(std::chrono::microseconds every) {
  loop_.add_timer(every, [this, every] {
    notify_.watchdog();  // the loop is turning: we are healthy
    if (!shutting_down_) schedule_watchdog(every);
  });
}

void daemon_runner::on_signal(const signalfd_siginfo& si) {
  const int sig = static_cast<int>(si.ssi_signo);
  switch (sig) {
    case SIGTERM:
    case SIGINT:
    case SIGQUIT:
      log_event(spdlog::level::info, "signal received: stopping", {{"signal", signal_name(sig)}});
      begin_shutdown(exit_codes::clean);
      return;
    case SIGHUP:
      reload("SIGHUP");
      return;
    default:
      // Forwarded to every program's process group (SIGUSR1, SIGUSR2).
      log_event(spdlog::level::info, "forwarding signal", {{"signal", signal_name(sig)}});
      for (auto& i : reg_.instances)
        if (i.handle) i.handle.signal(sig);
      return;
  }
}

void daemon_runner::begin_shutdown(int code) {
  if (shutting_down_) {
    if (code == exit_codes::clean && exit_code_ == exit_codes::clean) {
      // A second request: stop waiting for graceful exits.
      log_event(spdlog::level::warn, "second stop request: killing every program");
      for (auto& i : reg_.instances)
        if (i.handle) i.handle.signal(SIGKILL);
    }
    return;
  }
  shutting_down_ = true;
  exit_code_ = code;
  notify_.stopping();
  notify_.status("stopping");
  sup_->stop_async([this] { loop_.stop(); });
}

// After the loop: nothing we started may outlive us (grandchildren re-parented to us
// included).
// Every cgroup is emptied (cgroup.kill); without cgroups, every child of ours is killed and
// the children re-parented to us by those kills are found by scanning again. Bounded: a
// process that does not die of SIGKILL (stuck in the kernel) does not keep procsup from
// exiting.
void daemon_runner::finish() {
  http_.reset();
  ctl_.reset();
  output_.flush_all();
  if (contain_) {
    auto left = contain_->finish(1000);
    if (!left.empty())
      log_event(spdlog::level::info, "killed what was left in the programs' cgroups",
                {{"pids", json(left)}, {"count", left.size()}});
  }
  const auto deadline = steady::now() + std::chrono::seconds(1);
  for (;;) {
    int status;
    while (::waitpid(-1, &status, WNOHANG) > 0) {
    }
    auto kids = our_children();
    if (kids.empty() || steady::now() >= deadline) break;
    for (pid_t k : kids) ::kill(k, SIGKILL);
    // A child's exit (SIGCHLD is blocked and queued): wait for it, bounded, and scan again.
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    const timespec tick{0, 20'000'000};
    ::sigtimedwait(&chld, nullptr, &tick);
  }
}

int run(const config& cfg, const run_options& options) {
  // What procsup was started with ignored (systemd ignores SIGPIPE in its services, nohup
  // SIGHUP) becomes the default again: a launched program would inherit it, and the launcher
  // does not reset the dispositions of procsup's children (nothing to reset: procsup catches
  // no signal, it reads them from a signalfd). Handlers a runtime installed (a sanitizer's
  // SIGSEGV handler) stay: exec resets those.
  for (int s = 1; s < NSIG; ++s) {
    struct sigaction cur {};
    if (::sigaction(s, nullptr, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_IGN)
      ::signal(s, SIG_DFL);
  }
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) sigaddset(&set, s);
  // Block before any thread exists; children get a clean mask from the launcher. SIGPIPE is
  // blocked too (not read): a write to a log pipe nobody reads any more (a restarted journald)
  // fails with EPIPE instead of killing procsup and, with it, every program.
  sigset_t blocked = set;
  sigaddset(&blocked, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &blocked, nullptr);
  try {
    daemon_runner r(cfg, options);
    return r.run(set);
  } catch (const std::exception& e) {
    log_event(spdlog::level::critical, "internal error", {{"error", e.what()}});
    return exit_codes::internal_error;
  }
}

}  // namespace procsup::daemon
