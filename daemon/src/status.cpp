// `ctl status` (and /status): one JSON object per instance, then the programs still waiting
// for their dependencies; the lean /metrics snapshot.
#include "daemon_runner.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "procsup/daemon/pid_namespace.hpp"

namespace procsup::daemon {

using json = nlohmann::json;

namespace {

std::uint64_t proc_rss(pid_t pid) {
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

}  // namespace

json daemon_runner::status() {
  json arr = json::array();
  const auto now = std::chrono::system_clock::now();
  for (auto& i : reg_.instances) {
    auto info = i.handle.info();
    json o = {{"name", i.prog->cfg.name},
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
  // Programs not started: waiting for their dependencies (depends_on), stopped while they
  // waited, or held because a dependency failed.
  using start_state = program_registry::entry::start_state;
  for (const auto& entry : reg_.programs) {
    if (entry.start == start_state::started) continue;
    const program_config& p = entry.cfg;
    json deps = json::array();
    if (entry.waiting())
      for (const auto& d : p.depends_on)
        if (!all_ready(d)) deps.push_back(d);
    const char* state = entry.waiting() ? "waiting" : entry.start == start_state::stopped ? "stopped" : "failed";
    for (int k = 0; k < p.instances; ++k) {
      json o = {{"name", p.name}, {"instance", k}, {"id", program_registry::instance_id(p, k)},
                {"pid", nullptr}, {"state", state}, {"restarts", 0}, {"uptime_s", nullptr},
                {"last_exit", nullptr}, {"ready", false}};
      if (entry.waiting()) o["waiting_for"] = deps;
      if (!entry.error.empty()) o["last_error"] = entry.error;
      arr.push_back(std::move(o));
    }
  }
  return arr;
}

// Memory, CPU time and processes of an instance: from its cgroup (everything it started),
// else from /proc for its main process alone.
void daemon_runner::add_usage(json& o, const std::string& id, pid_t pid) {
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
  std::ostringstream whole;
  whole << stat.rdbuf();
  const std::string text = whole.str();
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

// Lean (no JSON, no file reads): a scrape every second of 1,000 instances must stay cheap.
metrics_snapshot daemon_runner::metrics() {
  metrics_snapshot s;
  s.instances.reserve(reg_.instances.size());
  for (auto& i : reg_.instances) {
    const auto info = i.handle.sample();  // every instance: no string copies
    instance_sample m;
    m.program = i.prog->cfg.name;
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
}  // namespace procsup::daemon
