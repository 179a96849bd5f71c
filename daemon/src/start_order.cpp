// depends_on after the first start (docs/services.md "Start order"): `ctl start` starts what a
// program needs first, `ctl stop` stops what needs it first, each program there before the
// next; a dependency that failed for good fails the programs waiting on it instead of leaving
// them waiting. The first start and the ready-driven starts are run_process.cpp's.
#include <algorithm>

#include "daemon_runner.hpp"
#include "procsup/daemon/logging.hpp"

namespace procsup::daemon {

using start_state = program_registry::entry::start_state;

dependency_graph daemon_runner::graph() const {
  std::vector<dependency_graph::program_edges> edges;
  for (const auto& p : reg_.programs)  // a reload may list a name twice for a moment: the first
    if (std::none_of(edges.begin(), edges.end(), [&](const auto& e) { return e.first == p.cfg.name; }))
      edges.emplace_back(p.cfg.name, p.cfg.depends_on);
  return dependency_graph(std::move(edges));
}

// Why program `name` will not become ready by itself (an instance failed for good, or it is
// held as failed), or "" if it may still.
std::string daemon_runner::failed_for_good(const std::string& name) {
  if (const auto* p = reg_.program(name); p != nullptr && p->held()) return p->error;  // "" when stopped
  for (auto& i : reg_.instances) {
    if (i.prog->cfg.name != name || !i.handle) continue;
    const auto info = i.handle.info();
    if (info.state == process_state::failed || info.state == process_state::fatal)
      return i.id + ": " + (info.last_error.empty() ? to_string(info.state) : info.last_error);
  }
  return {};
}

// A waiting program whose dependency failed for good would wait for ever: it is held as failed
// (logged, shown in ctl status), and so, in turn, are the programs waiting on it.
void daemon_runner::fail_waiting_on_failed() {
  bool any = false;
  for (bool again = true; again && !shutting_down_;) {
    again = false;
    for (auto& entry : reg_.programs) {
      if (!entry.waiting()) continue;
      std::string dependency, cause;
      for (const auto& d : entry.cfg.depends_on)
        if (cause = failed_for_good(d); !cause.empty()) {
          dependency = d;
          break;
        }
      if (cause.empty()) continue;
      log_event(spdlog::level::err, "[" + entry.cfg.name + "] cannot start: a dependency failed",
                {{"dependency", dependency}, {"cause", cause}});
      entry.start = start_state::dependency_failed;
      entry.error = "a dependency failed: " + dependency + " (" + cause + ")";
      again = any = true;
    }
  }
  if (any && !waits_.empty()) loop_.post([this] { settle_waits(nullptr); });  // a ctl start of one of them fails
}

// `ctl start NAME` / `ctl stop NAME` of a program: the programs it needs are started first, each
// ready before the next, or the programs that need it are stopped first, each down before the
// next; then NAME. One reply for all, in that order.
nlohmann::json daemon_runner::staged_command(const std::string& cmd, const program_registry::entry& prog) {
  const auto g = graph();
  const auto order = cmd == "start" ? g.start_closure(prog.cfg.name) : g.stop_closure(prog.cfg.name);
  command_wait w{cmd, {}, ctl_->defer(), {}, {}, false};
  for (const auto& name : order)
    if (auto* p = reg_.program(name)) w.later.push_back(p);
  waits_.push_back(std::move(w));
  begin_stage(waits_.back());
  loop_.after_exit_handlers([this] { settle_waits(nullptr); });
  return nullptr;  // deferred: answered by settle_waits
}

// The next program of a staged command becomes its targets: its instances are started or
// stopped; a program that has none (waiting, or held) is started or stopped by name.
void daemon_runner::begin_stage(command_wait& w) {
  program_registry::entry& p = *w.later.front();
  w.later.erase(w.later.begin());
  if (p.start != start_state::started) {
    const bool was_waiting = p.waiting();
    if (w.cmd == "start" && p.held()) {  // waits again: starts once its dependencies are ready
      p.start = start_state::waiting;
      p.error.clear();
      loop_.post([this] { start_waiting(); });
    } else if (w.cmd == "stop" && was_waiting) {  // stays down: no longer starts by itself
      p.start = start_state::stopped;
    }
    for (int k = 0; k < p.cfg.instances; ++k) {
      command_wait::target t{program_registry::instance_id(p.cfg, k), 0, process_state::stopped, {}, false, {}};
      if (w.cmd == "stop") {
        t.result = {{"id", t.id}, {"ok", true}, {"state", "stopped"},
                    {"message", t.id + (was_waiting ? ": stopped (it was waiting for its dependencies)" : ": already stopped")}};
        t.done = true;
      }
      w.targets.push_back(std::move(t));
    }
    return;
  }
  const auto ids = reg_.match(p.cfg.name);
  for (const auto& id : ids) {
    const auto* i = reg_.find(id);
    const auto info = i != nullptr && i->handle ? i->handle.info() : process_info{};
    w.targets.push_back({id, info.pid, info.state, {}, false, {}});
  }
  for (const auto& id : ids) {
    if (w.cmd == "start") sup_->start_child(id);
    else sup_->stop_child(id);
  }
}

}  // namespace procsup::daemon
