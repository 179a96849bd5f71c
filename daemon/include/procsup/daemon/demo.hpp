// The built-in demo config of `procsup run` without a CONFIG: the crash-prone decoder, a
// well-behaved ticker, the decoder as a protocol worker (codec), and a shell one-liner that
// exits cleanly and is restarted on purpose.
#pragma once

#include <string>
#include <vector>

namespace procsup::daemon {

// The demo's TOML text. `bindir` is where the demo programs are (next to the procsup binary).
std::string demo_config_text(const std::string& bindir, const std::string& socket);

// The directory of the running procsup binary (from /proc/self/exe).
std::string own_directory();

// Where the demo programs are: next to procsup (the build tree), else in libexec/procsup
// relative to it (an install: bin/procsup, libexec/procsup/procsup-demo-*); "" if in neither.
std::string demo_programs_directory();

// Log lines for the demo's start: the exact `procsup ctl ... send codec ...` commands to try.
std::vector<std::string> demo_hints(const std::string& procsup, const std::string& socket);

}  // namespace procsup::daemon
