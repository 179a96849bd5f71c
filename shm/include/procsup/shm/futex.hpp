// Shared (cross-process) futex wait / wake on a 32-bit word in a MAP_SHARED mapping.
// Never FUTEX_PRIVATE_FLAG and never std::atomic::wait: both lose wakes across processes.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace procsup::shm {

// Sleeps while `word == expected`, at most `timeout` (negative: no limit). Returns false on
// timeout, true otherwise (woken, value changed, or spurious). Any thread.
bool futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                std::chrono::nanoseconds timeout) noexcept;

// Wakes up to `count` waiters on `word`. Any thread.
void futex_wake(std::atomic<std::uint32_t>& word, int count = 1) noexcept;

}  // namespace procsup::shm
