// `procsup run`'s runner, private to daemon/src. One class, its work in files by concern:
//   runner.cpp       the event loop's wiring: control socket, http, signals, the event sink,
//                    READY=1 / STATUS=, exit_when, shutdown and the final sweep (finish)
//   run_process.cpp  one instance's launch: its program_options and launch hooks (output
//                    pipes, held sockets, readiness rule); start order (depends_on)
//   commands.cpp     the control grammar and its command table (handle), ctl start / stop /
//                    restart replies that wait for the result, ctl send
//   reload.cpp       live reload: the plan (what differs) and applying it
//   status.cpp       `ctl status` JSON and the /metrics snapshot
#pragma once

#include <signal.h>
#include <sys/signalfd.h>

#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "procsup/daemon/config.hpp"
#include "procsup/daemon/containment.hpp"
#include "procsup/daemon/dependency_graph.hpp"
#include "procsup/daemon/control.hpp"
#include "procsup/daemon/exit_codes.hpp"
#include "procsup/daemon/http_server.hpp"
#include "procsup/daemon/metrics.hpp"
#include "procsup/daemon/notify.hpp"
#include "procsup/daemon/output.hpp"
#include "procsup/daemon/runner.hpp"
#include "procsup/daemon/services.hpp"
#include "procsup/daemon/sockets.hpp"
#include "procsup/supervisor/program.hpp"
#include "procsup/supervisor/supervisor.hpp"

namespace procsup::daemon {

// Every program the runner knows and every instance it started: id -> settings + handle (its
// output is output_router's, by the same id). A program's settings have a stable address
// (std::list): its instances' launch hooks refer to them, and a reload replaces them only once
// none of its instances is left.
struct program_registry {
  struct entry {
    // A program not started has no instances: it waits for its dependencies (depends_on), or
    // `ctl stop` stopped it while it waited, or a dependency failed for good (`error` says which,
    // for ctl status). `ctl start` makes a stopped or failed one wait again.
    enum class start_state { started, waiting, stopped, dependency_failed };
    program_config cfg;
    start_state start = start_state::waiting;
    std::string error;
    bool waiting() const noexcept { return start == start_state::waiting; }
    bool held() const noexcept { return start == start_state::stopped || start == start_state::dependency_failed; }
  };
  struct instance {
    entry* prog;
    int index;
    std::string id;
    procsup::program handle;       // empty while spawn_program runs (it is listed first)
    bool could_not_start = false;  // its last launch failed before the program ran
  };

  std::list<entry> programs;        // in start order (the config's, then a reload's additions)
  std::vector<instance> instances;  // in launch order

  instance* find(const std::string& id) {
    for (auto& i : instances)
      if (i.id == id) return &i;
    return nullptr;
  }
  // The instance ids `name` names: an instance id, or every instance of a program.
  std::vector<std::string> match(const std::string& name) const {
    std::vector<std::string> ids;
    for (const auto& i : instances)
      if (i.id == name || i.prog->cfg.name == name) ids.push_back(i.id);
    return ids;
  }
  entry* program(const std::string& name) {  // the newest of that name (a reload may be replacing one)
    entry* found = nullptr;
    for (auto& p : programs)
      if (p.cfg.name == name) found = &p;
    return found;
  }
  // The program an instance id ("api", "api:1") belongs to, or nullptr.
  entry* program_of_id(const std::string& id) {
    entry* found = nullptr;
    for (auto& p : programs)
      for (int k = 0; k < p.cfg.instances; ++k)
        if (instance_id(p.cfg, k) == id) found = &p;
    return found;
  }
  bool any_waiting() const {
    for (const auto& p : programs)
      if (p.waiting()) return true;
    return false;
  }
  static std::string instance_id(const program_config& p, int index) {
    return p.instances > 1 ? p.name + ":" + std::to_string(index) : p.name;
  }
};

class daemon_runner : public http_source {  // http_source: status() and metrics()
 public:
  using json = nlohmann::json;
  daemon_runner(const config& cfg, const run_options& opt) : cfg_(cfg), opt_(opt) {}
  // Control connections close (hooks.removed) while output_ still exists, also when run() throws.
  ~daemon_runner() override { ctl_.reset(); }

  int run(const sigset_t& signals);

  // status.cpp
  json status() override;
  metrics_snapshot metrics() override;

  // commands.cpp: one control request -> its reply (null: answered later, deferred).
  json handle(const json& req);
  json cmd_status(const json& req);
  json cmd_logs(const json& req);
  json cmd_shutdown(const json& req);
  json cmd_reload(const json& req);
  json cmd_send(const json& req);
  json cmd_start_stop_restart(const json& req);
  json cmd_signal(const json& req);

 private:
  using instance = program_registry::instance;

  // runner.cpp
  bool open_control();
  bool open_http();
  void on_event(const lifecycle_event& e);
  void ends_procsup(const lifecycle_event& e);
  void check_all_done();
  void raise_fd_limit();
  void check_ready();
  void schedule_watchdog(std::chrono::microseconds every);
  void on_signal(const signalfd_siginfo& si);
  void begin_shutdown(int code);
  void finish();

  // run_process.cpp
  void start_instance(program_registry::entry& p, int index);
  program_options launch_options(const program_config& p, int index, const std::string& id);
  void add_launch_hooks(program_options& o, const program_config& p, const std::string& id);
  bool all_ready(const std::string& name);
  void start_waiting();
  bool hold_sockets(const program_config& p);
  void on_instance_ready(const lifecycle_event& e);

  // start_order.cpp: depends_on beyond the first start (ctl start / stop in dependency order,
  // dependencies that failed for good)
  dependency_graph graph() const;
  std::string failed_for_good(const std::string& name);
  void fail_waiting_on_failed();

  // commands.cpp: ctl start / stop / restart answered once every instance got there (or failed)
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
    std::vector<program_registry::entry*> later;  // programs still to start / stop, in order (depends_on)
    std::vector<target> settled;                  // the earlier stages' results
    bool answered = false;
  };
  json control_command(const std::string& cmd, const std::vector<std::string>& ids);
  json staged_command(const std::string& cmd, const program_registry::entry& prog);  // start_order.cpp
  void begin_stage(command_wait& w);                                               // start_order.cpp
  void settle_waits(const lifecycle_event* e);

  // reload.cpp
  json reload(const std::string& origin);

  // status.cpp
  void add_usage(json& o, const std::string& id, pid_t pid);

  config cfg_;  // a copy: reload updates its [supervisor] settings
  run_options opt_;
  bool reloading_ = false;  // a reload is stopping / starting programs
  event_loop loop_;
  notifier notify_;
  std::unique_ptr<control_server> ctl_;
  std::unique_ptr<containment> contain_;  // before sup_: units hold their cgroups
  services svc_{loop_};                   // before sup_: units' launches and events use it
  std::unique_ptr<supervisor> sup_;
  program_registry reg_;
  std::vector<command_wait> waits_;            // ctl start / stop / restart not answered yet
  std::map<std::string, socket_set> sockets_;  // program name -> its held listening sockets
  output_router output_{loop_};
  std::optional<rlimit_setting> inherited_nofile_;  // the fd limit procsup was started with
  int exit_code_ = exit_codes::clean;
  std::optional<int> escalation_code_;  // set when a program escalated (see ends_procsup)
  bool shutting_down_ = false;
  bool ready_sent_ = false;
  bool launched_ = false;  // every instance has been launched once (READY=1 waits for that)
  metrics_recorder metrics_;
  std::unique_ptr<http_server> http_;  // last: its thread is gone before anything it asks for
};

}  // namespace procsup::daemon
