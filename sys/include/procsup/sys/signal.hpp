// Signal numbers as names, the one copy (the supervisor's exit causes, the daemon's logs, config
// and `ctl kill` all use it).
#pragma once

#include <string>

namespace procsup::sys {

// "SIGTERM" for 15; "SIG42" for a signal with no abbreviation (the real-time ones), so that
// the part after "SIG" is always something parse_signal() reads back. Thread-safe.
std::string signal_name(int sig);

}  // namespace procsup::sys
