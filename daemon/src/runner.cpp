// `procsup run`: the supervisor tree of a config on one event loop in the main thread.
#include "procsup/daemon/runner.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <iterator>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include "procsup/daemon/containment.hpp"
#include "procsup/daemon/dependency_graph.hpp"
#include "procsup/daemon/control.hpp"
#include "procsup/daemon/environment.hpp"
#include "procsup/daemon/exit_policy.hpp"
#include "procsup/daemon/exit_codes.hpp"
#include "procsup/daemon/http_server.hpp"
#include "procsup/daemon/logging.hpp"
#include "procsup/daemon/notify.hpp"
#include "procsup/daemon/output.hpp"
#include "procsup/daemon/pid_namespace.hpp"
#include "procsup/daemon/reload.hpp"
#include "procsup/daemon/services.hpp"
#include "procsup/daemon/sockets.hpp"
#include "procsup/supervisor/supervisor.hpp"

namespace procsup::daemon {

namespace {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;

restart_policy to_policy(group_policy p) {
  switch (p) {
    case group_policy::one_for_all: return restart_policy::one_for_all;
    case group_policy::rest_for_one: return restart_policy::rest_for_one;
    default: return restart_policy::one_for_one;
  }
}

strategy to_strategy(restart_strategy s) {
  switch (s) {
    case restart_strategy::stop: return strategy::stop;
    case restart_strategy::escalate: return strategy::escalate;
    default: return strategy::restart;
  }
}

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

class daemon_runner : public http_source {  // http_source: status() and metrics()
 public:
  daemon_runner(const config& cfg, const run_options& opt) : cfg_(cfg), opt_(opt) {}
  // Control connections close (hooks.removed) while output_ still exists, also when run() throws.
  ~daemon_runner() { ctl_.reset(); }

  int run(const sigset_t& signals) {
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
    so.policy = to_policy(cfg_.supervisor.policy);
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
    // The runner owns its programs' settings: a reload replaces them while units still refer to
    // the old ones (std::list: stable addresses).
    for (const auto& p : cfg_.programs) programs_.push_back(p);
    for (const auto& p : programs_) {
      if (!hold_sockets(p)) return exit_codes::usage;  // before anything starts
      waiting_.push_back(&p);
    }
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

 private:
  struct instance {
    const program_config* cfg;
    int index;
    std::string id;
    std::shared_ptr<detail::unit> unit;
    bool could_not_start = false;  // its last launch failed before the program ran
  };

  bool open_control() {
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

  void start_instance(const program_config& p, int index) {
    instance inst;
    inst.cfg = &p;
    inst.index = index;
    inst.id = p.instances > 1 ? p.name + ":" + std::to_string(index) : p.name;

    program_options o;
    o.name = inst.id;
    for (const auto& arg : p.command) o.exec.argv.push_back(expand_instance(arg, index));
    o.exec.path = o.exec.argv.at(0);
    o.exec.env = instance_environment(p, strip_notify_environment(current_environment()), index, inst.id,
                                      p.uid && ::geteuid() == 0);
    o.exec.setup.new_session = true;
    o.exec.setup.parent_death_signal = SIGKILL;
    // run() leaves no signal ignored or caught in procsup, so a child has nothing to reset
    // (~20 µs of every restart).
    o.exec.setup.reset_signal_dispositions = false;
    o.exec.setup.limits = p.limits;
    // procsup raised its own soft fd limit; a program gets the one procsup was started with,
    // unless its config says otherwise (select() and FD_SETSIZE expect 1024).
    if (inherited_nofile_ && std::none_of(p.limits.begin(), p.limits.end(),
                                          [](const rlimit_setting& l) { return l.resource == RLIMIT_NOFILE; }))
      o.exec.setup.limits.push_back(*inherited_nofile_);
    o.exec.setup.cwd = p.cwd;
    if (p.uid) {
      if (::geteuid() == 0) {
        o.exec.setup.uid = p.uid;
        o.exec.setup.gid = p.gid;
        o.exec.setup.groups = p.groups;
      } else {
        log_event(spdlog::level::warn, "not root: running as the current user",
                  {{"program", p.name}, {"user", p.user.value_or("")}});
      }
    }
    o.stop_signal = p.stop_signal;
    o.stop_timeout = p.stop_timeout;
    o.success_codes = p.success_codes;
    o.restart_on_exit = p.restart_on_exit;
    // A program's instances stop together; under one_for_one the programs do not depend on
    // each other either, so a shutdown stops them all at once (it takes the longest
    // stop_timeout, not their sum). The other policies keep the reverse start order.
    // With depends_on, every program is its own group: the reverse start order is the reverse
    // dependency order.
    const bool ordered = std::any_of(programs_.begin(), programs_.end(), [](const program_config& q) { return !q.depends_on.empty(); });
    o.stop_group = cfg_.supervisor.policy == group_policy::one_for_one && !ordered ? std::string("procsup") : p.name;
    if (contain_->active()) {
      std::string error;
      o.cgroup = contain_->instance(inst.id, p.resources, error);
      if (!o.cgroup)
        log_event(spdlog::level::warn, "[" + inst.id + "] no cgroup: process group only", {{"error", error}});
    }
    o.own_budget = true;  // a program over it goes fatal alone (issue 20)
    o.max_restarts = p.max_restarts;
    o.restart_period = p.restart_period;
    o.autostart = p.autostart;
    o.backoff = p.backoff;
    o.protocol = p.ready == readiness::protocol;
    o.ready_timeout = p.ready_timeout;
    o.request_timeout = p.hang_timeout;
    const std::string id = inst.id;
    o.prepare_launch = [this, &p, id](child_setup& s) { return output_.prepare(p, id, s); };
    if (auto held = sockets_.find(p.name); held != sockets_.end()) held->second.add_to_launch(o);
    try {
      svc_.configure(id, p, o);  // readiness rule and health check (services.cpp)
    } catch (const std::system_error& e) {
      log_event(spdlog::level::err, "[" + id + "] cannot set up its readiness rule", {{"error", e.what()}});
    }
    // Listed before the launch: a launch that fails at once already reports events about it.
    instances_.push_back(std::move(inst));
    const std::size_t at = instances_.size() - 1;
    auto unit = sup_->spawn_program(std::move(o), to_strategy(p.strategy), false);
    instances_[at].unit = unit;
    svc_.attach(id, unit);
  }

  void on_event(const lifecycle_event& e) {
    ends_procsup(e);
    svc_.on_event(e);
    metrics_.on_event(e);
    // The run's last output first, then its end.
    if (e.kind == event_kind::exited || e.kind == event_kind::crashed) output_.run_ended(e.process_id);
    // The log line of an exit, and of the restart it causes, is written once the new instance is
    // launched: building and writing it is most of procsup's own share of a restart.
    loop_.defer([this, e] {
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
      if (e.kind != event_kind::ready && !waiting_.empty()) fail_waiting_on_failed();
      check_ready();  // after the line, so "ready" follows the event that made it so
      if (!waits_.empty()) settle_waits(&e);  // ctl start / stop / restart replies
      // Posted: the lines of this event's other deferred events (its "stopped") come first.
      if (cfg_.supervisor.exit_when == exit_rule::all_done) loop_.post([this] { check_all_done(); });
    });
  }

  // Issue 20: an essential program that ended for good, or one that escalated, ends procsup
  // with its exit code (exit_policy.hpp). Called from the event sink, before the supervisor acts.
  void ends_procsup(const lifecycle_event& e) {
    auto it = std::find_if(instances_.begin(), instances_.end(), [&](const instance& i) { return i.id == e.process_id; });
    if (it == instances_.end()) return;  // the supervisor's own events
    if (e.kind == event_kind::spawned) it->could_not_start = false;
    if (e.kind == event_kind::spawn_failed) it->could_not_start = true;
    if (shutting_down_) return;
    const int status = it->unit ? it->unit->info().last_exit_status : -1;
    if (e.kind == event_kind::escalated) {
      escalation_code_ = escalation_exit_code(*it->cfg, status, it->could_not_start);
      return;
    }
    if (auto code = essential_exit_code(*it->cfg, e.kind, status, it->could_not_start)) {
      const std::string id = it->id;
      const int c = *code;
      log_event(spdlog::level::warn, "essential program ended: stopping",
                {{"program", it->cfg->name}, {"instance", id}, {"event", to_string(e.kind)}, {"exit_code", c}});
      // Once the supervisor has finished handling the event (it may be inside a restart).
      loop_.post([this, c] { begin_shutdown(c); });
    }
  }

  void check_all_done() {
    // Not while the first launches are under way: a batch program may end before the next starts.
    if (!launched_ || shutting_down_ || reloading_) return;
    std::vector<process_state> states;
    for (auto& i : instances_) states.push_back(i.unit ? i.unit->state() : process_state::starting);
    if (!all_ended(states)) return;
    log_event(spdlog::level::info, "every program has ended (exit_when = \"all_done\"): stopping");
    begin_shutdown(exit_codes::clean);
  }

  // Every instance costs procsup about five fds (pidfd, both ends of its stdout and stderr
  // pipes), so the usual soft limit of 1024 (systemd's default for services) would stop it at
  // ~200 instances with EMFILE. Like systemd itself, procsup raises its soft limit to the hard
  // one and gives each program the limit it was started with.
  void raise_fd_limit() {
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

  void check_ready() {
    if (!launched_) return;
    // Counting locks every instance: once READY=1 is out, only a STATUS= for systemd needs it
    // (not on every event of every restart with 1,000 instances and nobody listening).
    if (ready_sent_ && (shutting_down_ || !notify_.enabled())) return;
    int running = 0, starting = 0, failed = 0;
    for (auto& i : instances_) {
      if (!i.unit) {  // being launched (start_instance lists it first)
        ++starting;
        continue;
      }
      switch (i.unit->state()) {
        case process_state::running: ++running; break;
        case process_state::starting: ++starting; break;
        case process_state::failed:
        case process_state::fatal: ++failed; break;
        default: break;
      }
    }
    if (!ready_sent_ && starting == 0 && waiting_.empty()) {
      ready_sent_ = true;
      notify_.send("READY=1");
      log_event(spdlog::level::info, "ready", {{"running", running}, {"failed", failed}});
    }
    if (!shutting_down_)
      notify_.status(std::to_string(running) + " running, " + std::to_string(starting) + " starting, " +
                     std::to_string(failed) + " failed");
  }

  // ---- start order (depends_on, docs/services.md)

  // Programs with no instance that will not start by themselves: stopped by `ctl stop` while
  // waiting, or a dependency failed for good. `ctl start` starts them again.
  struct held_program {
    const program_config* cfg;
    bool failed;        // a dependency failed (else: stopped)
    std::string error;  // why, for ctl status ("a dependency failed: db: ...")
  };

  // Every instance of program `name` is ready (and it has instances).
  bool all_ready(const std::string& name) {
    if (std::any_of(waiting_.begin(), waiting_.end(), [&](const program_config* w) { return w->name == name; })) return false;
    if (find_held(name) != nullptr) return false;
    int n = 0;
    for (auto& i : instances_) {
      if (i.cfg->name != name) continue;
      if (!i.unit || i.unit->state() != process_state::running) return false;
      ++n;
    }
    return n > 0;
  }

  // Starts the waiting programs whose dependencies are all ready (again, until none is left
  // that can start: a program started here does not make another ready before its ready event).
  void start_waiting() {
    if (shutting_down_) return;
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      const program_config& p = **it;
      std::vector<std::string> missing;
      for (const auto& d : p.depends_on)
        if (!all_ready(d)) missing.push_back(d);
      if (!missing.empty()) {
        if (!launched_) log_event(spdlog::level::info, "[" + p.name + "] waiting for its dependencies", {{"depends_on", missing}});
        ++it;
        continue;
      }
      it = waiting_.erase(it);
      if (!hold_sockets(p)) continue;  // a reload's new socket cannot be had: not started
      if (!p.depends_on.empty()) log_event(spdlog::level::info, "[" + p.name + "] dependencies ready: starting", {{"depends_on", p.depends_on}});
      for (int i = 0; i < p.instances; ++i) start_instance(p, i);
      // A ctl start waiting for it: its first events came before its units were recorded.
      if (!waits_.empty()) loop_.post([this] { settle_waits(nullptr); });
    }
    fail_waiting_on_failed();
  }

  // Why program `name` will not become ready by itself (an instance failed for good, or it is
  // held as failed), or "" if it may still.
  std::string failed_for_good(const std::string& name) {
    if (const auto* h = find_held(name)) return h->failed ? h->error : std::string();
    for (auto& i : instances_) {
      if (i.cfg->name != name || !i.unit) continue;
      const auto info = i.unit->info();
      if (info.state == process_state::failed || info.state == process_state::fatal)
        return i.id + ": " + (info.last_error.empty() ? to_string(info.state) : info.last_error);
    }
    return {};
  }

  // A waiting program whose dependency failed for good would wait for ever: it is held as failed
  // instead (logged, shown in ctl status), and so are the programs waiting on it in turn.
  void fail_waiting_on_failed() {
    for (bool again = true; again && !shutting_down_;) {
      again = false;
      for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
        const program_config& p = **it;
        std::string dependency, cause;
        for (const auto& d : p.depends_on)
          if (cause = failed_for_good(d); !cause.empty()) {
            dependency = d;
            break;
          }
        if (cause.empty()) continue;
        log_event(spdlog::level::err, "[" + p.name + "] cannot start: a dependency failed",
                  {{"dependency", dependency}, {"cause", cause}});
        held_.push_back({&p, true, "a dependency failed: " + dependency + " (" + cause + ")"});
        waiting_.erase(it);
        again = true;
        if (!waits_.empty()) loop_.post([this] { settle_waits(nullptr); });  // a ctl start of it fails
        break;
      }
    }
  }

  held_program* find_held(const std::string& name) {
    for (auto& h : held_)
      if (h.cfg->name == name) return &h;
    return nullptr;
  }

  // The listening sockets of `p` (sockets = [...]), bound once and kept across its restarts;
  // false (logged, naming the address) if they cannot be bound.
  bool hold_sockets(const program_config& p) {
    auto held = sockets_.find(p.name);
    if (held != sockets_.end() && held->second.same_addresses(p.sockets)) {
      // A reload may have changed only their files' mode or owner: the bound sockets stay.
      const auto err = held->second.set_file_access(static_cast<mode_t>(p.socket_mode), p.socket_owner);
      if (!err.empty()) log_event(spdlog::level::warn, "[" + p.name + "] cannot set its sockets' owner or mode", {{"error", err}});
      return true;
    }
    if (held != sockets_.end()) sockets_.erase(held);  // a reload changed them
    if (p.sockets.empty()) return true;
    auto r = socket_set::open(p.sockets, static_cast<mode_t>(p.socket_mode), p.socket_owner);
    if (auto* err = std::get_if<std::string>(&r)) {
      log_event(spdlog::level::err, "[" + p.name + "] cannot open its sockets", {{"error", *err}});
      return false;
    }
    auto& set = sockets_.emplace(p.name, std::move(std::get<socket_set>(r))).first->second;
    for (const auto& s : set.sockets())
      log_event(spdlog::level::info, "[" + p.name + "] listening", {{"address", s.address}, {"fd", s.fd}});
    return true;
  }

  void on_instance_ready(const lifecycle_event& e) {
    start_waiting();
    if (e.restarts == 0) return;
    // A dependency that restarted is ready again: dependents with on_dependency_restart =
    // "restart" restart too (rest_for_one along that edge).
    const instance* dep = nullptr;
    for (auto& i : instances_)
      if (i.id == e.process_id) dep = &i;
    if (dep == nullptr) return;
    const std::string name = dep->cfg->name;
    for (auto& i : instances_)
      if (i.cfg->restart_with_dependency &&
          std::find(i.cfg->depends_on.begin(), i.cfg->depends_on.end(), name) != i.cfg->depends_on.end()) {
        log_event(spdlog::level::info, "[" + i.id + "] restarting: its dependency restarted", {{"dependency", e.process_id}});
        sup_->restart_child(i.id);
      }
  }

  void schedule_watchdog(std::chrono::microseconds every) {
    loop_.add_timer(every, [this, every] {
      notify_.watchdog();  // the loop is turning: we are healthy
      if (!shutting_down_) schedule_watchdog(every);
    });
  }

  void on_signal(const signalfd_siginfo& si) {
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
        for (auto& i : instances_)
          if (i.unit) i.unit->signal(sig);
        return;
    }
  }

  void begin_shutdown(int code) {
    if (shutting_down_) {
      if (code == exit_codes::clean && exit_code_ == exit_codes::clean) {
        // A second request: stop waiting for graceful exits.
        log_event(spdlog::level::warn, "second stop request: killing every program");
        for (auto& i : instances_)
          if (i.unit) i.unit->signal(SIGKILL);
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
  void finish() {
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

  json handle(const json& req) {
    const std::string cmd = req.value("cmd", "");
    if (cmd == "status") return {{"ok", true}, {"instances", status()}};
    if (cmd == "logs") {
      const std::string name = req.value("name", "");
      auto ids = match(name);
      if (ids.empty()) return {{"ok", false}, {"error", "no program or instance named \"" + name + "\""}};
      return output_.logs_command(req, ids, ctl_->current_connection(),
                                  [this](int fd, const json& line) { return ctl_ && ctl_->push(fd, line); });
    }
    if (cmd == "shutdown") {
      loop_.post([this] { begin_shutdown(exit_codes::clean); });
      return {{"ok", true}, {"message", "procsup: shutting down"}};
    }
    if (cmd == "reload") return reload("ctl reload");
    if (cmd == "send") return send_request(req);
    if (cmd == "start" || cmd == "stop" || cmd == "restart" || cmd == "signal") {
      const std::string name = req.value("name", "");
      if (cmd == "start" || cmd == "stop")
        if (const program_config* prog = program_of(name); prog != nullptr && (graph().ordered() || match(name).empty()))
          return staged_command(cmd, *prog);
      auto ids = match(name);
      if (ids.empty()) return {{"ok", false}, {"error", "no program or instance named \"" + name + "\""}};
      if (cmd != "signal") return control_command(cmd, ids);
      auto s = parse_signal(req.value("signal", ""));
      if (!s) return {{"ok", false}, {"error", "unknown signal \"" + req.value("signal", "") + "\""}};
      std::string message;
      for (const auto& id : ids) {
        sup_->signal_child(id, *s);
        message += (message.empty() ? "" : "\n") + id + ": sent " + signal_name(*s);
      }
      return {{"ok", true}, {"instances", ids}, {"message", message}};
    }
    return {{"ok", false}, {"error", "unknown command \"" + cmd + "\""}};
  }

  // ---- ctl start / stop / restart: the reply waits until every instance got there (or failed),
  // so a script's next command sees the new state, and says so: "api: restarted (pid 123)".
  // Settled from the instances' states after each of their lifecycle events (and once right
  // after the command, for an instance that is there already); a start or restart fails at the
  // first crashed / spawn_failed / stopped / escalated of that instance.

  struct command_wait {
    struct target {
      std::string id;
      pid_t old_pid = 0;
      process_state old_state = process_state::stopped;
      std::string failure;  // set by a failure event
      bool done = false;
      json result;
    };
    std::string cmd;
    std::vector<target> targets;
    control_server::deferred reply;
    std::vector<const program_config*> later;  // programs still to start / stop, in order (depends_on)
    std::vector<target> settled;               // the earlier stages' results
    bool answered = false;
  };

  // The program an instance id ("api", "api:1") belongs to, or nullptr.
  const program_config* program_of_id(const std::string& id) {
    const program_config* found = nullptr;
    for (const auto& p : programs_)
      for (int k = 0; k < p.instances; ++k)
        if (instance_id(p, k) == id) found = &p;
    return found;
  }
  bool is_waiting_id(const std::string& id) {
    const program_config* p = program_of_id(id);
    return p != nullptr && std::any_of(waiting_.begin(), waiting_.end(), [&](const program_config* w) { return w->name == p->name; });
  }
  std::string held_error(const std::string& id) {
    const program_config* p = program_of_id(id);
    const held_program* h = p != nullptr ? find_held(p->name) : nullptr;
    return h != nullptr && h->failed ? h->error : std::string();
  }

  // The program named `name` (not an instance id), or nullptr.
  const program_config* program_of(const std::string& name) {
    const program_config* found = nullptr;
    for (const auto& p : programs_)
      if (p.name == name) found = &p;  // the newest: a reload may still be replacing one
    return found;
  }

  dependency_graph graph() const {
    std::vector<dependency_graph::program_edges> edges;
    for (const auto& p : programs_)
      if (std::none_of(edges.begin(), edges.end(), [&](const auto& e) { return e.first == p.name; }))
        edges.emplace_back(p.name, p.depends_on);
    return dependency_graph(std::move(edges));
  }

  static std::string instance_id(const program_config& p, int k) {
    return p.instances > 1 ? p.name + ":" + std::to_string(k) : p.name;
  }

  // `ctl start NAME` / `ctl stop NAME` of a program: with depends_on, the programs it needs are
  // started first (each ready before the next), and the programs that need it are stopped first
  // (each down before the next); then NAME itself. One reply for all, in that order.
  json staged_command(const std::string& cmd, const program_config& prog) {
    const auto g = graph();
    const auto order = cmd == "start" ? g.start_closure(prog.name) : g.stop_closure(prog.name);
    command_wait w{cmd, {}, ctl_->defer(), {}, {}, false};
    for (const auto& name : order)
      if (const program_config* q = program_of(name)) w.later.push_back(q);
    waits_.push_back(std::move(w));
    begin_stage(waits_.back());
    loop_.defer([this] { settle_waits(nullptr); });
    return nullptr;  // deferred: answered by settle_waits
  }

  // Starts or stops the next program of a staged command (w.later's first): its instances
  // become the targets; a waiting or held program is started or stopped by name.
  void begin_stage(command_wait& w) {
    const program_config& p = *w.later.front();
    w.later.erase(w.later.begin());
    const bool waiting = std::find(waiting_.begin(), waiting_.end(), &p) != waiting_.end();
    held_program* held = find_held(p.name);
    if (waiting || held != nullptr) {
      if (w.cmd == "start" && held != nullptr) {  // back to waiting: it starts once its dependencies are ready
        held_.erase(held_.begin() + (held - held_.data()));
        waiting_.push_back(&p);
      } else if (w.cmd == "stop" && waiting) {  // stays down: it does not start by itself any more
        waiting_.erase(std::find(waiting_.begin(), waiting_.end(), &p));
        held_.push_back({&p, false, {}});
      }
      for (int k = 0; k < p.instances; ++k) {
        command_wait::target t{instance_id(p, k), 0, process_state::stopped, {}, false, {}};
        if (w.cmd == "stop")
          t.result = {{"id", t.id}, {"ok", true}, {"state", "stopped"},
                      {"message", t.id + (waiting ? ": stopped (it was waiting for its dependencies)" : ": already stopped")}};
        t.done = w.cmd == "stop";
        w.targets.push_back(std::move(t));
      }
      if (w.cmd == "start") loop_.post([this] { start_waiting(); });  // after this command's reply is set up
      return;
    }
    std::vector<std::string> ids;
    for (auto& i : instances_)
      if (i.cfg->name == p.name) ids.push_back(i.id);
    for (const auto& id : ids) {
      const auto* i = find_instance(id);
      const auto info = i && i->unit ? i->unit->info() : process_info{};
      w.targets.push_back({id, info.pid, info.state, {}, false, {}});
    }
    for (const auto& id : ids) {
      if (w.cmd == "start") sup_->start_child(id);
      else sup_->stop_child(id);
    }
  }

  json control_command(const std::string& cmd, const std::vector<std::string>& ids) {
    command_wait w{cmd, {}, ctl_->defer(), {}, {}, false};
    for (const auto& id : ids) {
      const auto* i = find_instance(id);
      const auto info = i ? i->unit->info() : process_info{};
      w.targets.push_back({id, info.pid, info.state, {}, false, {}});
    }
    waits_.push_back(std::move(w));  // before the commands: their events may come at once
    for (const auto& id : ids) {
      if (cmd == "start") sup_->start_child(id);
      else if (cmd == "stop") sup_->stop_child(id);
      else sup_->restart_child(id);
    }
    loop_.defer([this] { settle_waits(nullptr); });
    return nullptr;  // deferred: answered by settle_waits
  }

  instance* find_instance(const std::string& id) {
    for (auto& i : instances_)
      if (i.id == id) return &i;
    return nullptr;
  }

  void settle_waits(const lifecycle_event* event) {
    for (auto& w : waits_) {
      const lifecycle_event* e = event;  // the event concerns this stage's targets only
      for (bool next_stage = true; next_stage && !w.answered;) {
        next_stage = false;
        bool all = true;
        for (auto& t : w.targets) {
          if (t.done) continue;
          const bool failure = e != nullptr && e->process_id == t.id &&
                               (e->kind == event_kind::crashed || e->kind == event_kind::spawn_failed ||
                                e->kind == event_kind::stopped || e->kind == event_kind::escalated);
          if (failure && w.cmd != "stop") t.failure = e->cause.empty() ? to_string(e->kind) : e->cause;
          const auto* i = find_instance(t.id);
          if (i != nullptr && !i->unit) {  // being launched right now (start_instance lists it first)
            all = false;
            continue;
          }
          if (i == nullptr && w.cmd == "start" && is_waiting_id(t.id)) {  // starts once its dependencies are ready
            all = false;
            continue;
          }
          if (i == nullptr && w.cmd == "start" && !held_error(t.id).empty()) {
            t.result = {{"id", t.id}, {"ok", false}, {"error", t.id + ": did not start: " + held_error(t.id)}};
          } else if (i == nullptr) {
            t.result = {{"id", t.id}, {"ok", false}, {"error", t.id + ": removed by a reload"}};
          } else if (!t.failure.empty()) {
            t.result = {{"id", t.id}, {"ok", false}, {"error", t.id + ": did not start: " + t.failure}};
          } else {
            const auto info = i->unit->info();
            const bool running = info.state == process_state::running && info.pid != 0;
            // Down for good: no process and none on its way (stopped, failed, or any later such state).
            auto down = [](process_state st, pid_t pid) {
              return pid == 0 && st != process_state::starting && st != process_state::running &&
                     st != process_state::stopping;
            };
            if (w.cmd == "stop" && down(info.state, info.pid))
              t.result = {{"id", t.id}, {"ok", true}, {"state", to_string(info.state)},
                          {"message", t.id + (down(t.old_state, t.old_pid) ? ": already stopped" : ": stopped")}};
            else if (w.cmd == "start" && running)
              t.result = {{"id", t.id}, {"ok", true}, {"pid", info.pid}, {"state", "running"},
                          {"message", t.id + (info.pid == t.old_pid ? ": already running" : ": started") + " (pid " +
                                          std::to_string(info.pid) + ")"}};
            else if (w.cmd == "restart" && running && info.pid != t.old_pid)
              t.result = {{"id", t.id}, {"ok", true}, {"pid", info.pid}, {"state", "running"},
                          {"message", t.id + ": restarted (pid " + std::to_string(info.pid) + ")"}};
          }
          t.done = !t.result.is_null();
          all = all && t.done;
        }
        if (!all) continue;
        // A staged command (depends_on): the next program once this one is there; a start stops at
        // the first that failed (what needs it would not start).
        const bool stage_failed = std::any_of(w.targets.begin(), w.targets.end(), [](const auto& t) { return !t.result.value("ok", false); });
        if (!w.later.empty() && !(w.cmd == "start" && stage_failed) && !shutting_down_) {
          for (auto& t : w.targets) w.settled.push_back(std::move(t));
          w.targets.clear();
          begin_stage(w);
          next_stage = true;  // settle what is there already (a stage that has nothing to do)
          e = nullptr;
          continue;
        }
        if (!w.settled.empty()) {
          w.settled.insert(w.settled.end(), std::make_move_iterator(w.targets.begin()), std::make_move_iterator(w.targets.end()));
          w.targets = std::move(w.settled);
          w.settled.clear();
        }
        json results = json::array();
        json ids = json::array();
        std::string message, error;
        bool ok = true;
        for (auto& t : w.targets) {
          ids.push_back(t.id);
          const bool good = t.result.value("ok", false);
          ok = ok && good;
          std::string& text = good ? message : error;
          text += (text.empty() ? "" : "\n") + t.result.value(good ? "message" : "error", "");
          results.push_back(std::move(t.result));
        }
        json reply = {{"ok", ok}, {"instances", ids}, {"results", results}, {"message", message}};
        if (!ok) reply["error"] = error;
        if (ctl_) ctl_->complete(w.reply, reply);
        w.answered = true;  // erased below
      }
    }
    std::erase_if(waits_, [](const command_wait& w) { return w.answered; });
  }

  // ---- live reload (issue 5): re-read the config file, apply the difference

  json reload(const std::string& origin) {
    if (cfg_.path.empty()) {
      log_event(spdlog::level::warn, "reload: the built-in demo has no config file to re-read; ignored",
                {{"origin", origin}});
      return {{"ok", false},
              {"error", "the built-in demo cannot be reloaded (it has no config file): run procsup with a CONFIG"}};
    }
    if (shutting_down_) return {{"ok", false}, {"error", "procsup is shutting down"}};
    if (reloading_) return {{"ok", false}, {"error", "a reload is still being applied; try again"}};
    log_event(spdlog::level::info, "reloading", {{"origin", origin}, {"config", cfg_.path}});
    notify_.reloading();
    auto loaded = load_config(cfg_.path);
    if (auto* errors = std::get_if<std::vector<config_error>>(&loaded)) {
      json lines = json::array();
      for (const auto& e : *errors) {
        lines.push_back(e.to_string());
        log_event(spdlog::level::err, "reload: " + e.to_string());
      }
      log_event(spdlog::level::err, "reload rejected: invalid config, nothing changed", {{"errors", errors->size()}});
      notify_.ready();
      return {{"ok", false}, {"error", "invalid config " + cfg_.path + ", nothing changed"}, {"errors", lines}};
    }
    config next = std::get<config>(std::move(loaded));
    cfg_.supervisor.exit_when = next.supervisor.exit_when;  // read at every end of a program

    std::vector<const program_config*> running;
    for (const auto& p : programs_) running.push_back(&p);
    const reload_plan plan = plan_reload(cfg_.supervisor, running, next);
    for (const auto& note : plan.supervisor_notes)
      log_event(plan.socket_changed && note.rfind("socket", 0) == 0 ? spdlog::level::warn : spdlog::level::info,
                "reload: [supervisor] " + note);
    if (plan.limits_changed) {
      cfg_.supervisor.policy = next.supervisor.policy;
      cfg_.supervisor.intensity = next.supervisor.intensity;
      cfg_.supervisor.period = next.supervisor.period;
      sup_->set_restart_limits(to_policy(next.supervisor.policy), next.supervisor.intensity, next.supervisor.period);
    }
    auto in_next = [&next](const std::string& name) -> const program_config& {
      return *std::find_if(next.programs.begin(), next.programs.end(),
                           [&](const program_config& q) { return q.name == name; });
    };

    // Stop first (removed, changed, surplus instances), then start: a changed program's new
    // instances reuse the ids of the old ones, so these must be gone from the supervisor first.
    std::vector<std::string> to_remove;  // instance ids
    for (const auto& i : instances_) {
      const std::string& name = i.cfg->name;
      const bool drop = std::find(plan.removed.begin(), plan.removed.end(), name) != plan.removed.end() ||
                        std::find(plan.changed.begin(), plan.changed.end(), name) != plan.changed.end();
      const bool surplus = std::find(plan.resized.begin(), plan.resized.end(), name) != plan.resized.end() &&
                           i.index >= in_next(name).instances;
      if (drop || surplus) to_remove.push_back(i.id);
    }
    // Untouched and resized programs keep their settings object (units refer to it); only its
    // instance count and line change.
    std::vector<std::pair<program_config*, int>> grow;  // program, first new index
    for (auto& p : programs_) {
      const bool keep = std::find(plan.unchanged.begin(), plan.unchanged.end(), p.name) != plan.unchanged.end() ||
                        std::find(plan.resized.begin(), plan.resized.end(), p.name) != plan.resized.end();
      if (!keep) continue;
      const program_config& q = in_next(p.name);
      if (q.instances > p.instances) grow.emplace_back(&p, p.instances);
      p.instances = q.instances;
      p.line = q.line;
    }
    std::vector<program_config> fresh;  // added and changed, in the new file's order
    for (const auto& q : next.programs)
      if (std::find(plan.added.begin(), plan.added.end(), q.name) != plan.added.end() ||
          std::find(plan.changed.begin(), plan.changed.end(), q.name) != plan.changed.end())
        fresh.push_back(q);
    std::vector<std::string> gone = plan.removed;
    gone.insert(gone.end(), plan.changed.begin(), plan.changed.end());

    log_event(spdlog::level::info, "reload accepted", {{"changes", plan.summary()}});
    reloading_ = true;
    auto left = std::make_shared<std::size_t>(to_remove.size() + 1);
    auto step = [this, left, grow, fresh = std::move(fresh), gone = std::move(gone), summary = plan.summary(),
                 plan_removed = plan.removed] {
      if (--*left != 0) return;
      // Every instance to remove is gone: their settings objects are unreferenced now.
      waiting_.erase(std::remove_if(waiting_.begin(), waiting_.end(),
                                    [&](const program_config* w) { return std::find(gone.begin(), gone.end(), w->name) != gone.end(); }),
                     waiting_.end());
      std::erase_if(held_, [&](const held_program& h) { return std::find(gone.begin(), gone.end(), h.cfg->name) != gone.end(); });
      for (const auto& name : plan_removed) sockets_.erase(name);
      programs_.remove_if([&](const program_config& p) {
        return std::find(gone.begin(), gone.end(), p.name) != gone.end() &&
               std::none_of(instances_.begin(), instances_.end(), [&](const instance& i) { return i.cfg == &p; });
      });
      if (!shutting_down_) {
        for (auto [p, from] : grow)
          if (std::find(waiting_.begin(), waiting_.end(), p) == waiting_.end())  // else started in full later
            for (int i = from; i < p->instances; ++i) start_instance(*p, i);
        for (const auto& q : fresh) {
          programs_.push_back(q);
          waiting_.push_back(&programs_.back());
        }
        start_waiting();
      }
      reloading_ = false;
      log_event(spdlog::level::info, "reload applied", {{"changes", summary}});
      notify_.ready();
      check_ready();
    };
    for (const auto& id : to_remove) {
      log_event(spdlog::level::info, "reload: stopping", {{"instance", id}});
      auto forget = [this, id, step] {
        output_.release(id);
        contain_->release(id);
        svc_.release(id);
        instances_.erase(std::remove_if(instances_.begin(), instances_.end(),
                                        [&](const instance& i) { return i.id == id; }),
                         instances_.end());
        if (!waits_.empty()) settle_waits(nullptr);  // a ctl start / stop / restart of it ends here
        step();
      };
      if (!sup_->remove_child(id, forget)) forget();
    }
    step();  // the "+ 1": nothing to stop, or every stop already done
    json reply = {{"ok", true},           {"message", "reload: " + plan.summary()},
                  {"added", plan.added},  {"removed", plan.removed},
                  {"changed", plan.changed}, {"resized", plan.resized},
                  {"unchanged", plan.unchanged}};
    if (!plan.supervisor_notes.empty()) reply["supervisor"] = plan.supervisor_notes;
    return reply;
  }

  // ---- `ctl send NAME JSON`: one request to a protocol worker, answered when its reply is in

  json send_request(const json& req) {
    const std::string name = req.value("name", "");
    instance* target = nullptr;
    for (auto& i : instances_)
      if (i.id == name) target = &i;
    if (target == nullptr) {
      // A program name: its first running instance, else its first one (which says why not).
      for (auto& i : instances_)
        if (i.cfg->name == name && (target == nullptr || (target->unit->state() != process_state::running &&
                                                          i.unit->state() == process_state::running)))
          target = &i;
    }
    if (target == nullptr) return {{"ok", false}, {"error", "no program or instance named \"" + name + "\""}};
    const std::string id = target->id;
    if (target->cfg->ready != readiness::protocol)
      return {{"ok", false},
              {"error", id + " is not a protocol worker (ready = \"" + std::string(to_string(target->cfg->ready)) +
                            "\"): only programs with ready = \"protocol\" take requests"}};
    const auto info = target->unit->info();
    if (info.state != process_state::running && info.state != process_state::starting)
      return {{"ok", false},
              {"error", id + " is not running (" + to_string(info.state) + ")" +
                            (info.last_error.empty() ? "" : "; last error: " + info.last_error)}};
    const std::string text = req.contains("body") ? req["body"].dump() : "null";
    std::vector<std::byte> bytes(text.size());
    std::memcpy(bytes.data(), text.data(), text.size());
    const auto later = ctl_->defer();
    target->unit->send_bytes_async(std::move(bytes), [this, later, id](bool ok, std::string body) {
      if (!ctl_) return;
      if (!ok) {
        ctl_->complete(later, {{"ok", false}, {"instance", id}, {"error", body}});
        return;
      }
      json reply = json::parse(body, nullptr, false);
      json out = {{"ok", true}, {"instance", id}};
      if (reply.is_discarded()) out["reply_text"] = body;  // not JSON: passed on as text
      else out["reply"] = std::move(reply);
      ctl_->complete(later, out);
    });
    return nullptr;  // deferred: answered by the callback
  }

  std::vector<std::string> match(const std::string& name) {
    std::vector<std::string> ids;
    for (auto& i : instances_)
      if (i.id == name || i.cfg->name == name) ids.push_back(i.id);
    return ids;
  }

  json status() {
    json arr = json::array();
    const auto now = std::chrono::system_clock::now();
    for (auto& i : instances_) {
      auto info = i.unit->info();
      json o = {{"name", i.cfg->name},
                {"instance", i.index},
                {"id", i.id},
                {"pid", info.pid ? json(host_pid(info.pid)) : json()},
                {"state", to_string(info.state)},
                {"restarts", info.restart_count}};
      if (info.pid && info.state == process_state::running)
        o["uptime_s"] = std::chrono::duration<double>(now - info.started_at).count();
      else
        o["uptime_s"] = nullptr;
      const int st = info.last_exit_status;
      if (st < 0) o["last_exit"] = nullptr;
      else if (WIFEXITED(st)) o["last_exit"] = {{"code", WEXITSTATUS(st)}};
      else if (WIFSIGNALED(st)) o["last_exit"] = {{"signal", procsup::signal_name(WTERMSIG(st))}};
      if (!info.last_error.empty()) o["last_error"] = info.last_error;
      add_usage(o, i.id, info.pid);
      svc_.describe(i.id, o);
      arr.push_back(std::move(o));
    }
    // Programs not started yet: waiting for their dependencies (depends_on).
    for (const program_config* w : waiting_) {
      json deps = json::array();
      for (const auto& d : w->depends_on)
        if (!all_ready(d)) deps.push_back(d);
      for (int k = 0; k < w->instances; ++k)
        arr.push_back({{"name", w->name}, {"instance", k}, {"id", w->instances > 1 ? w->name + ":" + std::to_string(k) : w->name},
                       {"pid", nullptr}, {"state", "waiting"}, {"restarts", 0}, {"uptime_s", nullptr},
                       {"last_exit", nullptr}, {"ready", false}, {"waiting_for", deps}});
    }
    // Programs held down: stopped while waiting, or a dependency failed.
    for (const auto& h : held_)
      for (int k = 0; k < h.cfg->instances; ++k) {
        json o = {{"name", h.cfg->name}, {"instance", k}, {"id", instance_id(*h.cfg, k)}, {"pid", nullptr},
                  {"state", h.failed ? "failed" : "stopped"}, {"restarts", 0}, {"uptime_s", nullptr},
                  {"last_exit", nullptr}, {"ready", false}};
        if (h.failed) o["last_error"] = h.error;
        arr.push_back(std::move(o));
      }
    return arr;
  }

  // Memory, CPU time and processes of an instance: from its cgroup (everything it started),
  // else from /proc for its main process alone.
  void add_usage(json& o, const std::string& id, pid_t pid) {
    if (auto cg = contain_ ? contain_->find(id) : nullptr) {
      const auto u = cg->usage();
      o["cgroup"] = cg->path();
      o["pids"] = u.pids;
      if (u.cpu_seconds) o["cpu_seconds"] = *u.cpu_seconds;
      if (u.memory_bytes) {
        o["memory_bytes"] = *u.memory_bytes;
        return;
      }
      std::uint64_t rss = 0;
      for (pid_t p : cg->pids()) rss += proc_rss(p);
      if (u.pids > 0) o["memory_bytes"] = rss;
      return;
    }
    if (pid <= 0) return;
    o["pids"] = 1;
    o["memory_bytes"] = proc_rss(pid);
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');
    if (close == std::string::npos) return;
    std::istringstream rest(text.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int k = 3; k <= 15 && rest >> field; ++k) {  // fields 14 and 15: utime, stime (ticks)
      if (k == 14) utime = std::stoull(field);
      if (k == 15) stime = std::stoull(field);
    }
    o["cpu_seconds"] = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }

  static std::uint64_t proc_rss(pid_t pid) {
    std::ifstream st("/proc/" + std::to_string(pid) + "/status");
    std::string key;
    while (st >> key) {
      if (key == "VmRSS:") {
        std::uint64_t kb = 0;
        st >> kb;
        return kb * 1024;
      }
      st.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
    }
    return 0;
  }

  config cfg_;  // a copy: reload updates its [supervisor] settings
  run_options opt_;
  std::list<program_config> programs_;  // what instances_ run (see run())
  bool reloading_ = false;              // a reload is stopping / starting programs
  event_loop loop_;
  notifier notify_;
  std::unique_ptr<control_server> ctl_;
  std::unique_ptr<containment> contain_;  // before sup_: units hold their cgroups
  services svc_{loop_};                   // before sup_: units' launches and events use it
  std::unique_ptr<supervisor> sup_;
  std::vector<instance> instances_;
  std::vector<command_wait> waits_;  // ctl start / stop / restart not answered yet
  std::vector<const program_config*> waiting_;  // not started yet: a dependency is not ready
  std::vector<held_program> held_;              // not started and not waiting (see held_program)
  std::map<std::string, socket_set> sockets_;   // program name -> its held listening sockets
  output_router output_{loop_};
  std::optional<rlimit_setting> inherited_nofile_;  // the fd limit procsup was started with
  int exit_code_ = exit_codes::clean;
  std::optional<int> escalation_code_;  // set when a program escalated (see ends_procsup)
  bool shutting_down_ = false;
  bool ready_sent_ = false;
  bool launched_ = false;  // every instance has been launched once (READY=1 waits for that)
  metrics_recorder metrics_;
  std::unique_ptr<http_server> http_;  // last: its thread is gone before anything it asks for

  // ---- [supervisor] http (issue 16): see http_server.hpp; answers are computed on the loop

  bool open_http() {
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

  // Lean (no JSON, no file reads): a scrape every second of 1,000 instances must stay cheap.
  metrics_snapshot metrics() override {
    metrics_snapshot s;
    s.instances.reserve(instances_.size());
    for (auto& i : instances_) {
      const auto info = i.unit->info();
      instance_sample m;
      m.program = i.cfg->name;
      m.index = i.index;
      m.id = i.id;
      m.state = info.state;
      m.up = info.pid != 0;
      m.restarts = info.restart_count;
      if (info.pid && info.state == process_state::running)
        m.start_time_seconds = std::chrono::duration<double>(info.started_at.time_since_epoch()).count();
      m.pid = info.pid;
      if (contain_) m.cgroup = contain_->find(i.id);  // its usage is read on the HTTP thread
      s.instances.push_back(std::move(m));
    }
    s.exits = metrics_.exits();
    s.restart_latency = metrics_.restart_latency();
    s.gave_up = metrics_.has_given_up();
    s.shutting_down = shutting_down_;
    return s;
  }
};

}  // namespace

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
