// The procsup program's exit codes: fixed, documented in the README and systemd/procsup.service.
#pragma once

namespace procsup::daemon::exit_codes {

inline constexpr int clean = 0;           // clean shutdown (SIGTERM/SIGINT, `ctl shutdown`), or `check` passed
inline constexpr int internal_error = 1;  // unexpected failure inside procsup; `ctl`: request failed / not reachable
inline constexpr int usage = 2;           // bad command line or invalid config: nothing was started
inline constexpr int gave_up = 3;         // the top supervisor exceeded its restart intensity and gave up

}  // namespace procsup::daemon::exit_codes
