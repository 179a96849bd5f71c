// The system-call helpers of procsup::sys.
#include "procsup/shm/sys.hpp"

#include <unistd.h>

namespace procsup::sys {

void close_fd(int fd) noexcept {
  if (fd >= 0) ::close(fd);
}

}  // namespace procsup::sys
