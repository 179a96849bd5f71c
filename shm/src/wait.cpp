// The sleeping and waking halves of the ring's wait (wait.hpp).
#include "procsup/shm/wait.hpp"

#include <poll.h>
#include <unistd.h>

#include <limits>

#include "procsup/shm/futex.hpp"
#include "procsup/sys/unique_fd.hpp"

namespace procsup::shm {

int poll_timeout_ms(std::chrono::nanoseconds timeout) noexcept {
  if (timeout.count() < 0) return -1;
  // Rounded up without overflow: count / 1e6, plus one if there is a remainder.
  const auto ns = timeout.count();
  const auto ms = ns / 1'000'000 + (ns % 1'000'000 != 0 ? 1 : 0);
  return ms > std::numeric_limits<int>::max() ? std::numeric_limits<int>::max() : static_cast<int>(ms);
}

bool sleep_on(std::atomic<std::uint32_t>& word, wakeup how, std::chrono::nanoseconds timeout) noexcept {
  if (how.eventfd < 0) return futex_wait(word, 1, timeout);
  pollfd p{how.eventfd, POLLIN, 0};
  const int ms = poll_timeout_ms(timeout);
  const int r = sys::retry_eintr([&] { return ::poll(&p, 1, ms); });
  if (r > 0 && (p.revents & POLLIN) != 0) {
    std::uint64_t v;
    (void)::read(how.eventfd, &v, sizeof v);  // consume the wake (the fd is this side's alone)
  }
  return r != 0;
}

void wake_if_sleeping(std::atomic<std::uint32_t>& word, wakeup how) noexcept {
  // relaxed: ordered after our publish by the caller's seq_cst fence, which pairs with the
  // sleeper's fence after it set the word. A cheap check first: no RMW when nobody sleeps.
  if (word.load(std::memory_order_relaxed) == 0) return;
  // relaxed RMW: only its atomicity matters (exactly one of concurrent wakers acts, and the
  // sleeper's FUTEX_WAIT(word, 1) fails once the word is 0, so the wake cannot be lost).
  if (word.exchange(0, std::memory_order_relaxed) == 0) return;
  if (how.eventfd >= 0) {
    std::uint64_t one = 1;
    // EAGAIN (counter saturated) means a wake is already pending: fine.
    (void)sys::retry_eintr([&] { return ::write(how.eventfd, &one, sizeof one); });
  } else {
    futex_wake(word, 1);
  }
}

}  // namespace procsup::shm
