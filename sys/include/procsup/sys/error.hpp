// errno as text, the one copy every layer uses.
#pragma once

#include <string>

namespace procsup::sys {

// strerror(e) as a std::string ("No such file or directory"); "error N" for an unknown one.
// Thread-safe (strerror_r). Not async-signal-safe.
std::string errno_text(int e);

}  // namespace procsup::sys
