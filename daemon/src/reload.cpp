// Live reload (`ctl reload`, SIGHUP): the plan, comparing the running config with a newly
// parsed one (reload.hpp), and below it the runner applying the plan (daemon_runner::reload).
#include "procsup/daemon/reload.hpp"

#include <algorithm>
#include <map>
#include <memory>

#include "daemon_runner.hpp"
#include "procsup/daemon/logging.hpp"

namespace procsup::daemon {

namespace {

// rlimit_setting has no operator== (it lives in the supervisor library).
bool same_limits(const std::vector<rlimit_setting>& a, const std::vector<rlimit_setting>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const rlimit_setting& x, const rlimit_setting& y) {
    return x.resource == y.resource && x.soft == y.soft && x.hard == y.hard;
  });
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

bool same_program(const program_config& a, const program_config& b) {
  // Field by field on purpose: a field added to program_config must be added here too (or a
  // changed value of it would not restart the program). Keep in the order of config.hpp.
  return a.name == b.name && a.command == b.command && a.strategy == b.strategy &&
         a.restart_on_exit == b.restart_on_exit && a.success_codes == b.success_codes && a.env == b.env &&
         a.cwd == b.cwd && a.user == b.user && a.uid == b.uid && a.gid == b.gid && a.groups == b.groups &&
         a.stop_signal == b.stop_signal && a.stop_timeout == b.stop_timeout && a.backoff == b.backoff &&
         same_limits(a.limits, b.limits) && a.resources == b.resources && a.stdout_target == b.stdout_target &&
         a.stderr_target == b.stderr_target && a.log_max_size == b.log_max_size && a.log_keep == b.log_keep &&
         a.ready == b.ready && a.ready_timeout == b.ready_timeout && a.hang_timeout == b.hang_timeout &&
         a.home == b.home && a.shell == b.shell && a.max_restarts == b.max_restarts &&
         a.restart_period == b.restart_period && a.essential == b.essential && a.exit_code == b.exit_code &&
         a.env_files == b.env_files && a.file_env == b.file_env && a.autostart == b.autostart &&
         a.ready_fd == b.ready_fd && a.ready_address == b.ready_address && a.ready_command == b.ready_command &&
         a.ready_interval == b.ready_interval && a.watchdog == b.watchdog && a.health == b.health &&
         a.depends_on == b.depends_on && a.restart_with_dependency == b.restart_with_dependency &&
         a.sockets == b.sockets && a.socket_mode == b.socket_mode && a.socket_owner == b.socket_owner;
}

std::string reload_plan::summary() const {
  std::string out;
  auto part = [&out](std::size_t n, const char* what, const std::string& names) {
    if (n == 0) return;
    out += (out.empty() ? "" : ", ") + std::to_string(n) + " " + what + " (" + names + ")";
  };
  part(added.size(), "added", joined(added));
  part(removed.size(), "removed", joined(removed));
  part(changed.size(), "changed", joined(changed));
  part(resized.size(), "resized", joined(resized_notes));
  out += (out.empty() ? "" : ", ") + std::to_string(unchanged.size()) + " unchanged";
  if (limits_changed) out += ", [supervisor] limits updated";
  if (socket_changed) out += ", socket change needs a restart";
  return out;
}

reload_plan plan_reload(const supervisor_config& running_supervisor, const std::vector<const program_config*>& running,
                        const config& next) {
  reload_plan plan;
  std::map<std::string, const program_config*> now;
  for (const auto* p : running) now.emplace(p->name, p);
  for (const auto& p : next.programs) {
    auto it = now.find(p.name);
    if (it == now.end()) {
      plan.added.push_back(p.name);
    } else if (!same_program(*it->second, p)) {
      plan.changed.push_back(p.name);
    } else if (it->second->instances != p.instances) {
      plan.resized.push_back(p.name);
      plan.resized_notes.push_back(p.name + ": " + std::to_string(it->second->instances) + " -> " +
                                   std::to_string(p.instances));
    } else {
      plan.unchanged.push_back(p.name);
    }
  }
  for (const auto* p : running) {
    const bool kept = std::any_of(next.programs.begin(), next.programs.end(),
                                  [&](const program_config& q) { return q.name == p->name; });
    if (!kept) plan.removed.push_back(p->name);
  }

  const auto& a = running_supervisor;
  const auto& b = next.supervisor;
  if (a.policy != b.policy) {
    plan.limits_changed = true;
    plan.supervisor_notes.push_back("policy " + std::string(to_string(a.policy)) + " -> " +
                                    std::string(to_string(b.policy)));
  }
  if (a.intensity != b.intensity) {
    plan.limits_changed = true;
    plan.supervisor_notes.push_back("intensity " + std::to_string(a.intensity) + " -> " +
                                    std::to_string(b.intensity));
  }
  if (a.period != b.period) {
    plan.limits_changed = true;
    plan.supervisor_notes.push_back("period " + std::to_string(a.period.count()) + " ms -> " +
                                    std::to_string(b.period.count()) + " ms");
  }
  if (a.socket != b.socket) {
    plan.socket_changed = true;
    plan.supervisor_notes.push_back("socket " + a.socket + " -> " + b.socket +
                                    ": not applied, it takes effect when procsup restarts");
  }
  if (a.http != b.http)
    plan.supervisor_notes.push_back("http \"" + a.http + "\" -> \"" + b.http +
                                    "\": not applied, it takes effect when procsup restarts");
  return plan;
}

using json = nlohmann::json;

// ---- applying it (issue 5): re-read the config file, stop what went or changed, then start
// what is new; answered at once (the stops and starts are logged as they happen)

json daemon_runner::reload(const std::string& origin) {
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
  for (const auto& p : reg_.programs) running.push_back(&p.cfg);
  const reload_plan plan = plan_reload(cfg_.supervisor, running, next);
  for (const auto& note : plan.supervisor_notes)
    log_event(plan.socket_changed && note.rfind("socket", 0) == 0 ? spdlog::level::warn : spdlog::level::info,
              "reload: [supervisor] " + note);
  if (plan.limits_changed) {
    cfg_.supervisor.policy = next.supervisor.policy;
    cfg_.supervisor.intensity = next.supervisor.intensity;
    cfg_.supervisor.period = next.supervisor.period;
    sup_->set_restart_limits(next.supervisor.policy, next.supervisor.intensity, next.supervisor.period);
  }
  auto in_next = [&next](const std::string& name) -> const program_config& {
    return *std::find_if(next.programs.begin(), next.programs.end(),
                         [&](const program_config& q) { return q.name == name; });
  };

  // Stop first (removed, changed, surplus instances), then start: a changed program's new
  // instances reuse the ids of the old ones, so these must be gone from the supervisor first.
  std::vector<std::string> to_remove;  // instance ids
  for (const auto& i : reg_.instances) {
    const std::string& name = i.prog->cfg.name;
    const bool drop = std::find(plan.removed.begin(), plan.removed.end(), name) != plan.removed.end() ||
                      std::find(plan.changed.begin(), plan.changed.end(), name) != plan.changed.end();
    const bool surplus = std::find(plan.resized.begin(), plan.resized.end(), name) != plan.resized.end() &&
                         i.index >= in_next(name).instances;
    if (drop || surplus) to_remove.push_back(i.id);
  }
  // Untouched and resized programs keep their settings object (units refer to it); only its
  // instance count and line change.
  std::vector<std::pair<program_registry::entry*, int>> grow;  // program, first new index
  for (auto& entry : reg_.programs) {
    program_config& p = entry.cfg;
    const bool keep = std::find(plan.unchanged.begin(), plan.unchanged.end(), p.name) != plan.unchanged.end() ||
                      std::find(plan.resized.begin(), plan.resized.end(), p.name) != plan.resized.end();
    if (!keep) continue;
    const program_config& q = in_next(p.name);
    if (q.instances > p.instances) grow.emplace_back(&entry, p.instances);
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
    for (const auto& name : plan_removed) sockets_.erase(name);
    reg_.programs.remove_if([&](const program_registry::entry& p) {
      return std::find(gone.begin(), gone.end(), p.cfg.name) != gone.end() &&
             std::none_of(reg_.instances.begin(), reg_.instances.end(), [&](const instance& i) { return i.prog == &p; });
    });
    if (!shutting_down_) {
      for (auto [p, from] : grow)
        // Only a started program: a waiting one starts in full later, a held one stays down.
        if (p->start == program_registry::entry::start_state::started)
          for (int i = from; i < p->cfg.instances; ++i) start_instance(*p, i);
      for (const auto& q : fresh) reg_.programs.push_back({q, program_registry::entry::start_state::waiting, {}});
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
      reg_.instances.erase(std::remove_if(reg_.instances.begin(), reg_.instances.end(),
                                      [&](const instance& i) { return i.id == id; }),
                       reg_.instances.end());
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

}  // namespace procsup::daemon
