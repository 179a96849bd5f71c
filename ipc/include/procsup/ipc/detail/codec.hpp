// Template bodies of codec.hpp: the built-in codecs and the encode / decode / send helpers.
#pragma once

#include <array>
#include <bit>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include <nlohmann/json.hpp>

namespace procsup::ipc {

namespace detail {

template <class T>
struct is_view : std::false_type {};
template <class C, class Tr>
struct is_view<std::basic_string_view<C, Tr>> : std::true_type {};
template <class E, std::size_t N>
struct is_view<std::span<E, N>> : std::true_type {};

// Trivially copyable and holding no pointer we can detect: its bytes are its value.
template <class T>
inline constexpr bool is_plain_bytes_v =
    std::is_trivially_copyable_v<T> && !std::is_pointer_v<std::remove_all_extents_t<T>> &&
    !std::is_member_pointer_v<std::remove_all_extents_t<T>> && !std::is_null_pointer_v<T> && !is_view<T>::value &&
    !std::is_same_v<T, std::monostate> && !std::is_empty_v<T>;

[[noreturn]] inline void wrong_size(const char* what, std::size_t want, std::size_t got) {
  throw decode_error(std::string("ipc::decode<") + what + ">: expected " + std::to_string(want) + " bytes, got " +
                     std::to_string(got));
}

inline void copy_out(std::span<std::byte> out, const void* src, std::size_t n) {
  if (n != 0) std::memcpy(out.data(), src, n);
}

}  // namespace detail

// Trivially copyable values: their object representation.
template <class T>
struct codec<T, std::enable_if_t<detail::is_plain_bytes_v<T>>> {
  static std::size_t encoded_size(const T&) noexcept { return sizeof(T); }
  static void encode_into(const T& v, std::span<std::byte> out) { std::memcpy(out.data(), &v, sizeof(T)); }
  static void encode(const T& v, std::vector<std::byte>& out) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    out.insert(out.end(), p, p + sizeof(T));
  }
  static T decode(std::span<const std::byte> bytes) {
    if (bytes.size() != sizeof(T)) detail::wrong_size("trivially copyable", sizeof(T), bytes.size());
    std::array<std::byte, sizeof(T)> raw;
    std::memcpy(raw.data(), bytes.data(), sizeof(T));  // one read of the (shared) bytes
    if constexpr (std::is_same_v<T, bool>) {
      if (raw[0] != std::byte{0} && raw[0] != std::byte{1})
        throw decode_error("ipc::decode<bool>: byte " + std::to_string(std::to_integer<int>(raw[0])) +
                           " is neither 0 nor 1");
    }
    return std::bit_cast<T>(raw);
  }
};

template <>
struct codec<std::monostate> {
  static std::size_t encoded_size(const std::monostate&) noexcept { return 0; }
  static void encode_into(const std::monostate&, std::span<std::byte>) noexcept {}
  static void encode(const std::monostate&, std::vector<std::byte>&) noexcept {}
  static std::monostate decode(std::span<const std::byte> bytes) {
    if (!bytes.empty()) detail::wrong_size("monostate", 0, bytes.size());
    return {};
  }
};

template <>
struct codec<std::string> {
  static std::size_t encoded_size(const std::string& v) noexcept { return v.size(); }
  static void encode_into(const std::string& v, std::span<std::byte> out) { detail::copy_out(out, v.data(), v.size()); }
  static void encode(const std::string& v, std::vector<std::byte>& out) {
    const auto* p = reinterpret_cast<const std::byte*>(v.data());
    out.insert(out.end(), p, p + v.size());
  }
  static std::string decode(std::span<const std::byte> bytes) {
    return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
};

// std::vector<std::byte> and std::vector<std::uint8_t>: the bytes themselves.
template <class B>
struct codec<std::vector<B>, std::enable_if_t<std::is_same_v<B, std::byte> || std::is_same_v<B, std::uint8_t>>> {
  static std::size_t encoded_size(const std::vector<B>& v) noexcept { return v.size(); }
  static void encode_into(const std::vector<B>& v, std::span<std::byte> out) {
    detail::copy_out(out, v.data(), v.size());
  }
  static void encode(const std::vector<B>& v, std::vector<std::byte>& out) {
    const auto* p = reinterpret_cast<const std::byte*>(v.data());
    out.insert(out.end(), p, p + v.size());
  }
  static std::vector<B> decode(std::span<const std::byte> bytes) {
    std::vector<B> v(bytes.size());
    detail::copy_out(std::as_writable_bytes(std::span(v)), bytes.data(), bytes.size());
    return v;
  }
};

// JSON as text. No fast path: its size is known only after dump().
template <>
struct codec<nlohmann::json> {
  static void encode(const nlohmann::json& v, std::vector<std::byte>& out) {
    // dump() throws type_error for invalid UTF-8 in strings; report it as the caller's bug.
    const std::string text = v.dump();
    codec<std::string>::encode(text, out);
  }
  static nlohmann::json decode(std::span<const std::byte> bytes) {
    const auto* p = reinterpret_cast<const char*>(bytes.data());
    try {
      // The parser reads each byte once, front to back, within [p, p + size).
      return nlohmann::json::parse(p, p + bytes.size());
    } catch (const nlohmann::json::exception& e) {
      throw decode_error(std::string("ipc::decode<json>: ") + e.what());
    }
  }
};

template <class T>
std::vector<std::byte> encode(const T& v) {
  std::vector<std::byte> out;
  if constexpr (has_encode_into<T>) {
    out.resize(codec<T>::encoded_size(v));
    codec<T>::encode_into(v, std::span<std::byte>(out));
  } else {
    codec<T>::encode(v, out);
  }
  return out;
}

template <class T>
T decode(std::span<const std::byte> bytes) {
  return codec<T>::decode(bytes);
}

template <class T>
shm::ring_status try_send_value(endpoint& e, frame_kind kind, std::uint64_t id, const T& v) {
  if constexpr (has_encode_into<T>) {
    const std::size_t n = codec<T>::encoded_size(v);
    if (n > e.max_body()) return shm::ring_status::too_large;
    shm::ring_status st;
    auto room = e.try_reserve(n, st);
    if (st != shm::ring_status::ok) return st;
    codec<T>::encode_into(v, room.first(n));
    e.commit(kind, id, n);
    return shm::ring_status::ok;
  } else {
    const auto bytes = encode(v);
    return e.try_send(kind, id, bytes);
  }
}

template <class T>
shm::ring_status send_value(endpoint& e, frame_kind kind, std::uint64_t id, const T& v,
                            std::chrono::nanoseconds timeout) {
  const auto bytes = encode(v);
  return e.send(kind, id, bytes, timeout);
}

}  // namespace procsup::ipc
