// Codecs: round trips of every built-in and of a user specialization; garbage is a decode_error.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <limits>

#include "procsup/ipc/codec.hpp"

using namespace procsup::ipc;
using procsup::shm::ring_status;

namespace {

struct point {
  std::int32_t x;
  double y;
  std::array<std::uint8_t, 3> tag;
  bool operator==(const point&) const = default;
};

enum class color : std::uint16_t { red = 1, blue = 7 };

// A user type that is not trivially copyable: a name and a count, as [u32 count][name bytes].
struct greeting {
  std::string name;
  std::uint32_t count = 0;
  bool operator==(const greeting&) const = default;
};

}  // namespace

template <>
struct procsup::ipc::codec<greeting> {
  static void encode(const greeting& g, std::vector<std::byte>& out) {
    codec<std::uint32_t>::encode(g.count, out);
    codec<std::string>::encode(g.name, out);
  }
  static greeting decode(std::span<const std::byte> bytes) {
    if (bytes.size() < 4) throw decode_error("greeting: shorter than its count");
    return {codec<std::string>::decode(bytes.subspan(4)), codec<std::uint32_t>::decode(bytes.first(4))};
  }
};

static_assert(has_encode_into<int> && has_encode_into<std::string> && has_encode_into<std::vector<std::byte>>);
static_assert(!has_encode_into<nlohmann::json> && !has_encode_into<greeting>);
static_assert(!detail::is_plain_bytes_v<int*> && !detail::is_plain_bytes_v<std::string_view> &&
              !detail::is_plain_bytes_v<std::span<int>> && !detail::is_plain_bytes_v<const char* [2]>);

template <class T>
T round_trip(const T& v) {
  return decode<T>(encode(v));
}

TEST(ipc_codec, trivially_copyable_values_round_trip) {
  EXPECT_EQ(round_trip(42), 42);
  EXPECT_EQ(round_trip(std::numeric_limits<std::uint64_t>::max()), std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(round_trip(-1.5), -1.5);
  EXPECT_EQ(round_trip(color::blue), color::blue);
  EXPECT_EQ(round_trip(true), true);
  EXPECT_EQ(round_trip(false), false);
  const point p{-3, 2.25, {1, 2, 3}};
  EXPECT_EQ(round_trip(p), p);
  EXPECT_EQ(encode(p).size(), sizeof(point));
  const std::array<int, 4> a{1, 2, 3, 4};
  EXPECT_EQ(round_trip(a), a);
}

TEST(ipc_codec, strings_and_byte_vectors_round_trip) {
  EXPECT_EQ(round_trip(std::string()), "");
  const std::string s("h\0llo, w\xc3\xb6rld", 13);
  EXPECT_EQ(round_trip(s), s);
  EXPECT_EQ(encode(s).size(), s.size());
  const std::vector<std::byte> b{std::byte{0}, std::byte{0xff}, std::byte{7}};
  EXPECT_EQ(round_trip(b), b);
  EXPECT_TRUE(round_trip(std::vector<std::byte>{}).empty());
  const std::vector<std::uint8_t> u{9, 8, 7, 0};
  EXPECT_EQ(round_trip(u), u);
}

TEST(ipc_codec, json_round_trips_as_text) {
  const nlohmann::json j = {{"op", "resize"}, {"w", 640}, {"ok", true}, {"list", {1, 2.5, nullptr}}, {"u", "\xc3\xa9"}};
  const auto bytes = encode(j);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()), j.dump());
  EXPECT_EQ(decode<nlohmann::json>(bytes), j);
}

TEST(ipc_codec, monostate_is_empty) {
  EXPECT_TRUE(encode(std::monostate{}).empty());
  EXPECT_NO_THROW(decode<std::monostate>({}));
}

TEST(ipc_codec, a_user_specialization_round_trips) {
  const greeting g{"world", 3};
  EXPECT_EQ(round_trip(g), g);
  EXPECT_THROW(decode<greeting>(encode(std::uint16_t{1})), decode_error);
}

TEST(ipc_codec, wrong_sizes_are_decode_errors) {
  EXPECT_THROW(decode<int>(encode(std::int64_t{1})), decode_error);
  EXPECT_THROW(decode<point>(encode(1)), decode_error);
  EXPECT_THROW(decode<double>({}), decode_error);
  EXPECT_THROW(decode<std::monostate>(encode(std::uint8_t{0})), decode_error);
  try {
    (void)decode<std::uint32_t>(encode(std::uint16_t{1}));
    FAIL() << "no decode_error";
  } catch (const decode_error& e) {
    EXPECT_NE(std::string(e.what()).find("expected 4 bytes, got 2"), std::string::npos) << e.what();
  }
}

TEST(ipc_codec, a_bool_byte_other_than_0_or_1_is_a_decode_error) {
  EXPECT_THROW(decode<bool>(encode(std::uint8_t{2})), decode_error);
}

TEST(ipc_codec, invalid_json_is_a_decode_error) {
  for (std::string bad : {"", "{", "{\"a\":}", "[1,2", "nul", "\xff\xfe", "{\"a\":1} trailing"}) {
    EXPECT_THROW(decode<nlohmann::json>(encode(bad)), decode_error) << bad;
  }
}

TEST(ipc_codec, try_send_value_takes_the_zero_copy_path_and_refuses_oversized_values) {
  auto ch = channel::create({.ring_capacity = 4096});
  auto parent = ch.parent_end();
  auto child = ch.child_end();
  const point p{1, 2.0, {3, 4, 5}};
  ASSERT_EQ(try_send_value(parent, frame_kind::request, 11, p), ring_status::ok);
  ASSERT_EQ(try_send_value(parent, frame_kind::request, 12, nlohmann::json{{"k", "v"}}), ring_status::ok);
  ASSERT_EQ(try_send_value(parent, frame_kind::request, 13, greeting{"x", 1}), ring_status::ok);
  EXPECT_EQ(try_send_value(parent, frame_kind::request, 14, std::string(parent.max_body() + 1, 'x')),
            ring_status::too_large);
  message m;
  ASSERT_EQ(child.try_receive(m), ring_status::ok);
  EXPECT_EQ(m.id, 11u);
  EXPECT_EQ(decode<point>(m.body), p);
  child.release();
  ASSERT_EQ(child.try_receive(m), ring_status::ok);
  EXPECT_EQ(m.id, 12u);
  EXPECT_EQ(decode<nlohmann::json>(m.body)["k"], "v");
  child.release();
  ASSERT_EQ(child.try_receive(m), ring_status::ok);
  EXPECT_EQ(decode<greeting>(m.body), (greeting{"x", 1}));
  child.release();
  EXPECT_EQ(child.try_receive(m), ring_status::empty);
}
