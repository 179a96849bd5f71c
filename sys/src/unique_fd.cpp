// unique_fd's out-of-line part.
#include "procsup/sys/unique_fd.hpp"

#include <unistd.h>

namespace procsup::sys {

void close_fd(int fd) noexcept {
  if (fd < 0) return;
  const int saved = errno;  // a destructor must not change the errno its caller is about to read
  ::close(fd);
  errno = saved;
}

}  // namespace procsup::sys
