// When and with which code procsup ends because of its programs (issue 20): an essential
// program that ended for good, a program with strategy "escalate", exit_when = "all_done".
// Pure functions of states and wait statuses, so they are unit-tested without processes.
#pragma once

#include <optional>
#include <vector>

#include "procsup/daemon/config.hpp"
#include "procsup/supervisor/types.hpp"

namespace procsup::daemon {

// As tini: the exit code of an exit, 128 + N of a death by signal N; exit_codes::could_not_start
// when the last attempt never ran (`could_not_start`, or no wait status at all).
int propagated_exit_code(int wait_status, bool could_not_start);

// The exit code of procsup when event `kind` of an instance of `p` ends it: essential programs
// end procsup when they go fatal or stop for good (event stopped: an exit not restarted); nullopt
// when the event does not end procsup. p.exit_code, if set, replaces the propagated code.
std::optional<int> essential_exit_code(const program_config& p, event_kind kind, int wait_status, bool could_not_start);

// The exit code when an instance of `p` escalated to the top (strategy "escalate").
int escalation_exit_code(const program_config& p, int wait_status, bool could_not_start);

// exit_when = "all_done": every instance has ended for good (stopped, failed or fatal; none
// starting, running, stopping or waiting for a restart). False for no instances.
bool all_ended(const std::vector<process_state>& states);

}  // namespace procsup::daemon
