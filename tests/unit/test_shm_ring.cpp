// The ring's single-process behaviour: order, wrap at every offset, full / empty, the largest
// frame, zero-length frames, zero-copy reserve / commit, wake-only-when-sleeping, and a seeded
// randomized run against a simple model.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <stdexcept>
#include <vector>

#include "procsup/shm/region.hpp"
#include "procsup/shm/ring.hpp"
#include "helpers/process_guard.hpp"

using namespace procsup::shm;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t align8(std::uint64_t n) { return (n + 7) & ~std::uint64_t{7}; }

// A formatted ring in its own region, with both endpoints attached. `start` sets both positions
// before attaching (any multiple of 8: positions are monotonic counters, not offsets).
struct test_ring {
  explicit test_ring(std::size_t capacity, std::uint64_t start = 0, wakeup reader_self = {}, wakeup writer_peer = {},
                     wakeup writer_self = {}, wakeup reader_peer = {})
      : region(shared_region::create(ring_bytes(capacity))),
        header(format_ring(region.data(), region.size(), capacity)) {
    header->head.store(start);
    header->tail.store(start);
    writer = ring_writer(region.data(), region.size(), writer_self, writer_peer);
    reader = ring_reader(region.data(), region.size(), reader_self, reader_peer);
  }
  shared_region region;
  ring_header* header;
  ring_writer writer;
  ring_reader reader;
};

std::vector<std::byte> pattern(std::size_t n, std::uint32_t seed) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = std::byte(static_cast<unsigned char>(seed * 131 + i * 7 + (i >> 8)));
  return v;
}

// Reads one frame and checks it is exactly (tag, bytes).
void expect_frame(ring_reader& r, std::uint32_t tag, const std::vector<std::byte>& bytes) {
  frame_view f;
  ASSERT_EQ(r.try_read(f), ring_status::ok) << r.error();
  EXPECT_EQ(f.tag, tag);
  ASSERT_EQ(f.payload.size(), bytes.size());
  EXPECT_TRUE(bytes.empty() || std::memcmp(f.payload.data(), bytes.data(), bytes.size()) == 0);
  r.pop();
}

bool eventfd_signalled(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

}  // namespace

TEST(ring, frames_written_are_read_back_in_order) {
  test_ring t(4096);
  for (std::uint32_t round = 0; round < 1000; ++round) {
    const auto msg = pattern(round % 300, round);
    ASSERT_EQ(t.writer.try_write(7 + round, msg), ring_status::ok);
    expect_frame(t.reader, 7 + round, msg);
  }
  frame_view f;
  EXPECT_EQ(t.reader.try_read(f), ring_status::empty);
}

TEST(ring, a_fresh_ring_is_empty_and_has_all_its_bytes_free) {
  test_ring t(1024);
  frame_view f;
  EXPECT_EQ(t.reader.try_read(f), ring_status::empty);
  EXPECT_FALSE(t.reader.readable());
  EXPECT_EQ(t.writer.free_bytes(), 1024u);
  EXPECT_EQ(t.writer.capacity(), 1024u);
  EXPECT_EQ(t.reader.capacity(), 1024u);
  EXPECT_EQ(t.writer.max_payload(), 1024u / 2 - 8);
}

TEST(ring, every_wrap_offset_and_frame_size_round_trips_with_padding_at_the_end) {
  constexpr std::size_t cap = 256;
  const std::size_t max = ring_max_payload(cap);
  // Start positions: every 8-byte offset of the buffer, in a later lap of the ring too.
  for (std::uint64_t lap : {std::uint64_t{0}, std::uint64_t{1} << 36}) {
    for (std::uint64_t start_off = 0; start_off < cap; start_off += 8) {
      for (std::size_t n = 0; n <= max; ++n) {
        const std::uint64_t start = lap + start_off;
        test_ring t(cap, start);
        const auto msg = pattern(n, static_cast<std::uint32_t>(start_off + n));
        ASSERT_EQ(t.writer.try_write(3, msg), ring_status::ok) << "offset " << start_off << " size " << n;
        const std::uint64_t total = 8 + align8(n);
        const std::uint64_t to_end = cap - start_off;
        const std::uint64_t expected = total > to_end ? to_end + total : total;  // padding when it crosses
        ASSERT_EQ(t.header->head.load() - start, expected) << "offset " << start_off << " size " << n;
        if (total > to_end) {
          // The padding frame fills the buffer to its end and says so.
          std::uint64_t word;
          std::memcpy(&word, static_cast<std::byte*>(t.region.data()) + sizeof(ring_header) + start_off, 8);
          EXPECT_EQ(word >> 32, padding_tag);
          EXPECT_EQ(word & 0xffffffffu, to_end - 8);
        }
        expect_frame(t.reader, 3, msg);
        ASSERT_EQ(t.header->tail.load(), t.header->head.load());
        EXPECT_EQ(t.writer.free_bytes(), cap);
        frame_view f;
        EXPECT_EQ(t.reader.try_read(f), ring_status::empty);
      }
    }
  }
}

TEST(ring, frames_crossing_the_end_keep_streaming_in_order) {
  // Many laps with odd sizes: every frame boundary lands on some offset sooner or later.
  test_ring t(512);
  std::deque<std::vector<std::byte>> in_flight;
  std::uint32_t next_write = 0, next_read = 0;
  for (int step = 0; step < 20000; ++step) {
    const auto msg = pattern((next_write * 37) % 200, next_write);
    if (t.writer.try_write(next_write, msg) == ring_status::ok) {
      in_flight.push_back(msg);
      ++next_write;
    }
    if (step % 3 != 0 && !in_flight.empty()) {
      expect_frame(t.reader, next_read++, in_flight.front());
      in_flight.pop_front();
    }
  }
  while (!in_flight.empty()) {
    expect_frame(t.reader, next_read++, in_flight.front());
    in_flight.pop_front();
  }
  EXPECT_GT(next_write, 10000u);
}

TEST(ring, a_full_ring_refuses_writes_until_the_reader_pops) {
  test_ring t(256);
  const auto msg = pattern(24, 1);  // 32 bytes per frame: exactly 8 frames fill the ring
  for (int i = 0; i < 8; ++i) ASSERT_EQ(t.writer.try_write(static_cast<std::uint32_t>(i), msg), ring_status::ok);
  EXPECT_EQ(t.writer.free_bytes(), 0u);
  EXPECT_EQ(t.writer.try_write(99, msg), ring_status::full);
  const std::vector<std::byte> none;
  EXPECT_EQ(t.writer.try_write(99, none), ring_status::full);  // not even a header fits
  ring_status st;
  EXPECT_TRUE(t.writer.try_reserve(0, st).empty());
  EXPECT_EQ(st, ring_status::full);

  expect_frame(t.reader, 0, msg);
  EXPECT_EQ(t.writer.free_bytes(), 32u);
  EXPECT_EQ(t.writer.try_write(8, msg), ring_status::ok);
  EXPECT_EQ(t.writer.try_write(9, msg), ring_status::full);
  for (std::uint32_t i = 1; i <= 8; ++i) expect_frame(t.reader, i, msg);
  frame_view f;
  EXPECT_EQ(t.reader.try_read(f), ring_status::empty);
}

TEST(ring, a_frame_needing_padding_waits_for_room_for_padding_and_frame) {
  test_ring t(256, 192);  // 64 bytes to the end
  const auto small = pattern(8, 2);
  ASSERT_EQ(t.writer.try_write(1, small), ring_status::ok);  // 16 bytes: 48 left to the end
  // A 72-byte frame does not fit in the 48 bytes to the end: it needs 48 padding + 72 = 120 bytes.
  const auto big = pattern(64, 3);
  ASSERT_EQ(t.writer.try_write(2, big), ring_status::ok);
  EXPECT_EQ(t.header->head.load(), 192u + 16 + 48 + 72);
  expect_frame(t.reader, 1, small);
  expect_frame(t.reader, 2, big);
}

TEST(ring, the_largest_frame_fits_at_every_offset_and_one_byte_more_is_too_large) {
  constexpr std::size_t cap = 1024;
  const std::size_t max = ring_max_payload(cap);
  for (std::uint64_t off = 0; off < cap; off += 8) {
    test_ring t(cap, off);
    EXPECT_EQ(t.writer.max_payload(), max);
    const auto msg = pattern(max, static_cast<std::uint32_t>(off));
    const auto more = pattern(max + 1, 0);
    EXPECT_EQ(t.writer.try_write(1, more), ring_status::too_large);
    ASSERT_EQ(t.writer.try_write(1, msg), ring_status::ok) << "offset " << off;
    expect_frame(t.reader, 1, msg);
  }
  test_ring t(cap);
  const auto half = pattern(max / 2 + 1, 0);
  EXPECT_EQ(t.writer.try_write(1, half, half), ring_status::too_large);
  ring_status st;
  EXPECT_TRUE(t.writer.try_reserve(max + 1, st).empty());
  EXPECT_EQ(st, ring_status::too_large);
  EXPECT_EQ(t.writer.write(1, pattern(max + 1, 0), 1s), ring_status::too_large);  // never blocks on it
}

TEST(ring, zero_length_frames_carry_their_tag_and_fill_eight_bytes_each) {
  test_ring t(128);
  const std::vector<std::byte> none;
  for (std::uint32_t i = 0; i < 16; ++i) ASSERT_EQ(t.writer.try_write(100 + i, none), ring_status::ok);
  EXPECT_EQ(t.writer.try_write(0, none), ring_status::full);
  for (std::uint32_t i = 0; i < 16; ++i) expect_frame(t.reader, 100 + i, none);
  for (int lap = 0; lap < 100; ++lap) {  // and around the ring many times
    ASSERT_EQ(t.writer.try_write(static_cast<std::uint32_t>(lap), none), ring_status::ok);
    expect_frame(t.reader, static_cast<std::uint32_t>(lap), none);
  }
}

TEST(ring, two_piece_writes_arrive_as_one_frame) {
  test_ring t(1024);
  const auto a = pattern(5, 1), b = pattern(17, 2);
  ASSERT_EQ(t.writer.try_write(9, a, b), ring_status::ok);
  auto both = a;
  both.insert(both.end(), b.begin(), b.end());
  expect_frame(t.reader, 9, both);
}

TEST(ring, reserve_then_commit_publishes_only_the_bytes_used) {
  test_ring t(1024);
  ring_status st;
  auto room = t.writer.try_reserve(300, st);
  ASSERT_EQ(st, ring_status::ok);
  ASSERT_EQ(room.size(), 300u);
  const auto msg = pattern(41, 5);
  std::memcpy(room.data(), msg.data(), msg.size());
  frame_view f;
  EXPECT_EQ(t.reader.try_read(f), ring_status::empty);  // nothing visible before commit
  t.writer.commit(4, msg.size());
  EXPECT_EQ(t.header->head.load(), 8u + 48);
  expect_frame(t.reader, 4, msg);
}

TEST(ring, reserve_at_the_wrap_pads_and_a_reservation_can_be_abandoned) {
  test_ring t(256, 224);  // 32 bytes to the end
  ring_status st;
  auto first = t.writer.try_reserve(100, st);  // needs padding: 32 + 112
  ASSERT_EQ(st, ring_status::ok);
  EXPECT_EQ(first.data(), static_cast<std::byte*>(t.region.data()) + sizeof(ring_header) + 8);
  frame_view f;
  EXPECT_EQ(t.reader.try_read(f), ring_status::empty);  // padding not visible either
  auto second = t.writer.try_reserve(10, st);  // abandons the first
  ASSERT_EQ(st, ring_status::ok);
  EXPECT_EQ(second.data(), first.data());
  const auto msg = pattern(10, 6);
  std::memcpy(second.data(), msg.data(), msg.size());
  t.writer.commit(5, 3);  // used < reserved
  EXPECT_EQ(t.header->head.load(), 224u + 32 + 16);
  expect_frame(t.reader, 5, std::vector<std::byte>(msg.begin(), msg.begin() + 3));
}

TEST(ring, misuse_is_reported_as_a_logic_error) {
  test_ring t(256);
  EXPECT_THROW(t.writer.commit(1, 0), std::logic_error);  // no reservation
  ring_status st;
  (void)t.writer.try_reserve(8, st);
  EXPECT_THROW(t.writer.commit(1, 9), std::logic_error);  // more than reserved
  EXPECT_THROW(t.writer.commit(padding_tag, 1), std::logic_error);
  const std::vector<std::byte> none;
  EXPECT_THROW((void)t.writer.try_write(padding_tag, none), std::invalid_argument);
  ASSERT_EQ(t.writer.try_write(1, none), ring_status::ok);
  ASSERT_EQ(t.writer.try_write(2, none), ring_status::ok);
  frame_view f;
  ASSERT_EQ(t.reader.try_read(f), ring_status::ok);
  EXPECT_THROW((void)t.reader.try_read(f), std::logic_error);  // pop() first
  t.reader.pop();
  t.reader.pop();  // a second pop is harmless
  ASSERT_EQ(t.reader.try_read(f), ring_status::ok);
  EXPECT_EQ(f.tag, 2u);
}

TEST(ring, blocking_calls_time_out_on_an_empty_or_full_ring) {
  test_ring t(128);
  frame_view f;
  EXPECT_EQ(t.reader.read(f, 0ns), ring_status::timeout);
  EXPECT_EQ(t.reader.read(f, 2ms), ring_status::timeout);
  EXPECT_EQ(t.header->reader_sleeping.load(), 0u);  // does not leave itself marked as sleeping
  const auto msg = pattern(56, 1);
  ASSERT_EQ(t.writer.write(1, msg, 0ns), ring_status::ok);
  ASSERT_EQ(t.writer.write(1, msg, 0ns), ring_status::ok);
  EXPECT_EQ(t.writer.write(1, msg, 0ns), ring_status::timeout);
  EXPECT_EQ(t.writer.write(1, msg, 2ms), ring_status::timeout);
  EXPECT_EQ(t.header->writer_sleeping.load(), 0u);
  EXPECT_EQ(t.reader.read(f, 2ms), ring_status::ok);
}

TEST(ring, blocking_calls_report_corruption_instead_of_a_timeout) {
  test_ring t(128);
  t.header->head.store(12);  // misaligned: the reader must say corrupt, not time out
  frame_view f;
  EXPECT_EQ(t.reader.read(f, 2ms), ring_status::corrupt);
  test_ring u(128);
  const auto msg = pattern(56, 1);
  ASSERT_EQ(u.writer.try_write(1, msg), ring_status::ok);
  ASSERT_EQ(u.writer.try_write(1, msg), ring_status::ok);
  u.header->tail.store(1000);  // ahead of the producer
  EXPECT_EQ(u.writer.write(1, msg, 2ms), ring_status::corrupt);
  EXPECT_NE(u.writer.error().find("consumer position 1000"), std::string::npos) << u.writer.error();
}

TEST(ring, the_producer_signals_the_eventfd_only_when_the_consumer_sleeps) {
  const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  {
    test_ring t(256, 0, wakeup::event(efd), wakeup::event(efd));
    const auto msg = pattern(8, 1);
    ASSERT_EQ(t.writer.try_write(1, msg), ring_status::ok);
    EXPECT_FALSE(eventfd_signalled(efd));  // nobody sleeps: no wake
    EXPECT_FALSE(t.reader.arm_wakeup());   // a frame is there: do not sleep
    EXPECT_EQ(t.header->reader_sleeping.load(), 0u);
    expect_frame(t.reader, 1, msg);
    EXPECT_TRUE(t.reader.arm_wakeup());  // empty: safe to wait on the eventfd
    EXPECT_EQ(t.header->reader_sleeping.load(), 1u);
    ASSERT_EQ(t.writer.try_write(2, msg), ring_status::ok);
    EXPECT_TRUE(eventfd_signalled(efd));
    EXPECT_EQ(t.header->reader_sleeping.load(), 0u);  // the waker cleared it: one wake only
    std::uint64_t v = 0;
    ASSERT_EQ(::read(efd, &v, sizeof v), 8);
    ASSERT_EQ(t.writer.try_write(3, msg), ring_status::ok);
    EXPECT_FALSE(eventfd_signalled(efd));
    expect_frame(t.reader, 2, msg);
    expect_frame(t.reader, 3, msg);
  }
  ::close(efd);
}

TEST(ring, the_consumer_signals_the_eventfd_only_when_the_producer_waits_for_space) {
  const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  {
    test_ring t(128, 0, {}, {}, wakeup::event(efd), wakeup::event(efd));
    const auto msg = pattern(56, 1);
    EXPECT_FALSE(t.writer.arm_space_wakeup(56));  // room now
    ASSERT_EQ(t.writer.try_write(1, msg), ring_status::ok);
    ASSERT_EQ(t.writer.try_write(2, msg), ring_status::ok);
    expect_frame(t.reader, 1, msg);
    EXPECT_FALSE(eventfd_signalled(efd));  // the producer did not sleep
    ASSERT_EQ(t.writer.try_write(3, msg), ring_status::ok);
    EXPECT_TRUE(t.writer.arm_space_wakeup(56));
    EXPECT_FALSE(t.writer.arm_space_wakeup(t.writer.max_payload() + 1));  // never sleeps on the impossible
    EXPECT_TRUE(t.writer.arm_space_wakeup(0));
    expect_frame(t.reader, 2, msg);
    EXPECT_TRUE(eventfd_signalled(efd));
    expect_frame(t.reader, 3, msg);
  }
  ::close(efd);
}

// A seeded random walk over writes, two-piece writes, reservations and reads, checked against a
// model that predicts every status (ok / full / too_large), every position and every byte.
TEST(ring, random_operations_match_a_simple_model) {
  std::uint64_t seed = 20240601;
  if (const char* s = std::getenv("PROCSUP_TEST_SEED")) seed = std::strtoull(s, nullptr, 10);
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set PROCSUP_TEST_SEED to replay)");
  std::mt19937_64 rng(seed);
  for (std::size_t cap : {std::size_t{64}, std::size_t{256}, std::size_t{4096}}) {
    test_ring t(cap, (rng() % 1024) * 8);
    struct model_frame {
      std::uint32_t tag;
      std::vector<std::byte> bytes;
      std::uint64_t footprint;  // padding before it + its own bytes
    };
    std::deque<model_frame> model;
    std::uint64_t head = t.header->head.load(), tail = head;
    const std::size_t max = ring_max_payload(cap);
    std::uint32_t next_tag = 0;
#if defined(__SANITIZE_ADDRESS__)
    constexpr int ops = 20000;
#else
    constexpr int ops = 100000;
#endif
    for (int i = 0; i < ops; ++i) {
      const auto op = rng() % 10;
      if (op < 5) {
        std::size_t n;
        switch (rng() % 4) {
          case 0: n = rng() % 9; break;
          case 1: n = rng() % (max + 1); break;
          case 2: n = max + rng() % 3; break;  // at and just beyond the limit
          default: n = rng() % (cap / 4); break;
        }
        const auto msg = pattern(n, next_tag);
        const auto how = rng() % 3;
        // A reservation may ask for more than it will use; padding and room depend on its size.
        const std::size_t reserve_n = how == 2 && n <= max ? std::min(max, n + rng() % 16) : n;
        const std::uint64_t to_end = cap - (head % cap);
        const std::uint64_t reserved_total = 8 + align8(reserve_n);
        const std::uint64_t pad = reserved_total > to_end ? to_end : 0;
        const std::uint64_t need = pad + 8 + align8(n);  // what the committed frame occupies
        const ring_status expected = n > max                                       ? ring_status::too_large
                                     : head + pad + reserved_total - tail > cap ? ring_status::full
                                                                                 : ring_status::ok;
        ring_status got;
        if (how == 0) {
          got = t.writer.try_write(next_tag, msg);
        } else if (how == 1) {
          const std::size_t split = n == 0 ? 0 : rng() % (n + 1);
          got = t.writer.try_write(next_tag, std::span(msg).first(split), std::span(msg).subspan(split));
        } else {
          auto room = t.writer.try_reserve(reserve_n, got);
          if (got == ring_status::ok) {
            ASSERT_EQ(room.size(), reserve_n);
            if (n > 0) std::memcpy(room.data(), msg.data(), n);
            t.writer.commit(next_tag, n);
          }
        }
        ASSERT_EQ(got, expected) << "op " << i << " size " << n << " cap " << cap;
        if (got == ring_status::ok) {
          head += need;
          model.push_back({next_tag, msg, need});
          ++next_tag;
        }
        ASSERT_EQ(t.header->head.load(), head);
      } else {
        frame_view f;
        const auto st = t.reader.try_read(f);
        if (model.empty()) {
          ASSERT_EQ(st, ring_status::empty);
          continue;
        }
        ASSERT_EQ(st, ring_status::ok) << t.reader.error();
        ASSERT_EQ(f.tag, model.front().tag);
        ASSERT_EQ(f.payload.size(), model.front().bytes.size());
        ASSERT_TRUE(f.payload.empty() || std::memcmp(f.payload.data(), model.front().bytes.data(), f.payload.size()) == 0);
        t.reader.pop();
        tail += model.front().footprint;
        model.pop_front();
        ASSERT_EQ(t.header->tail.load(), tail);
      }
    }
    EXPECT_FALSE(t.reader.corrupt());
    EXPECT_FALSE(t.writer.corrupt());
  }
}
