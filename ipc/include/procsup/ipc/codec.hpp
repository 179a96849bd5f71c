// The codec customization point: C++ values <-> frame bodies.
//
// Specialize codec<T> (in namespace procsup::ipc) with
//   static void encode(const T& v, std::vector<std::byte>& out);   // append v's bytes to out
//   static T decode(std::span<const std::byte> bytes);              // throw decode_error on bad input, never UB
// and optionally, for zero-copy sends straight into the ring,
//   static std::size_t encoded_size(const T& v);
//   static void encode_into(const T& v, std::span<std::byte> out);  // out.size() == encoded_size(v)
//
// Built-ins:
//  - trivially copyable types that hold no pointers we can see (not pointers, member pointers,
//    std::span, std::string_view): their object bytes, host byte order; decode requires exactly
//    sizeof(T) bytes. bool is checked to be 0 or 1. A struct whose members have invalid bit
//    patterns (bool, an enum without a fixed underlying type) needs its own codec to stay free
//    of UB on garbage input.
//  - std::string (raw bytes), std::vector<std::byte>, std::vector<std::uint8_t>;
//  - nlohmann::json as text (dump() / parse(); parse errors -> decode_error);
//  - std::monostate: empty.
//
// Bodies received from a peer live in shared memory that the peer may still change: decoders
// read each byte once and never trust anything but the span's length.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <vector>

#include "procsup/ipc/channel.hpp"
#include "procsup/ipc/frame.hpp"

namespace procsup::ipc {

struct decode_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The customization point (undefined: a type without a codec does not compile).
template <class T, class Enable = void>
struct codec;

// True if codec<T> offers the zero-copy fast path.
template <class T>
concept has_encode_into = requires(const T& v, std::span<std::byte> out) {
  { codec<T>::encoded_size(v) } -> std::convertible_to<std::size_t>;
  codec<T>::encode_into(v, out);
};

// v's bytes as a new vector. Any thread.
template <class T>
std::vector<std::byte> encode(const T& v);

// Decodes a body; throws decode_error on bad input. Any thread.
template <class T>
T decode(std::span<const std::byte> bytes);

// Sends v as one frame on e, built in place in the ring when codec<T> has the fast path (else
// encoded into a temporary). ok, full, too_large (encoded size > e.max_body()) or corrupt.
// The sending thread of e only.
template <class T>
shm::ring_status try_send_value(endpoint& e, frame_kind kind, std::uint64_t id, const T& v);

// Blocking counterpart of try_send_value (see endpoint::send). The sending thread of e only.
template <class T>
shm::ring_status send_value(endpoint& e, frame_kind kind, std::uint64_t id, const T& v,
                            std::chrono::nanoseconds timeout);

}  // namespace procsup::ipc

#include "procsup/ipc/detail/codec.hpp"
