// The one way a side of a ring waits: spin a bounded while, then sleep in the kernel until the
// peer wakes it. The ring's blocking calls and the channel's both use spin_then_sleep().
//
// The handshake (a Dekker pair, see ring.hpp): the waiting side sets its "sleeping" word to 1,
// issues a full fence and re-checks the ring (`arm`); the other side, after it publishes, issues
// a full fence and calls wake_if_sleeping() on that word. One of the two sees the other's store,
// so a wake is never lost, and no system call is made while both sides are busy.
//
// How a sleeper is woken (`wakeup`): a shared futex on its word (a process that blocks), or a
// write to an eventfd that it polls (a supervisor that waits on many children with epoll).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace procsup::shm {

// How one side of a ring is woken when it sleeps: a shared futex on its sleeping word
// (eventfd < 0), or a write to an eventfd that the side polls (eventfd >= 0, not owned here).
struct wakeup {
  int eventfd = -1;
  static wakeup futex() noexcept { return {}; }
  static wakeup event(int fd) noexcept { return {fd}; }
};

// How long a blocking call spins before it sleeps. Bounded so idle peers never burn the cores.
// 0: sleep at once (every frame then costs the peer a wake-up).
struct spin_policy {
  std::chrono::nanoseconds spin{std::chrono::microseconds(20)};
};

// One spin-wait hint to the CPU (PAUSE on x86: lets the sibling hyperthread run and avoids the
// memory-order mis-speculation when the awaited line changes). A compiler barrier elsewhere.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#else
  std::atomic_signal_fence(std::memory_order_seq_cst);
#endif
}

// A relative timeout as poll(2)'s milliseconds: negative -> -1 (no limit), rounded up (a wait of
// 1 ns must not become a busy poll of 0 ms), and clamped to INT_MAX (a cast of a larger count
// would wrap to a negative, i.e. infinite, or a short wait).
int poll_timeout_ms(std::chrono::nanoseconds timeout) noexcept;

// Sleeps until the peer clears `word` (futex: FUTEX_WAIT on word == 1) or writes the eventfd
// (`how.eventfd >= 0`: poll, then the counter is drained), or `timeout` passes (negative: no
// limit). Returns false on timeout, true otherwise (woken, changed, EINTR or spurious: the caller
// re-checks the ring either way).
bool sleep_on(std::atomic<std::uint32_t>& word, wakeup how, std::chrono::nanoseconds timeout) noexcept;

// The waker's half: call after publishing and a seq_cst fence. Wakes the side sleeping on `word`
// (word == 1) and clears the word; nothing (one relaxed load) when nobody sleeps.
void wake_if_sleeping(std::atomic<std::uint32_t>& word, wakeup how) noexcept;

// Spin rounds: up to 16 cpu_relax() each, left early when may_be_ready() says so; the clock is
// read once per rounds_per_clock_read rounds (about 64 cpu_relax), never per iteration: a clock
// read costs as much as the rest of a hot iteration.
inline constexpr int spin_round = 16;
inline constexpr unsigned rounds_per_clock_read = 4;

// The wait loop. `attempt()` does the work and returns `again` while it cannot yet (ring empty or
// full); anything else is returned at once. `may_be_ready()` is a cheap hint (one relaxed load)
// that attempt() may now succeed. `arm()` marks this side as sleeping on `word` and returns true
// only if it is still safe to sleep (the ring re-checked after the fence), false (un-marked) if
// attempt() should run again. Spins per `spin`, then sleeps until woken or `timeout` passes
// (negative: no limit; 0: one attempt). Returns `timed_out` when the time runs out.
//
// The first attempt reads no clock, nor does a spin round that ends because may_be_ready(); the
// timeout and the spin budget are counted from the first clock read (at the end of the first
// spin round that found nothing).
template <class R, class Attempt, class Hint, class Arm>
R spin_then_sleep(Attempt&& attempt, R again, R timed_out, Hint&& may_be_ready, Arm&& arm,
                  std::atomic<std::uint32_t>& word, wakeup self, std::chrono::nanoseconds timeout,
                  spin_policy spin) {
  using clock = std::chrono::steady_clock;
  const bool forever = timeout.count() < 0;
  bool spinning = spin.spin.count() > 0;
  bool started = false;  // the clock has been read (start and deadline are set)
  unsigned rounds = 0;
  clock::time_point start{}, deadline{};
  for (;;) {
    const R r = attempt();
    if (r != again) return r;
    if (timeout.count() == 0) return timed_out;
    if (spinning) {
      bool ready = false;
      for (int i = 0; i < spin_round; ++i) {
        if (may_be_ready()) {
          ready = true;
          break;
        }
        cpu_relax();
      }
      ++rounds;
      // Work that may be there goes straight to attempt(): no clock read between the peer's
      // publish and our attempt (that is the round trip's critical path). Otherwise the clock
      // once per rounds_per_clock_read rounds, and every 64 rounds whatever the hint says (a
      // peer that keeps the hint true without publishing cannot keep us from timing out).
      const bool clock_due = rounds % 64 == 0 || (!ready && (!started || rounds % rounds_per_clock_read == 0));
      if (!clock_due) continue;
    }
    const auto now = clock::now();
    if (!started) {
      started = true;
      start = now;
      if (!forever) deadline = now + timeout;
    }
    if (!forever && now >= deadline) return timed_out;
    if (spinning) {
      if (now - start < spin.spin) continue;
      spinning = false;
    }
    if (!arm()) continue;
    (void)sleep_on(word, self,
                   forever ? std::chrono::nanoseconds(-1)
                           : std::max(std::chrono::nanoseconds(0),
                                      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - clock::now())));
    // relaxed: our own flag. Woken, timed out or spurious, we re-check the ring next (re-arming
    // goes through the fence again before any further sleep), so clearing it here only spares
    // the peer a needless wake.
    word.store(0, std::memory_order_relaxed);
  }
}

}  // namespace procsup::shm
