// request_path: the threading of a unit's reply fast path, apart from the unit's state machine
// (which runs on the loop thread). It owns the lock of the reply ring's reader and decides how
// a caller of get() waits for its reply: first it spins on the ring itself (no thread hop, no
// system call when the child answers within `spin`), then it sleeps on the reply's futex while
// the loop reads for it (someone_sleeps() tells the loop to listen). And it keeps the loop's pump
// requests to one post at a time. The unit lends it the ring (wait()'s Ring).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>

namespace procsup::detail {

struct reply_state;

class request_path {
 public:
  explicit request_path(std::chrono::nanoseconds spin) : spin_(spin) {}

  // The reply ring's reader: whoever drains it holds this (taken before the unit's own lock).
  std::mutex reader;

  // A caller sleeps in the kernel for a reply: the loop must read the ring for it.
  bool someone_sleeps() const noexcept { return sleepers_.load() > 0; }
  // True for the first caller since the last pump started: that one posts the pump.
  bool claim_pump() noexcept { return !pump_posted_.exchange(true); }
  void pump_started() noexcept { pump_posted_.store(false, std::memory_order_relaxed); }

  // Waits for `st`, false on timeout (negative: none). `ring` (the reader lock held by wait()):
  //   drain()          reads what is there, fulfilling replies
  //   open()           the instance has a channel
  //   readable()       open, and the child has not broken the protocol
  //   arm_wakeup()     true once the loop will be woken by the next frame (false: more came)
  //   needs_loop()     the ring holds news for the loop (a ready frame, a protocol error)
  //   post_pump()      asks the loop to pump the channel
  template <class Ring, class Reply>
  bool wait(Reply& st, std::chrono::nanoseconds timeout, Ring& ring) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto spin = std::min(spin_, timeout.count() < 0 ? spin_ : timeout);
    if (spin.count() > 0 && reader.try_lock()) {
      std::lock_guard rk(reader, std::adopt_lock);
      while (!st.ready()) {
        ring.drain();
        if (st.ready() || !ring.readable()) break;
        if (std::chrono::steady_clock::now() - t0 >= spin) break;
        for (int i = 0; i < 8; ++i) cpu_relax();
      }
      if (ring.needs_loop()) ring.post_pump();
    }
    if (st.ready()) return true;
    sleepers_.fetch_add(1);
    {
      // Make sure the loop will be woken by the next reply: arm the reader, or drain what is there.
      std::lock_guard rk(reader);
      while (!st.ready() && ring.open()) {
        ring.drain();
        if (st.ready() || !ring.readable()) break;
        if (ring.arm_wakeup()) break;
      }
      if (ring.needs_loop()) ring.post_pump();
    }
    bool ok = st.ready();
    if (!ok) {
      if (timeout.count() < 0) {
        ok = st.sleep(timeout);
      } else {
        auto left = timeout - (std::chrono::steady_clock::now() - t0);
        ok = left.count() > 0 ? st.sleep(std::chrono::duration_cast<std::chrono::nanoseconds>(left)) : st.ready();
      }
    }
    sleepers_.fetch_sub(1);
    return ok;
  }

 private:
  static void cpu_relax() noexcept {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }
  std::chrono::nanoseconds spin_;
  std::atomic<int> sleepers_{0};
  std::atomic<bool> pump_posted_{false};
};

}  // namespace procsup::detail
