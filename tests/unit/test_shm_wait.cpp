// shm's one wait primitive (wait.hpp): the poll timeout clamp, and spin_then_sleep's contract:
// one attempt for timeout 0, no sleep before the spin budget, a sleep ended by the waker or by
// the timeout.
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <thread>

#include "procsup/shm/wait.hpp"
#include "procsup/sys/unique_fd.hpp"

using namespace procsup::shm;
using namespace std::chrono_literals;

namespace {

TEST(ShmWaitClamp, PollTimeoutRoundsUpAndClamps) {
  EXPECT_EQ(poll_timeout_ms(-1ns), -1);
  EXPECT_EQ(poll_timeout_ms(std::chrono::nanoseconds::min()), -1);
  EXPECT_EQ(poll_timeout_ms(0ns), 0);
  EXPECT_EQ(poll_timeout_ms(1ns), 1);  // never a busy poll of 0 ms for a positive wait
  EXPECT_EQ(poll_timeout_ms(999'999ns), 1);
  EXPECT_EQ(poll_timeout_ms(1ms), 1);
  EXPECT_EQ(poll_timeout_ms(1'000'001ns), 2);
  EXPECT_EQ(poll_timeout_ms(std::chrono::milliseconds(INT_MAX)), INT_MAX);
  // A cast without the clamp would wrap these to negative (infinite) or short waits.
  EXPECT_EQ(poll_timeout_ms(std::chrono::milliseconds(std::int64_t{INT_MAX} + 1)), INT_MAX);
  EXPECT_EQ(poll_timeout_ms(std::chrono::hours(24 * 365 * 100)), INT_MAX);
  EXPECT_EQ(poll_timeout_ms(std::chrono::nanoseconds::max()), INT_MAX);
}

enum class st { ok, again, timeout };

TEST(ShmWait, TimeoutZeroMakesOneAttempt) {
  std::atomic<std::uint32_t> word{0};
  int attempts = 0, arms = 0;
  const auto r = spin_then_sleep([&] { ++attempts; return st::again; }, st::again, st::timeout,
                                 [] { return false; }, [&] { ++arms; return true; }, word, wakeup::futex(), 0ns,
                                 spin_policy{});
  EXPECT_EQ(r, st::timeout);
  EXPECT_EQ(attempts, 1);
  EXPECT_EQ(arms, 0);
}

TEST(ShmWait, ReturnsTheFirstResultThatIsNotAgain) {
  std::atomic<std::uint32_t> word{0};
  int attempts = 0;
  const auto r = spin_then_sleep([&] { return ++attempts == 50 ? st::ok : st::again; }, st::again, st::timeout,
                                 [] { return true; }, [] { return false; }, word, wakeup::futex(), -1ns,
                                 spin_policy{std::chrono::seconds(10)});
  EXPECT_EQ(r, st::ok);
  EXPECT_EQ(attempts, 50);
}

TEST(ShmWait, SpinsBeforeItArmsAndSleepsUntilTheTimeout) {
  std::atomic<std::uint32_t> word{0};
  int arms = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = spin_then_sleep([] { return st::again; }, st::again, st::timeout, [] { return false; },
                                 [&] {
                                   ++arms;
                                   word.store(1);  // as a real arm() marks this side as sleeping
                                   return true;
                                 },
                                 word, wakeup::futex(), 30ms, spin_policy{2ms});
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r, st::timeout);
  EXPECT_GE(took, 30ms);
  EXPECT_LT(took, 5s);
  EXPECT_GE(arms, 1);  // it slept (after spinning), rather than spinning the whole 30 ms
  EXPECT_EQ(word.load(), 0U);  // the sleeping mark is cleared on waking
}

TEST(ShmWait, NoSpinArmsAtOnce) {
  std::atomic<std::uint32_t> word{0};
  int attempts = 0;
  const auto r = spin_then_sleep([&] { return ++attempts == 2 ? st::ok : st::again; }, st::again, st::timeout,
                                 [] { return false; }, [] { return false; /* work appeared: try again */ }, word,
                                 wakeup::futex(), -1ns, spin_policy{0ns});
  EXPECT_EQ(r, st::ok);
  EXPECT_EQ(attempts, 2);
}

// The waker's half clears the word and wakes a sleeper on the futex or the eventfd.
void woken_by_peer(wakeup how) {
  std::atomic<std::uint32_t> word{0};
  std::atomic<bool> published{false};
  std::thread peer([&] {
    // Wait until the waiter has marked itself as sleeping, then publish and wake it.
    while (word.load() == 0) std::this_thread::yield();
    published.store(true);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    wake_if_sleeping(word, how);
  });
  const auto r = spin_then_sleep([&] { return published.load() ? st::ok : st::again; }, st::again, st::timeout,
                                 [] { return false; },
                                 [&] {
                                   word.store(1);
                                   std::atomic_thread_fence(std::memory_order_seq_cst);
                                   if (published.load()) {
                                     word.store(0);
                                     return false;
                                   }
                                   return true;
                                 },
                                 word, how, 60s, spin_policy{0ns});
  peer.join();
  EXPECT_EQ(r, st::ok);
  EXPECT_EQ(word.load(), 0U);
}

TEST(ShmWait, WokenThroughTheFutex) { woken_by_peer(wakeup::futex()); }

TEST(ShmWait, WokenThroughTheEventfd) {
  procsup::sys::unique_fd efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  ASSERT_TRUE(efd);
  woken_by_peer(wakeup::event(efd.get()));
}

TEST(ShmWait, WakeIfSleepingDoesNothingWhenNobodySleeps) {
  std::atomic<std::uint32_t> word{0};
  procsup::sys::unique_fd efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  ASSERT_TRUE(efd);
  wake_if_sleeping(word, wakeup::event(efd.get()));
  std::uint64_t v = 0;
  EXPECT_EQ(::read(efd.get(), &v, sizeof v), -1);  // no write
  word.store(1);
  wake_if_sleeping(word, wakeup::event(efd.get()));
  EXPECT_EQ(word.load(), 0U);
  EXPECT_EQ(::read(efd.get(), &v, sizeof v), static_cast<ssize_t>(sizeof v));
  EXPECT_EQ(v, 1U);
}

}  // namespace
