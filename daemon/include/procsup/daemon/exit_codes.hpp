// The procsup program's exit codes: fixed, documented in the README and systemd/procsup.service.
#pragma once

namespace procsup::daemon::exit_codes {

inline constexpr int clean = 0;           // clean shutdown (SIGTERM/SIGINT, `ctl shutdown`), or `check` passed
inline constexpr int internal_error = 1;  // unexpected failure inside procsup; `ctl`: request failed / not reachable
inline constexpr int usage = 2;           // bad command line or invalid config: nothing was started
inline constexpr int gave_up = 3;         // the top supervisor exceeded its restart intensity and gave up
// An essential (or escalating) program's own code is passed on (exit_code = "propagate", as
// tini: its exit code, or 128 + the signal that killed it); when it never ran (the binary is
// missing, a setup step failed) procsup exits with this, like a shell's "command not found".
inline constexpr int could_not_start = 127;

}  // namespace procsup::daemon::exit_codes
