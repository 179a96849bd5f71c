// What travels on a channel: frame kinds, the 8-byte request id that precedes every body, and a
// received message viewed in place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace procsup::ipc {

// The kind of a frame; carried as the ring's frame tag. Any other tag received from the peer is
// corruption (the channel is then broken for good).
enum class frame_kind : std::uint32_t {
  request = 1,    // parent -> child: handle this body; answer with reply, error or rejected (same id)
  reply = 2,      // child -> parent: the result of request `id`
  error = 3,      // child -> parent: request `id` failed and I am exiting (handle() threw; id 0:
                  // init() threw); the body is a UTF-8 message
  ready = 4,      // child -> parent: init() finished (id 0 by convention)
  heartbeat = 5,  // either way: I am alive
  shutdown = 6,   // parent -> child: run terminate() and exit
  rejected = 7,   // child -> parent: request `id` failed and I go on (its reply is over the limit,
                  // it could not be decoded); the body is a UTF-8 message
  start = 8,      // parent -> child, the first frame of every instance: its start_info (id 0)
};

inline constexpr std::uint32_t first_frame_kind = 1;
inline constexpr std::uint32_t last_frame_kind = 8;

// True if `tag` names a frame_kind this build understands. Any thread.
constexpr bool is_frame_kind(std::uint32_t tag) noexcept {
  return tag >= first_frame_kind && tag <= last_frame_kind;
}

// "request", "reply", ...; "unknown" for a value outside the enum. Any thread.
const char* to_string(frame_kind kind) noexcept;

// Bytes of the request id at the start of every frame's payload (host byte order: both ends of a
// channel run on the same machine).
inline constexpr std::size_t frame_id_size = sizeof(std::uint64_t);

// A received frame. `body` points into the shared ring: it is valid until endpoint::release(),
// and a crashed or malicious peer may change its bytes at any time, so decode it defensively
// (its length is trustworthy; codecs never read outside it).
struct message {
  frame_kind kind{};
  std::uint64_t id = 0;
  std::span<const std::byte> body;
};

}  // namespace procsup::ipc
