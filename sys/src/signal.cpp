// Signal names from glibc's table (sigabbrev_np, glibc 2.32).
#include "procsup/sys/signal.hpp"

#include <string.h>

namespace procsup::sys {

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return std::string("SIG") + (abbrev != nullptr ? std::string(abbrev) : std::to_string(sig));
}

}  // namespace procsup::sys
