// When procsup ends because of its programs, and with which code. See exit_policy.hpp.
#include "procsup/daemon/exit_policy.hpp"

#include <sys/wait.h>

#include <algorithm>

#include "procsup/daemon/exit_codes.hpp"

namespace procsup::daemon {

int propagated_exit_code(int wait_status, bool could_not_start) {
  if (could_not_start || wait_status < 0) return exit_codes::could_not_start;
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return exit_codes::could_not_start;
}

std::optional<int> essential_exit_code(const program_config& p, event_kind kind, int wait_status, bool could_not_start) {
  if (!p.essential || (kind != event_kind::fatal && kind != event_kind::stopped)) return std::nullopt;
  if (p.exit_code) return *p.exit_code;
  return propagated_exit_code(wait_status, could_not_start);
}

int escalation_exit_code(const program_config& p, int wait_status, bool could_not_start) {
  if (p.exit_code) return *p.exit_code;
  return propagated_exit_code(wait_status, could_not_start);
}

bool all_ended(const std::vector<process_state>& states) {
  return !states.empty() && std::all_of(states.begin(), states.end(), [](process_state s) {
    return s == process_state::stopped || s == process_state::failed || s == process_state::fatal;
  });
}

}  // namespace procsup::daemon
