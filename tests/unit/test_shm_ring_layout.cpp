// Pins the shared ring header's binary layout: a change here breaks every peer built earlier, so
// it must come with a new ring_layout_version. Also: attach refuses what it does not understand.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "procsup/shm/ring.hpp"

using namespace procsup::shm;

namespace {

// A 64-byte aligned, zeroed buffer of `bytes` bytes.
struct aligned_buffer {
  explicit aligned_buffer(std::size_t n) : bytes(n), mem(static_cast<std::byte*>(std::aligned_alloc(64, (n + 63) / 64 * 64))) {
    std::memset(mem.get(), 0, n);
  }
  struct free_deleter {
    void operator()(std::byte* p) const noexcept { std::free(p); }
  };
  std::size_t bytes;
  std::unique_ptr<std::byte, free_deleter> mem;
  void* data() const noexcept { return mem.get(); }
  ring_header* header() const noexcept { return reinterpret_cast<ring_header*>(mem.get()); }
};

// The message of the exception `f` throws (fails the test if it throws nothing).
template <class F>
std::string thrown_message(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "no exception thrown";
  return {};
}

}  // namespace

TEST(ring_layout, header_size_and_field_offsets_are_pinned) {
  EXPECT_EQ(sizeof(ring_header), 320u);
  EXPECT_EQ(alignof(ring_header), 64u);
  EXPECT_EQ(offsetof(ring_header, magic), 0u);
  EXPECT_EQ(offsetof(ring_header, version), 8u);
  EXPECT_EQ(offsetof(ring_header, header_size), 12u);
  EXPECT_EQ(offsetof(ring_header, capacity), 16u);
  EXPECT_EQ(offsetof(ring_header, head), 64u);
  EXPECT_EQ(offsetof(ring_header, tail), 128u);
  EXPECT_EQ(offsetof(ring_header, reader_sleeping), 192u);
  EXPECT_EQ(offsetof(ring_header, writer_sleeping), 256u);
  EXPECT_EQ(sizeof(ring_header::head), 8u);
  EXPECT_EQ(sizeof(ring_header::tail), 8u);
  EXPECT_EQ(sizeof(ring_header::reader_sleeping), 4u);
  EXPECT_EQ(sizeof(ring_header::writer_sleeping), 4u);
  EXPECT_EQ(frame_header_size, 8u);
  EXPECT_EQ(padding_tag, 0xffffffffu);
}

TEST(ring_layout, magic_and_version_are_pinned) {
  EXPECT_EQ(ring_magic, 0x474e495250555350ULL);
  char text[9] = {};
  std::memcpy(text, &ring_magic, 8);
  EXPECT_STREQ(text, "PSUPRING");  // little-endian, so the bytes read as text in a hex dump
  EXPECT_EQ(ring_layout_version, 1u);
}

TEST(ring_layout, format_writes_magic_version_size_and_capacity) {
  aligned_buffer buf(ring_bytes(1024));
  std::memset(buf.data(), 0xab, buf.bytes);
  ring_header* h = format_ring(buf.data(), buf.bytes, 1024);
  EXPECT_EQ(static_cast<void*>(h), buf.data());
  EXPECT_EQ(h->magic, ring_magic);
  EXPECT_EQ(h->version, ring_layout_version);
  EXPECT_EQ(h->header_size, sizeof(ring_header));
  EXPECT_EQ(h->capacity, 1024u);
  EXPECT_EQ(h->head.load(), 0u);
  EXPECT_EQ(h->tail.load(), 0u);
  EXPECT_EQ(h->reader_sleeping.load(), 0u);
  EXPECT_EQ(h->writer_sleeping.load(), 0u);
  EXPECT_EQ(check_ring(buf.data(), buf.bytes), "");
}

TEST(ring_layout, format_refuses_bad_capacity_size_and_alignment) {
  aligned_buffer buf(ring_bytes(4096) + 64);
  EXPECT_THROW(format_ring(buf.data(), buf.bytes, 0), std::invalid_argument);
  EXPECT_THROW(format_ring(buf.data(), buf.bytes, 32), std::invalid_argument);
  EXPECT_THROW(format_ring(buf.data(), buf.bytes, 1000), std::invalid_argument);
  EXPECT_THROW(format_ring(buf.data(), buf.bytes, ring_max_capacity * 2), std::invalid_argument);
  EXPECT_THROW(format_ring(buf.data(), ring_bytes(4096) - 1, 4096), std::invalid_argument);
  EXPECT_THROW(format_ring(static_cast<std::byte*>(buf.data()) + 8, buf.bytes - 8, 1024), std::invalid_argument);
  EXPECT_NE(thrown_message([&] { format_ring(buf.data(), buf.bytes, 1000); }).find("1000"), std::string::npos);
}

TEST(ring_layout, attach_refuses_bad_magic_with_a_message) {
  aligned_buffer buf(ring_bytes(1024));
  format_ring(buf.data(), buf.bytes, 1024);
  buf.header()->magic ^= 1;
  EXPECT_NE(check_ring(buf.data(), buf.bytes).find("magic"), std::string::npos);
  EXPECT_NE(thrown_message([&] { ring_reader r(buf.data(), buf.bytes); }).find("magic"), std::string::npos);
  EXPECT_NE(thrown_message([&] { ring_writer w(buf.data(), buf.bytes); }).find("magic"), std::string::npos);
}

TEST(ring_layout, attach_refuses_another_layout_version_with_a_message) {
  aligned_buffer buf(ring_bytes(1024));
  format_ring(buf.data(), buf.bytes, 1024);
  buf.header()->version = ring_layout_version + 1;
  const auto msg = thrown_message([&] { ring_reader r(buf.data(), buf.bytes); });
  EXPECT_NE(msg.find("version 2"), std::string::npos) << msg;
  EXPECT_NE(thrown_message([&] { ring_writer w(buf.data(), buf.bytes); }).find("version"), std::string::npos);
}

TEST(ring_layout, attach_refuses_a_wrong_header_size_with_a_message) {
  aligned_buffer buf(ring_bytes(1024));
  format_ring(buf.data(), buf.bytes, 1024);
  buf.header()->header_size = 256;
  EXPECT_NE(check_ring(buf.data(), buf.bytes).find("header size 256"), std::string::npos);
}

TEST(ring_layout, attach_refuses_capacities_that_are_not_powers_of_two_or_do_not_fit) {
  aligned_buffer buf(ring_bytes(1024));
  format_ring(buf.data(), buf.bytes, 1024);
  for (std::uint64_t cap : {std::uint64_t{0}, std::uint64_t{8}, std::uint64_t{32}, std::uint64_t{1000},
                            std::uint64_t{1025}, std::uint64_t{2048}, std::uint64_t{1} << 33, ~std::uint64_t{0}}) {
    buf.header()->capacity = cap;
    const auto msg = check_ring(buf.data(), buf.bytes);
    EXPECT_NE(msg.find("capacity " + std::to_string(cap)), std::string::npos) << cap << ": " << msg;
    EXPECT_THROW(ring_reader(buf.data(), buf.bytes), std::runtime_error) << cap;
    EXPECT_THROW(ring_writer(buf.data(), buf.bytes), std::runtime_error) << cap;
  }
  buf.header()->capacity = 512;  // smaller than the buffer is fine
  EXPECT_EQ(check_ring(buf.data(), buf.bytes), "");
}

TEST(ring_layout, attach_refuses_null_short_and_misaligned_memory) {
  aligned_buffer buf(ring_bytes(1024) + 64);
  format_ring(buf.data(), buf.bytes, 1024);
  EXPECT_NE(check_ring(nullptr, 4096), "");
  EXPECT_NE(check_ring(buf.data(), sizeof(ring_header) - 1).find("smaller than a ring header"), std::string::npos);
  EXPECT_NE(check_ring(buf.data(), ring_bytes(1024) - 1).find("does not fit"), std::string::npos);
  EXPECT_NE(check_ring(static_cast<std::byte*>(buf.data()) + 8, buf.bytes - 8).find("aligned"), std::string::npos);
}

TEST(ring_layout, attach_reports_impossible_positions_as_corrupt) {
  aligned_buffer buf(ring_bytes(1024));
  format_ring(buf.data(), buf.bytes, 1024);
  buf.header()->head.store(4);  // misaligned
  ring_writer w(buf.data(), buf.bytes);
  EXPECT_TRUE(w.corrupt());
  EXPECT_NE(w.error().find("inconsistent"), std::string::npos) << w.error();
  const std::byte b{};
  EXPECT_EQ(w.try_write(1, {&b, 1}), ring_status::corrupt);

  buf.header()->head.store(0);
  buf.header()->tail.store(12);
  ring_reader r(buf.data(), buf.bytes);
  EXPECT_TRUE(r.corrupt());
  frame_view f;
  EXPECT_EQ(r.try_read(f), ring_status::corrupt);
}

TEST(ring_layout, status_names_are_readable) {
  EXPECT_STREQ(to_string(ring_status::ok), "ok");
  EXPECT_STREQ(to_string(ring_status::empty), "empty");
  EXPECT_STREQ(to_string(ring_status::full), "full");
  EXPECT_STREQ(to_string(ring_status::too_large), "too large");
  EXPECT_STREQ(to_string(ring_status::timeout), "timeout");
  EXPECT_STREQ(to_string(ring_status::corrupt), "corrupt");
}
