#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "procsup/shm/region.hpp"
#include "procsup/shm/ring.hpp"

using namespace procsup::shm;

TEST(ring, frames_written_are_read_back_in_order) {
  auto region = shared_region::create(ring_bytes(4096));
  format_ring(region.data(), region.size(), 4096);
  ring_writer w(region.data(), region.size());
  ring_reader r(region.data(), region.size());
  for (int round = 0; round < 1000; ++round) {
    std::vector<std::byte> msg(static_cast<std::size_t>(round % 300), std::byte(round & 0xff));
    ASSERT_EQ(w.try_write(7, msg), ring_status::ok);
    frame_view f;
    ASSERT_EQ(r.try_read(f), ring_status::ok);
    EXPECT_EQ(f.tag, 7u);
    ASSERT_EQ(f.payload.size(), msg.size());
    EXPECT_EQ(std::memcmp(f.payload.data(), msg.data(), msg.size()), 0);
    r.pop();
  }
  frame_view f;
  EXPECT_EQ(r.try_read(f), ring_status::empty);
}
