// A single-producer / single-consumer ring of variable-length frames in shared memory, safe
// against a peer that crashes at any instruction or scribbles over the whole mapping.
//
//   positions are monotonic 64-bit byte counters; offset = position & (capacity - 1)
//
//            tail (consumer)                head (producer)
//                 v                               v
//   data: [ free | len tag payload.. | len tag .. | free ......................... ]
//                 \____ frames visible to the consumer ___/
//
//   frame  = 8-byte header {u32 length, u32 tag} + payload, padded to a multiple of 8 bytes.
//   A frame that would cross the end of the buffer is preceded by a padding frame
//   (tag = padding_tag) that fills the buffer to its end; the frame then starts at offset 0.
//   A frame is visible only after the producer's release-store of `head`, done after the whole
//   frame (and any padding before it) is written: a producer killed mid-write leaves nothing.
//   So a padding frame never starts at offset 0 and is always published together with the frame
//   after it; the reader reports anything else as corrupt. Frames larger than max_payload() are
//   refused (too_large), never split: a layer above may split messages if it wants to.
//
// Trust: each side keeps its own copy of the capacity and of its own position and re-validates
// every value it reads from the mapping (the peer's position, frame lengths and tags). A
// corrupted ring is reported as ring_status::corrupt with a message; it never crashes, hangs or
// reads out of bounds. Corruption is sticky: an endpoint that saw it refuses further work.
//
// Wait / wake: a side that wants to sleep sets its "sleeping" word (reader_sleeping or
// writer_sleeping), issues a full fence and re-checks the ring; the other side, after publishing,
// issues a full fence and wakes the sleeper only if that word is set. So under load no system call
// is made per frame, and an idle endpoint sleeps in the kernel. A side is woken either by a shared
// futex on its word (blocking calls below) or through an eventfd its owner polls with epoll; the
// blocking calls wait with shm::spin_then_sleep (wait.hpp), as the channel's do.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>

#include "procsup/shm/wait.hpp"

namespace procsup::shm {

inline constexpr std::uint64_t ring_magic = 0x474e4952'50555350ULL;  // "PSUPRING" little-endian
inline constexpr std::uint32_t ring_layout_version = 1;
inline constexpr std::uint32_t padding_tag = 0xffffffffU;
inline constexpr std::size_t frame_header_size = 8;
inline constexpr std::size_t cache_line = 64;
// Capacity bounds. The upper bound keeps every frame length (and a padding frame's length, up to
// capacity - 8) representable in the frame header's 32-bit length field.
inline constexpr std::size_t ring_min_capacity = 64;
inline constexpr std::size_t ring_max_capacity = std::size_t{1} << 32;

// The shared header. Standard layout, no pointers; pinned by tests/unit/test_shm_ring_layout.cpp.
struct ring_header {
  // Written once by format_ring() before the peer exists; read-only afterwards (but a malicious
  // peer may still overwrite it: endpoints copy what they need at attach time).
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t header_size;
  std::uint64_t capacity;  // bytes of frame data after the header, a power of two
  std::uint64_t reserved_[5];
  // Producer's position: written only by the producer (release), read by the consumer (acquire).
  alignas(cache_line) std::atomic<std::uint64_t> head;
  // Consumer's position: written only by the consumer (release), read by the producer (acquire).
  alignas(cache_line) std::atomic<std::uint64_t> tail;
  // 1 while the consumer sleeps waiting for frames; a shared futex word.
  alignas(cache_line) std::atomic<std::uint32_t> reader_sleeping;
  // 1 while the producer sleeps waiting for space; a shared futex word.
  alignas(cache_line) std::atomic<std::uint32_t> writer_sleeping;
  char pad_[cache_line - sizeof(std::atomic<std::uint32_t>)];
};
static_assert(std::is_standard_layout_v<ring_header>);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<std::uint64_t>) == 8 && sizeof(std::atomic<std::uint32_t>) == 4);
static_assert(sizeof(ring_header) == 5 * cache_line);

enum class ring_status {
  ok,         // done
  empty,      // nothing to read
  full,       // not enough free space now
  too_large,  // the frame can never fit (larger than max_payload())
  timeout,    // a blocking call's time ran out
  corrupt,    // the shared state is inconsistent: the peer is broken or malicious
};
const char* to_string(ring_status s) noexcept;

// Bytes of shared memory a ring of `capacity` data bytes needs (header included).
constexpr std::size_t ring_bytes(std::size_t capacity) { return sizeof(ring_header) + capacity; }

// Largest payload a ring of `capacity` bytes accepts: a frame of at most half the ring always
// fits in an empty ring, wherever the positions stand. Larger frames are refused (too_large).
constexpr std::size_t ring_max_payload(std::size_t capacity) {
  return capacity / 2 - frame_header_size;
}

// Formats a ring in `mem` (64-byte aligned, at least ring_bytes(capacity) bytes). capacity must
// be a power of two in [ring_min_capacity, ring_max_capacity]. Call before any peer can see the
// memory. Returns the header. Throws std::invalid_argument on bad arguments.
ring_header* format_ring(void* mem, std::size_t bytes, std::size_t capacity);

// The information both endpoints validate on attach. Returns an empty string when `mem`
// (of `bytes` bytes) holds a ring this build understands, else what is wrong.
std::string check_ring(const void* mem, std::size_t bytes);

// A frame read in place. `payload` points into the shared mapping: it is valid until pop(), and
// the peer may change its bytes at any time (decode defensively; its length is trustworthy).
struct frame_view {
  std::uint32_t tag = 0;
  std::span<const std::byte> payload;
};

// The producer side. Producer thread only (one at a time), unless stated otherwise.
class ring_writer {
 public:
  ring_writer() = default;
  // `mem` must hold a ring accepted by check_ring() (throws std::runtime_error otherwise).
  // `self` says how this side is woken when it waits for space; `peer` how to wake the reader.
  ring_writer(void* mem, std::size_t bytes, wakeup self = {}, wakeup peer = {});

  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t max_payload() const noexcept { return ring_max_payload(capacity_); }

  // Copies one frame in. ok, full, too_large or corrupt (tag must not be padding_tag).
  ring_status try_write(std::uint32_t tag, std::span<const std::byte> payload);
  // As try_write with the payload gathered from two pieces (for example an id then a body).
  ring_status try_write(std::uint32_t tag, std::span<const std::byte> a, std::span<const std::byte> b);

  // Zero-copy: reserves room for a payload of up to `size` bytes and returns it (empty span and
  // `status` != ok when not possible). Fill it, then commit(tag, used) with used <= size.
  // Nothing is visible to the reader before commit(); a second try_reserve abandons the first.
  std::span<std::byte> try_reserve(std::size_t size, ring_status& status);
  void commit(std::uint32_t tag, std::size_t used);

  // Blocking write: spins per `spin`, then sleeps on its futex word (needs self = futex and
  // a reader whose `peer` wakeup is futex) until space frees or `timeout` passes (negative: wait
  // forever).
  ring_status write(std::uint32_t tag, std::span<const std::byte> payload,
                    std::chrono::nanoseconds timeout, spin_policy spin = {});

  // For an event-loop producer waiting for space (self = eventfd): marks this side as sleeping
  // and returns true if at least `need_payload` bytes still cannot be written (so it is safe to
  // wait for the eventfd); returns false (and un-marks) if the space is there now.
  bool arm_space_wakeup(std::size_t need_payload);

  // True if the consumer may have freed space since the last attempt (cheap: one relaxed load;
  // a hint for spinning, try_write decides).
  bool space_may_have_freed() const noexcept;

  // Batching (streaming): while on, commits do not publish `head` one by one; flush() publishes
  // every frame written so far with one release-store and one fence. The writer also publishes by
  // itself when 4 KiB (or a quarter ring) is unpublished, when the ring is full, and before it sleeps
  // for space; otherwise frames stay invisible until flush(): call it before waiting for the
  // reader in any other way. Off by default.
  void set_batching(bool on);
  void flush();

  // Free bytes now (re-reads the consumer position). A frame of n payload bytes needs
  // frame_header_size + n rounded up to 8, plus the padding to the end when it would wrap.
  std::size_t free_bytes();

  bool corrupt() const noexcept { return !error_.empty(); }
  const std::string& error() const noexcept { return error_; }

 private:
  bool refresh_tail();
  bool has_room(std::uint64_t need);
  std::uint64_t bytes_needed(std::size_t payload) const noexcept;
  void publish();
  void committed();

  ring_header* h_ = nullptr;
  std::byte* data_ = nullptr;
  bool batching_ = false;
  std::uint64_t published_ = 0;  // head as last published
  std::uint64_t capacity_ = 0;
  std::uint64_t head_ = 0;         // our position (private copy; the shared one is only published)
  std::uint64_t cached_tail_ = 0;  // last validated consumer position
  std::uint64_t reserved_at_ = 0;  // offset of the frame header of the open reservation
  std::size_t reserved_size_ = 0;
  bool reserving_ = false;
  wakeup self_{}, peer_{};
  std::string error_;
};

// The consumer side. Consumer thread only (one at a time).
class ring_reader {
 public:
  ring_reader() = default;
  ring_reader(void* mem, std::size_t bytes, wakeup self = {}, wakeup peer = {});

  std::size_t capacity() const noexcept { return capacity_; }

  // Looks at the next frame in place: ok (frame filled), empty or corrupt. Call pop() when
  // done with it before the next try_read.
  ring_status try_read(frame_view& frame);
  // Releases the frame returned by the last try_read to the producer (and wakes it if it sleeps).
  void pop();

  // Batching (streaming): while on, pop() hands space back to the producer only every 4 KiB
  // (or quarter ring), when the ring is found empty, before sleeping, and on flush(): one release-store and
  // one fence for many frames. Off by default.
  void set_batching(bool on);
  void flush();

  // Blocking read: spins, then sleeps on its futex word until a frame arrives or `timeout`
  // passes (negative: forever). Same contract as try_read otherwise.
  ring_status read(frame_view& frame, std::chrono::nanoseconds timeout, spin_policy spin = {});

  // For an event-loop consumer (self = eventfd): marks this side as sleeping and returns true if
  // the ring is still empty (safe to wait on the eventfd), false (un-marked) if a frame is there.
  bool arm_wakeup();

  // True if a frame may be readable now (cheap; may also be true if the ring is corrupt).
  bool readable() const noexcept;

  bool corrupt() const noexcept { return !error_.empty(); }
  const std::string& error() const noexcept { return error_; }

 private:
  ring_status fail(std::string what);

  ring_header* h_ = nullptr;
  const std::byte* data_ = nullptr;
  std::uint64_t capacity_ = 0;
  std::uint64_t tail_ = 0;         // our position (private copy)
  std::uint64_t cached_head_ = 0;  // last validated producer position
  std::uint64_t pending_ = 0;      // bytes the frame being looked at occupies (pop adds them)
  bool batching_ = false;
  std::uint64_t released_ = 0;     // tail as last published
  wakeup self_{}, peer_{};
  std::string error_;
};

}  // namespace procsup::shm
