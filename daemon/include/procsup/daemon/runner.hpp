// `procsup run`: a supervisor tree of worker binaries from a config, in the foreground, on one
// event loop in the main thread: signals (signalfd), child exits (pidfds + a waitpid(-1) sweep
// as child subreaper / PID 1), child output pipes, the control socket, sd_notify.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "procsup/daemon/config.hpp"

namespace procsup::daemon {

struct run_options {
  // Stop by itself after this long (scripted demo runs); nullopt: run until told to stop.
  std::optional<std::chrono::milliseconds> exit_after;
};

// Runs until SIGTERM / SIGINT / `ctl shutdown` (exit code 0) or until the top supervisor gives
// up (exit_codes::gave_up). Must be called from main() before any other thread exists: it
// blocks the signals it handles in the calling thread, so that every later thread inherits
// the mask (a thread that had them unblocked would take them from the signalfd; and a blocked
// mask survives exec, so every child gets a clean one from the launcher).
int run(const config& cfg, const run_options& options = {});

}  // namespace procsup::daemon
