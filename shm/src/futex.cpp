// Shared futex wait / wake. FUTEX_WAIT (not _PRIVATE): the key is the physical page, so a
// waiter in one process is woken from another; a private futex is keyed by (mm, address) and the
// wake is lost (docs/platform-notes.md#cross-process-futexes-must-be-shared-futexes).
#include "procsup/shm/futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

namespace procsup::shm {

bool futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                std::chrono::nanoseconds timeout) noexcept {
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout.count() >= 0) {
    ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
    tsp = &ts;
  }
  // The kernel compares the word with `expected` atomically with queueing us, so a wake that
  // follows a change of the word cannot be lost. EINTR and EAGAIN count as "woken".
  long r = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT, expected, tsp,
                     nullptr, 0);
  return !(r == -1 && errno == ETIMEDOUT);
}

void futex_wake(std::atomic<std::uint32_t>& word, int count) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, count, nullptr, nullptr, 0);
}

}  // namespace procsup::shm
