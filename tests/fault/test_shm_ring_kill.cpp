// A producer SIGKILLed at random points, many times: the consumer reads only whole, checksummed
// frames in order, never a torn one, and learns of the death through waitpid.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "helpers/process_guard.hpp"
#include "procsup/shm/region.hpp"
#include "procsup/shm/ring.hpp"

using namespace procsup::shm;
using namespace std::chrono_literals;
using procsup::testing::describe_wait_status;
using procsup::testing::fork_child;
using procsup::testing::wait_child;

namespace {

std::uint32_t fnv1a(const std::byte* p, std::size_t n) {
  std::uint32_t h = 2166136261u;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ std::to_integer<std::uint32_t>(p[i])) * 16777619u;
  return h;
}

// Frame `seq` of a round: [u64 seq][random bytes][u32 fnv1a]; its size is random (8..1500+12).
std::size_t frame_size(std::mt19937_64& rng) { return 12 + static_cast<std::size_t>(rng() % 1500); }

// The producer child: frames 0, 1, 2, ... until it is killed. Each frame is written whole with
// write(), or built byte by byte in a reservation (a slow window for the kill to land in).
[[noreturn]] void produce_until_killed(void* mem, std::size_t bytes, std::uint64_t seed) {
  ring_writer w(mem, bytes);
  std::mt19937_64 rng(seed);
  std::vector<std::byte> buf;
  for (std::uint64_t seq = 0;; ++seq) {
    buf.resize(frame_size(rng));
    std::memcpy(buf.data(), &seq, 8);
    for (std::size_t i = 8; i < buf.size() - 4; ++i) buf[i] = std::byte(static_cast<unsigned char>(rng()));
    const std::uint32_t sum = fnv1a(buf.data(), buf.size() - 4);
    std::memcpy(buf.data() + buf.size() - 4, &sum, 4);
    if (rng() % 2 == 0) {
      if (w.write(static_cast<std::uint32_t>(seq), buf, 30s) != ring_status::ok) ::_exit(70);
    } else {
      ring_status st;
      std::span<std::byte> room;
      while ((room = w.try_reserve(buf.size(), st)).empty()) {
        if (st != ring_status::full) ::_exit(71);
      }
      for (std::size_t i = 0; i < buf.size(); ++i) {
        volatile std::byte* p = room.data() + i;  // slow, byte by byte
        *p = buf[i];
      }
      w.commit(static_cast<std::uint32_t>(seq), buf.size());
    }
  }
}

// Checks a frame read by the consumer: the next sequence number, its checksum, its tag.
::testing::AssertionResult whole_frame(std::uint64_t seq, const frame_view& f) {
  if (f.payload.size() < 12) return ::testing::AssertionFailure() << "frame " << seq << " is too short";
  std::uint64_t got;
  std::memcpy(&got, f.payload.data(), 8);
  if (got != seq) return ::testing::AssertionFailure() << "expected frame " << seq << ", got " << got;
  std::uint32_t sum;
  std::memcpy(&sum, f.payload.data() + f.payload.size() - 4, 4);
  if (sum != fnv1a(f.payload.data(), f.payload.size() - 4))
    return ::testing::AssertionFailure() << "frame " << seq << " is torn (bad checksum)";
  if (f.tag != static_cast<std::uint32_t>(seq)) return ::testing::AssertionFailure() << "frame " << seq << " has a wrong tag";
  return ::testing::AssertionSuccess();
}

class ring_kill : public procsup::testing::process_guard_test {};

}  // namespace

TEST_F(ring_kill, a_producer_killed_at_random_points_leaves_only_whole_frames) {
  std::uint64_t seed = 7771;
  if (const char* s = std::getenv("PROCSUP_TEST_SEED")) seed = std::strtoull(s, nullptr, 10);
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set PROCSUP_TEST_SEED to replay)");
  std::mt19937_64 rng(seed);
#if defined(__SANITIZE_ADDRESS__)
  constexpr int rounds = 100;
#else
  constexpr int rounds = 200;
#endif
  std::uint64_t total_frames = 0;
  int killed_mid_stream = 0;
  for (int round = 0; round < rounds; ++round) {
    const std::size_t cap = std::size_t{4096} << (rng() % 3);
    auto region = shared_region::create(ring_bytes(cap));
    ring_header* h = format_ring(region.data(), region.size(), cap);
    const std::uint64_t start = (rng() % (1u << 20)) * 8;  // any offset, any lap
    h->head.store(start);
    h->tail.store(start);
    const std::uint64_t child_seed = rng();
    const pid_t child = fork_child([&]() -> int { produce_until_killed(region.data(), region.size(), child_seed); });
    ASSERT_GT(child, 0);

    // Let it run for a random number of frames (0: kill it while it may not even have started),
    // with a random number of extra polls so the kill lands anywhere in a write.
    ring_reader r(region.data(), region.size());
    const std::uint64_t before_kill = rng() % 64;
    std::uint64_t seq = 0;
    while (seq < before_kill) {
      frame_view f;
      const auto st = r.read(f, 20s);
      ASSERT_EQ(st, ring_status::ok) << "round " << round << ": " << r.error();
      ASSERT_TRUE(whole_frame(seq, f)) << "round " << round;
      r.pop();
      ++seq;
    }
    for (auto spins = rng() % 2000; spins > 0; --spins) (void)r.readable();
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    const int status = wait_child(child);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "round " << round << ": the child " << describe_wait_status(status);

    // Drain: whatever the dead producer published is whole and in order; then the ring is empty.
    for (;;) {
      frame_view f;
      const auto st = r.try_read(f);
      if (st == ring_status::empty) break;
      ASSERT_EQ(st, ring_status::ok) << "round " << round << ": " << r.error();
      ASSERT_TRUE(whole_frame(seq, f)) << "round " << round;
      r.pop();
      ++seq;
    }
    if (seq > before_kill) ++killed_mid_stream;
    total_frames += seq;
  }
  std::printf("%d rounds, %llu whole frames read, %d kills with frames still in the ring\n", rounds,
              static_cast<unsigned long long>(total_frames), killed_mid_stream);
}
