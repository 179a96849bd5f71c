// The built-in demo config of `procsup run` without a CONFIG: the crash-prone decoder, a
// well-behaved ticker, and a shell one-liner that exits cleanly and is restarted on purpose.
#pragma once

#include <string>

namespace procsup::daemon {

// The demo's TOML text. `bindir` is where the demo programs are (next to the procsup binary).
std::string demo_config_text(const std::string& bindir, const std::string& socket);

// The directory of the running procsup binary (from /proc/self/exe).
std::string own_directory();

}  // namespace procsup::daemon
