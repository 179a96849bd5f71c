// Live reload: comparing the running config with a newly parsed one. See reload.hpp.
#include "procsup/daemon/reload.hpp"

#include <algorithm>
#include <map>

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

}  // namespace procsup::daemon
