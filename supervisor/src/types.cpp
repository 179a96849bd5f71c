// Names and descriptions for the supervision vocabulary.
#include "procsup/supervisor/types.hpp"

#include "procsup/sys/signal.hpp"

#include <sys/wait.h>

#include <cstring>

namespace procsup {

const char* to_string(process_state s) noexcept {
  switch (s) {
    case process_state::starting: return "starting";
    case process_state::running: return "running";
    case process_state::stopping: return "stopping";
    case process_state::stopped: return "stopped";
    case process_state::failed: return "failed";
    case process_state::fatal: return "fatal";
  }
  return "?";
}

const char* to_string(strategy s) noexcept {
  switch (s) {
    case strategy::restart: return "restart";
    case strategy::stop: return "stop";
    case strategy::escalate: return "escalate";
  }
  return "?";
}

const char* to_string(restart_policy p) noexcept {
  switch (p) {
    case restart_policy::one_for_one: return "one_for_one";
    case restart_policy::one_for_all: return "one_for_all";
    case restart_policy::rest_for_one: return "rest_for_one";
  }
  return "?";
}

const char* to_string(event_kind k) noexcept {
  switch (k) {
    case event_kind::spawned: return "spawned";
    case event_kind::ready: return "ready";
    case event_kind::exited: return "exited";
    case event_kind::crashed: return "crashed";
    case event_kind::restarting: return "restarting";
    case event_kind::stopped: return "stopped";
    case event_kind::escalated: return "escalated";
    case event_kind::gave_up: return "gave_up";
    case event_kind::spawn_failed: return "spawn_failed";
    case event_kind::fatal: return "fatal";
  }
  return "?";
}

std::string signal_name(int sig) { return sys::signal_name(sig); }

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "killed by " + signal_name(WTERMSIG(status)) + (WCOREDUMP(status) ? " (core dumped)" : "");
  return "wait status " + std::to_string(status);
}

std::chrono::milliseconds backoff_policy::delay(int consecutive_failures) const {
  if (consecutive_failures <= 1) return initial;
  auto d = std::max(initial, step);
  for (int i = 2; i < consecutive_failures && d < max; ++i) d *= 2;
  return std::min(d, max);
}

}  // namespace procsup
