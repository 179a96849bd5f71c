// One instance's launch: the program_options of instance `index` of a program (argv, env, ids,
// limits, user, stop order, cgroup, budget, readiness) and its launch hooks (output pipes, held
// sockets, readiness rule); and the start order of programs (depends_on, docs/services.md).
#include "daemon_runner.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <system_error>

#include "procsup/daemon/environment.hpp"
#include "procsup/daemon/logging.hpp"

namespace procsup::daemon {

void daemon_runner::start_instance(program_registry::entry& prog, int index) {
  const program_config& p = prog.cfg;
  const std::string id = program_registry::instance_id(p, index);
  program_options o = launch_options(p, index, id);
  add_launch_hooks(o, p, id);
  // Listed before the launch: a launch that fails at once already reports events about it.
  reg_.instances.push_back({&prog, index, id, {}, false});
  const std::size_t at = reg_.instances.size() - 1;
  auto handle = sup_->spawn_program(std::move(o), p.strategy, false);
  reg_.instances[at].handle = handle;
  svc_.attach(id, std::move(handle));
}

program_options daemon_runner::launch_options(const program_config& p, int index, const std::string& id) {
  program_options o;
  o.name = id;
  for (const auto& arg : p.command) o.exec.argv.push_back(expand_instance(arg, index));
  o.exec.path = o.exec.argv.at(0);
  o.exec.env = instance_environment(p, strip_notify_environment(current_environment()), index, id,
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
  const bool ordered = std::any_of(reg_.programs.begin(), reg_.programs.end(),
                                   [](const program_registry::entry& q) { return !q.cfg.depends_on.empty(); });
  o.stop_group = cfg_.supervisor.policy == restart_policy::one_for_one && !ordered ? std::string("procsup") : p.name;
  if (contain_->active()) {
    std::string error;
    o.cgroup = contain_->instance(id, p.resources, error);
    if (!o.cgroup)
      log_event(spdlog::level::warn, "[" + id + "] no cgroup: process group only", {{"error", error}});
  }
  o.own_budget = true;  // a program over it goes fatal alone (issue 20)
  o.max_restarts = p.max_restarts;
  o.restart_period = p.restart_period;
  o.autostart = p.autostart;
  o.backoff = p.backoff;
  o.protocol = p.ready == readiness::protocol;
  o.ready_timeout = p.ready_timeout;
  o.request_timeout = p.hang_timeout;
  return o;
}

// What runs around each launch of `id`, in the order they wrap it: its stdout / stderr pipes
// (output_router), the sockets held for its program (fds 3...), its readiness rule and health
// check (services.cpp: NOTIFY_SOCKET, a ready fd). `p` stays valid while `id` exists
// (program_registry).
void daemon_runner::add_launch_hooks(program_options& o, const program_config& p, const std::string& id) {
  o.prepare_launch = [this, &p, id](child_setup& s) { return output_.prepare(p, id, s); };
  if (auto held = sockets_.find(p.name); held != sockets_.end()) held->second.add_to_launch(o);
  try {
    svc_.configure(id, p, o);
  } catch (const std::system_error& e) {
    log_event(spdlog::level::err, "[" + id + "] cannot set up its readiness rule", {{"error", e.what()}});
  }
}

// ---- start order (depends_on, docs/services.md)

// Every instance of program `name` is ready (and it has instances).
bool daemon_runner::all_ready(const std::string& name) {
  if (std::any_of(reg_.programs.begin(), reg_.programs.end(),
                  [&](const program_registry::entry& w) { return w.start != program_registry::entry::start_state::started && w.cfg.name == name; }))
    return false;
  int n = 0;
  for (auto& i : reg_.instances) {
    if (i.prog->cfg.name != name) continue;
    if (!i.handle || i.handle.state() != process_state::running) return false;
    ++n;
  }
  return n > 0;
}

// Starts the waiting programs whose dependencies are all ready (again, until none is left
// that can start: a program started here does not make another ready before its ready event).
void daemon_runner::start_waiting() {
  if (shutting_down_) return;
  for (auto& entry : reg_.programs) {
    if (!entry.waiting()) continue;
    const program_config& p = entry.cfg;
    std::vector<std::string> missing;
    for (const auto& d : p.depends_on)
      if (!all_ready(d)) missing.push_back(d);
    if (!missing.empty()) {
      if (!launched_) log_event(spdlog::level::info, "[" + p.name + "] waiting for its dependencies", {{"depends_on", missing}});
      continue;
    }
    entry.start = program_registry::entry::start_state::started;
    if (!hold_sockets(p)) continue;  // a reload's new socket cannot be had: not started
    if (!p.depends_on.empty()) log_event(spdlog::level::info, "[" + p.name + "] dependencies ready: starting", {{"depends_on", p.depends_on}});
    for (int i = 0; i < p.instances; ++i) start_instance(entry, i);
    // A ctl start waiting for it: its first events came before its instances had handles.
    if (!waits_.empty()) loop_.post([this] { settle_waits(nullptr); });
  }
  fail_waiting_on_failed();
}

// The listening sockets of `p` (sockets = [...]), bound once and kept across its restarts;
// false (logged, naming the address) if they cannot be bound.
bool daemon_runner::hold_sockets(const program_config& p) {
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

void daemon_runner::on_instance_ready(const lifecycle_event& e) {
  start_waiting();
  if (e.restarts == 0) return;
  // A dependency that restarted is ready again: dependents with on_dependency_restart =
  // "restart" restart too (rest_for_one along that edge).
  const instance* dep = reg_.find(e.process_id);
  if (dep == nullptr) return;
  const std::string name = dep->prog->cfg.name;
  for (auto& i : reg_.instances)
    if (const auto& c = i.prog->cfg;
        c.restart_with_dependency && std::find(c.depends_on.begin(), c.depends_on.end(), name) != c.depends_on.end()) {
      log_event(spdlog::level::info, "[" + i.id + "] restarting: its dependency restarted", {{"dependency", e.process_id}});
      sup_->restart_child(i.id);
    }
}

}  // namespace procsup::daemon
