// Readiness rules for unmodified programs and health checks (docs/services.md), per program
// instance, on the daemon's event loop: the sd_notify socket (READY=1, STATUS=, WATCHDOG=1, ...),
// the s6 notification fd, readiness probes polled until ready (then stopped), and liveness
// checks that kill an instance after N consecutive failures. The runner calls configure()
// before an instance's unit exists, attach() after, and on_event() with its lifecycle events.
#pragma once

#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "procsup/daemon/config.hpp"
#include "procsup/supervisor/program.hpp"
#include "procsup/supervisor/event_loop.hpp"
#include "procsup/supervisor/supervisor.hpp"

namespace procsup::daemon {

class http_worker;

class services {
 public:
  explicit services(event_loop& loop);
  ~services();

  // Before the instance's unit is made: its readiness rule's environment (NOTIFY_SOCKET,
  // WATCHDOG_USEC/WATCHDOG_PID), launch hook (the notification fd) and ready_later. Throws
  // std::system_error if the notify socket cannot be made.
  void configure(const std::string& id, const program_config& p, program_options& o);
  void attach(const std::string& id, procsup::program u);
  void on_event(const lifecycle_event& e);
  // `ctl status`: "ready" (starting / ready / reloading / stopping), "health", "status_text", ...
  void describe(const std::string& id, nlohmann::json& out) const;
  void release(const std::string& id);

 private:
  struct instance;
  void on_notify(instance& in);
  void on_ready_fd(instance& in);
  void arm_watchdog(instance& in);
  void schedule_ready_probe(instance& in, std::chrono::milliseconds after);
  void schedule_health(instance& in, std::chrono::milliseconds after);
  void became_ready(instance& in);
  void stop_checks(instance& in);
  std::shared_ptr<http_worker> http();
  instance* find(const std::string& id);

  event_loop& loop_;
  std::map<std::string, std::unique_ptr<instance>> instances_;
  std::shared_ptr<http_worker> http_;  // started at the first HTTP check
};

}  // namespace procsup::daemon
