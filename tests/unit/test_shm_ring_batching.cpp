// Batched publication (ring_writer / ring_reader::set_batching): frames become visible in
// batches, space comes back in batches, and nothing is lost or reordered.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "procsup/shm/region.hpp"
#include "procsup/shm/ring.hpp"

using namespace procsup::shm;

namespace {

struct ring_fixture {
  explicit ring_fixture(std::size_t cap) : region(shared_region::create(ring_bytes(cap))) {
    format_ring(region.data(), region.size(), cap);
  }
  shared_region region;
};

std::vector<std::byte> frame_of(std::uint32_t n) {
  std::vector<std::byte> v(64);
  std::memcpy(v.data(), &n, sizeof n);
  return v;
}

}  // namespace

TEST(ring_batching, frames_stay_invisible_until_flush) {
  ring_fixture f(1 << 16);
  ring_writer w(f.region.data(), f.region.size());
  ring_reader r(f.region.data(), f.region.size());
  w.set_batching(true);
  ASSERT_EQ(w.try_write(1, frame_of(1)), ring_status::ok);
  ASSERT_EQ(w.try_write(1, frame_of(2)), ring_status::ok);
  frame_view fv;
  EXPECT_EQ(r.try_read(fv), ring_status::empty);
  w.flush();
  for (std::uint32_t want : {1u, 2u}) {
    ASSERT_EQ(r.try_read(fv), ring_status::ok);
    std::uint32_t got;
    std::memcpy(&got, fv.payload.data(), sizeof got);
    EXPECT_EQ(got, want);
    r.pop();
  }
  EXPECT_EQ(r.try_read(fv), ring_status::empty);
}

TEST(ring_batching, writer_publishes_by_itself_every_4_kib) {
  ring_fixture f(1 << 16);
  ring_writer w(f.region.data(), f.region.size());
  ring_reader r(f.region.data(), f.region.size());
  w.set_batching(true);
  // 72-byte frames: the 57th crosses 4 KiB of unpublished bytes.
  int written = 0;
  frame_view fv;
  while (r.try_read(fv) == ring_status::empty) {
    ASSERT_LT(written, 100) << "never published by itself";
    ASSERT_EQ(w.try_write(1, frame_of(static_cast<std::uint32_t>(written))), ring_status::ok);
    ++written;
  }
  EXPECT_EQ(written, 57);
}

TEST(ring_batching, reader_returns_space_in_batches_and_when_it_finds_the_ring_empty) {
  ring_fixture f(1 << 16);
  ring_writer w(f.region.data(), f.region.size());
  ring_reader r(f.region.data(), f.region.size());
  r.set_batching(true);
  for (std::uint32_t i = 0; i < 10; ++i) ASSERT_EQ(w.try_write(1, frame_of(i)), ring_status::ok);
  const std::size_t before = w.free_bytes();
  frame_view fv;
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(r.try_read(fv), ring_status::ok);
    r.pop();
  }
  EXPECT_EQ(w.free_bytes(), before) << "space came back frame by frame";
  EXPECT_EQ(r.try_read(fv), ring_status::empty);
  EXPECT_EQ(w.free_bytes(), std::size_t{1} << 16) << "an empty ring hands everything back";
}

TEST(ring_batching, a_full_batching_writer_publishes_so_the_reader_can_drain) {
  ring_fixture f(4096);
  ring_writer w(f.region.data(), f.region.size());
  ring_reader r(f.region.data(), f.region.size());
  w.set_batching(true);
  std::uint32_t n = 0;
  while (w.try_write(1, frame_of(n)) == ring_status::ok) ++n;
  frame_view fv;
  std::uint32_t seen = 0;
  while (r.try_read(fv) == ring_status::ok) {
    std::uint32_t got;
    std::memcpy(&got, fv.payload.data(), sizeof got);
    EXPECT_EQ(got, seen++);
    r.pop();
  }
  EXPECT_EQ(seen, n);
}
