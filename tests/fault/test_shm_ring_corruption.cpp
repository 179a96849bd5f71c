// A child that writes garbage over the ring (header and data): the parent's reader and writer
// report ring_status::corrupt with a message, and never crash, hang or read out of bounds (this
// suite also runs under ASan + UBSan).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
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

constexpr std::size_t cap = 1024;

std::uint64_t header_word(std::uint32_t length, std::uint32_t tag) { return length | (std::uint64_t{tag} << 32); }

// The parent holds both endpoints of a ring (as a supervisor holds the reading end of one ring
// and the writing end of the other); a child scribbles on the shared mapping.
class ring_corruption : public procsup::testing::process_guard_test {
 protected:
  ring_corruption()
      : region_(shared_region::create(ring_bytes(cap))), header_(format_ring(region_.data(), region_.size(), cap)) {}

  void attach(std::uint64_t start = 0) {
    header_->head.store(start);
    header_->tail.store(start);
    writer_ = ring_writer(region_.data(), region_.size());
    reader_ = ring_reader(region_.data(), region_.size());
  }

  std::byte* data() const { return static_cast<std::byte*>(region_.data()) + sizeof(ring_header); }
  std::uint64_t offset(std::uint64_t pos) const { return pos & (cap - 1); }
  void put_word(std::uint64_t pos, std::uint64_t w) const { std::memcpy(data() + offset(pos), &w, 8); }

  ring_status write(std::uint32_t tag, std::size_t n) {
    const std::vector<std::byte> bytes(n, std::byte{0x5a});
    return writer_.try_write(tag, bytes);
  }

  // Runs `scribble` in a child (with the mapping inherited through fork) and waits for it.
  void from_child(const std::function<void(ring_header*, std::byte*)>& scribble) {
    const pid_t pid = fork_child([&] {
      scribble(header_, data());
      return 0;
    });
    ASSERT_GT(pid, 0);
    const int status = wait_child(pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << describe_wait_status(status);
  }

  // Reads frames until something else than ok; every frame must lie inside the data area.
  ring_status drain() {
    for (int i = 0; i < 4 * static_cast<int>(cap); ++i) {
      frame_view f;
      const auto st = reader_.try_read(f);
      if (st != ring_status::ok) return st;
      EXPECT_GE(f.payload.data(), data());
      EXPECT_LE(f.payload.data() + f.payload.size(), data() + cap);
      EXPECT_LE(f.payload.size(), ring_max_payload(cap));
      volatile unsigned sum = 0;  // touch every byte: ASan catches any out-of-bounds view
      for (auto b : f.payload) sum = sum + std::to_integer<unsigned>(b);
      reader_.pop();
    }
    ADD_FAILURE() << "the reader never stopped";
    return ring_status::ok;
  }

  // The reader says corrupt, with a message containing `what`, stays corrupt, and its blocking
  // read reports it at once instead of waiting.
  void expect_reader_corrupt(const std::string& what) {
    EXPECT_EQ(drain(), ring_status::corrupt);
    EXPECT_TRUE(reader_.corrupt());
    EXPECT_NE(reader_.error().find(what), std::string::npos) << reader_.error();
    frame_view f;
    EXPECT_EQ(reader_.try_read(f), ring_status::corrupt);
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(reader_.read(f, 10s), ring_status::corrupt);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
    EXPECT_FALSE(reader_.arm_wakeup());
  }

  // The writer says corrupt (writing until it does), with `what` in its message.
  void expect_writer_corrupt(const std::string& what) {
    ring_status st = ring_status::ok;
    for (int i = 0; i < 4 * static_cast<int>(cap) && st != ring_status::corrupt; ++i) st = write(1, 100);
    EXPECT_EQ(st, ring_status::corrupt);
    EXPECT_NE(writer_.error().find(what), std::string::npos) << writer_.error();
    EXPECT_EQ(write(1, 0), ring_status::corrupt);
    EXPECT_EQ(writer_.write(1, {}, 10s), ring_status::corrupt);
    EXPECT_FALSE(writer_.arm_space_wakeup(0));
    EXPECT_EQ(writer_.free_bytes(), 0u);
  }

  shared_region region_;
  ring_header* header_;
  ring_writer writer_;
  ring_reader reader_;
};

}  // namespace

// ---- the producer's side of the ring lies (the reader must notice)

TEST_F(ring_corruption, a_huge_frame_length_is_reported_as_corrupt) {
  attach();
  ASSERT_EQ(write(1, 16), ring_status::ok);
  from_child([&](ring_header*, std::byte*) { put_word(0, header_word(0xffffffffu, 1)); });
  expect_reader_corrupt("bad frame at position 0 (length 4294967295");
}

TEST_F(ring_corruption, a_length_beyond_the_largest_frame_is_reported_as_corrupt) {
  attach();
  for (int i = 0; i < 20; ++i) ASSERT_EQ(write(1, 40), ring_status::ok);  // 960 bytes published
  from_child([&](ring_header*, std::byte*) { put_word(0, header_word(static_cast<std::uint32_t>(cap / 2), 1)); });
  expect_reader_corrupt("length 512");
}

TEST_F(ring_corruption, a_frame_longer_than_what_was_published_is_reported_as_corrupt) {
  attach();
  ASSERT_EQ(write(1, 8), ring_status::ok);  // 16 bytes published
  from_child([&](ring_header*, std::byte*) { put_word(0, header_word(200, 1)); });
  expect_reader_corrupt("16 bytes published");
}

TEST_F(ring_corruption, a_frame_crossing_the_end_of_the_buffer_is_reported_as_corrupt) {
  attach(cap - 16);
  ASSERT_EQ(write(1, 8), ring_status::ok);
  ASSERT_EQ(write(2, 100), ring_status::ok);  // fills to the end exactly, the next frame at 0
  from_child([&](ring_header*, std::byte*) { put_word(cap - 16, header_word(40, 1)); });  // would run off the end
  expect_reader_corrupt("bad frame at position " + std::to_string(cap - 16));
}

TEST_F(ring_corruption, a_misaligned_head_is_reported_as_corrupt) {
  attach();
  from_child([](ring_header* h, std::byte*) { h->head.store(12); });
  expect_reader_corrupt("producer position 12 is impossible");
}

TEST_F(ring_corruption, a_head_behind_the_tail_is_reported_as_corrupt) {
  attach(4096);
  ASSERT_EQ(write(1, 8), ring_status::ok);
  frame_view f;
  ASSERT_EQ(reader_.try_read(f), ring_status::ok);
  reader_.pop();
  from_child([](ring_header* h, std::byte*) { h->head.store(4096); });  // went backwards
  expect_reader_corrupt("producer position 4096 is impossible (consumer at 4112");
}

TEST_F(ring_corruption, a_head_more_than_a_ring_ahead_is_reported_as_corrupt) {
  attach();
  from_child([](ring_header* h, std::byte*) { h->head.store(cap + 8); });
  expect_reader_corrupt("producer position 1032 is impossible");
}

TEST_F(ring_corruption, a_huge_head_is_reported_as_corrupt) {
  attach();
  from_child([](ring_header* h, std::byte*) { h->head.store(~std::uint64_t{7}); });
  expect_reader_corrupt("is impossible");
}

TEST_F(ring_corruption, padding_that_lies_about_its_length_is_reported_as_corrupt) {
  attach(cap - 16);
  ASSERT_EQ(write(1, 0), ring_status::ok);    // 8 bytes at cap - 16
  ASSERT_EQ(write(2, 100), ring_status::ok);  // padding (length 0) at cap - 8, the frame at 0
  frame_view f;
  ASSERT_EQ(reader_.try_read(f), ring_status::ok);
  reader_.pop();
  from_child([&](ring_header*, std::byte*) { put_word(cap - 8, header_word(64, padding_tag)); });
  expect_reader_corrupt("bad padding frame");
}

TEST_F(ring_corruption, padding_at_the_start_of_the_buffer_is_reported_as_corrupt) {
  attach();
  for (int i = 0; i < 8; ++i) ASSERT_EQ(write(1, 120), ring_status::ok);  // the whole ring
  from_child([&](ring_header*, std::byte*) { put_word(0, header_word(cap - 8, padding_tag)); });
  expect_reader_corrupt("bad padding frame at position 0");
}

TEST_F(ring_corruption, padding_with_no_frame_after_it_is_reported_as_corrupt) {
  attach(cap - 64);
  from_child([&](ring_header* h, std::byte*) {
    put_word(cap - 64, header_word(56, padding_tag));
    h->head.store(cap);  // publishes the padding alone
  });
  expect_reader_corrupt("bad padding frame");
}

TEST_F(ring_corruption, two_padding_frames_in_a_row_are_reported_as_corrupt) {
  attach(cap - 64);
  from_child([&](ring_header* h, std::byte*) {
    put_word(cap - 64, header_word(56, padding_tag));
    put_word(0, header_word(cap - 8, padding_tag));
    h->head.store(cap + 64);
  });
  expect_reader_corrupt("tag 4294967295");
}

TEST_F(ring_corruption, a_rewritten_capacity_does_not_move_the_endpoints_bounds) {
  attach();
  from_child([](ring_header* h, std::byte*) {
    h->capacity = std::uint64_t{1} << 31;  // plausible, and far larger than the mapping
    h->magic = 0;
  });
  // The endpoints kept their own copy of the capacity: they keep working inside the mapping.
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(write(static_cast<std::uint32_t>(i), static_cast<std::size_t>(i % 300)), ring_status::ok);
    frame_view f;
    ASSERT_EQ(reader_.try_read(f), ring_status::ok);
    ASSERT_EQ(f.payload.size(), static_cast<std::size_t>(i % 300));
    ASSERT_LE(f.payload.data() + f.payload.size(), data() + cap);
    reader_.pop();
  }
  // A new attach refuses the ring, saying why.
  EXPECT_NE(check_ring(region_.data(), region_.size()), "");
  EXPECT_THROW(ring_reader(region_.data(), region_.size()), std::runtime_error);
}

// ---- the consumer's side of the ring lies (the writer must notice)

TEST_F(ring_corruption, a_tail_ahead_of_the_head_is_reported_as_corrupt_by_the_writer) {
  attach();
  from_child([](ring_header* h, std::byte*) { h->tail.store(4096); });
  expect_writer_corrupt("consumer position 4096 is impossible");
}

TEST_F(ring_corruption, a_tail_that_goes_backwards_is_reported_as_corrupt_by_the_writer) {
  attach(8192);
  for (int i = 0; i < 9; ++i) ASSERT_EQ(write(1, 100), ring_status::ok);
  for (int i = 0; i < 9; ++i) {
    frame_view f;
    ASSERT_EQ(reader_.try_read(f), ring_status::ok);
    reader_.pop();
  }
  ASSERT_EQ(writer_.free_bytes(), cap);  // the writer has seen the tail at 8192 + 9 * 112
  from_child([](ring_header* h, std::byte*) { h->tail.store(8192); });
  expect_writer_corrupt("consumer position 8192 is impossible");
}

TEST_F(ring_corruption, a_misaligned_tail_is_reported_as_corrupt_by_the_writer) {
  attach();
  for (int i = 0; i < 9; ++i) ASSERT_EQ(write(1, 100), ring_status::ok);
  from_child([](ring_header* h, std::byte*) { h->tail.store(20); });
  expect_writer_corrupt("consumer position 20 is impossible");
}

TEST_F(ring_corruption, garbage_in_the_sleeping_flags_costs_at_most_a_wake) {
  attach();
  from_child([](ring_header* h, std::byte*) {
    h->reader_sleeping.store(0xdeadbeef);
    h->writer_sleeping.store(0xffffffff);
  });
  ASSERT_EQ(write(1, 10), ring_status::ok);  // wakes a reader that is not asleep: harmless
  frame_view f;
  ASSERT_EQ(reader_.read(f, 1s), ring_status::ok);
  reader_.pop();
  EXPECT_EQ(reader_.read(f, 5ms), ring_status::timeout);
  EXPECT_FALSE(reader_.corrupt());
  EXPECT_FALSE(writer_.corrupt());
}

TEST_F(ring_corruption, a_frame_rewritten_while_it_is_being_read_keeps_its_validated_extent) {
  attach();
  ASSERT_EQ(write(1, 16), ring_status::ok);
  ASSERT_EQ(write(2, 16), ring_status::ok);
  frame_view f;
  ASSERT_EQ(reader_.try_read(f), ring_status::ok);
  from_child([&](ring_header*, std::byte*) { put_word(0, header_word(500, 7)); });  // after validation
  EXPECT_EQ(f.payload.size(), 16u);
  reader_.pop();  // advances by what was validated, not by the new length
  ASSERT_EQ(reader_.try_read(f), ring_status::ok);
  EXPECT_EQ(f.tag, 2u);
  reader_.pop();
}

// ---- random garbage over everything

TEST_F(ring_corruption, random_garbage_over_header_and_data_is_reported_never_fatal) {
  std::uint64_t seed = 4242;
  if (const char* s = std::getenv("PROCSUP_TEST_SEED")) seed = std::strtoull(s, nullptr, 10);
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set PROCSUP_TEST_SEED to replay)");
  std::mt19937_64 rng(seed);
  int corrupt_reads = 0, corrupt_writes = 0;
#if defined(__SANITIZE_ADDRESS__)
  constexpr int rounds = 60;
#else
  constexpr int rounds = 200;
#endif
  for (int round = 0; round < rounds; ++round) {
    format_ring(region_.data(), region_.size(), cap);
    attach((rng() % 4096) * 8);
    for (int i = 0; i < 5; ++i) (void)write(1, rng() % 200);
    const std::uint64_t child_seed = rng();
    const int mode = round % 3;
    from_child([&](ring_header* h, std::byte* d) {
      std::mt19937_64 r(child_seed);
      auto* bytes = reinterpret_cast<unsigned char*>(h);
      const std::size_t n = sizeof(ring_header) + cap;
      if (mode == 0) {  // everything random
        for (std::size_t i = 0; i < n; ++i) bytes[i] = static_cast<unsigned char>(r());
      } else if (mode == 1) {  // plausible positions, random frames
        const std::uint64_t base = h->tail.load();
        h->head.store(base + (r() % (cap / 8 + 1)) * 8);
        for (std::size_t i = 0; i < cap; ++i) d[i] = std::byte(static_cast<unsigned char>(r()));
      } else {  // a few random words here and there
        for (int k = 0; k < 8; ++k) {
          const std::uint64_t w = r();
          std::memcpy(bytes + (r() % (n / 8)) * 8, &w, 8);
        }
      }
    });
    const auto rs = drain();
    EXPECT_TRUE(rs == ring_status::empty || rs == ring_status::corrupt) << to_string(rs);
    if (rs == ring_status::corrupt) {
      ++corrupt_reads;
      EXPECT_FALSE(reader_.error().empty());
    }
    ring_status ws = ring_status::ok;
    for (int i = 0; i < 20 && ws == ring_status::ok; ++i) ws = write(2, rng() % 300);
    EXPECT_TRUE(ws == ring_status::ok || ws == ring_status::full || ws == ring_status::corrupt) << to_string(ws);
    if (ws == ring_status::corrupt) ++corrupt_writes;
    if (mode == 0) {
      EXPECT_EQ(rs, ring_status::corrupt) << "round " << round << ": random positions went unnoticed";
    }
  }
  std::printf("%d rounds: %d corrupt reads, %d corrupt writes reported\n", rounds, corrupt_reads, corrupt_writes);
}

TEST_F(ring_corruption, a_child_scribbling_while_the_parent_works_never_crashes_or_hangs_it) {
  attach();
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  const pid_t child = fork_child([&] {
    ::close(ready[0]);
    std::mt19937_64 r(99);
    auto* words = reinterpret_cast<std::uint64_t*>(region_.data());
    const std::size_t n = (sizeof(ring_header) + cap) / 8;
    if (::write(ready[1], "r", 1) != 1) return 80;
    for (;;) {  // until killed: random words anywhere, positions nudged to stay plausible
      const std::uint64_t v = r();
      switch (v % 4) {
        case 0: __atomic_store_n(&words[r() % n], r(), __ATOMIC_RELAXED); break;
        case 1: header_->head.store(header_->tail.load() + (r() % 130) * 8); break;
        case 2: header_->tail.store(header_->head.load() - (r() % 130) * 8); break;
        default: __atomic_store_n(&words[sizeof(ring_header) / 8 + r() % (cap / 8)], r(), __ATOMIC_RELAXED); break;
      }
    }
  });
  ASSERT_GT(child, 0);
  ::close(ready[1]);
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  int reattached = 0;
  const auto until = std::chrono::steady_clock::now() + 300ms;
  while (std::chrono::steady_clock::now() < until) {
    // Every corrupt endpoint is replaced by a fresh one, as a supervisor restarts the child.
    if (reader_.corrupt() || writer_.corrupt()) {
      bool attached = false;
      for (int attempt = 0; attempt < 1000 && !attached; ++attempt) {
        try {
          reader_ = ring_reader(region_.data(), region_.size());
          writer_ = ring_writer(region_.data(), region_.size());
          attached = true;
        } catch (const std::runtime_error&) {
          // The header is destroyed (and may be again before we attach): re-format, retry.
          format_ring(region_.data(), region_.size(), cap);
        }
      }
      ASSERT_TRUE(attached);
      ++reattached;
    }
    (void)drain();
    (void)write(3, static_cast<std::size_t>(reattached % 200));
    frame_view f;
    (void)reader_.read(f, 50us);
    reader_.pop();
  }
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  const int status = wait_child(child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << describe_wait_status(status);
  EXPECT_GT(reattached, 0);
  std::printf("corruption noticed and endpoints re-attached %d times in 300 ms\n", reattached);
}
