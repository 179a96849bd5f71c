// The channel: one sealed memfd region holding a small channel header and two shm rings
// (parent -> child, child -> parent), plus the parent's eventfd. The parent is woken through the
// eventfd (it waits on many children with epoll); the child sleeps on shared futexes.
//
//   region: [ channel_header (64 B) | ring to_child (ring_bytes(cap)) | ring to_parent (ring_bytes(cap)) ]
//
//   frame payload in a ring: [ u64 request id | body ... ]   ring tag = frame_kind
//
// Size limit: a frame's body may be at most endpoint::max_body() bytes (half the ring capacity
// minus the ring's 8-byte frame header and the 8-byte id). Larger frames are refused with
// ring_status::too_large; they are never split (the ring's decision: refuse, not split). Choose
// channel_options::ring_capacity for the largest message you need.
//
// Waits: send() and receive() spin, then sleep, with shm::spin_then_sleep (shm/wait.hpp), the
// ring's own wait.
//
// Trust: the parent treats everything the child wrote as untrusted. A bad ring position, length,
// an unknown frame kind or a frame shorter than its id makes the endpoint report
// ring_status::corrupt, and the endpoint stays broken (error() says why); nothing reads outside
// the mapping.
//
// The request in progress: the child publishes in the channel header the id of the request it
// is handling (endpoint::publish_handling: before it decodes and handles it, and 0 once its
// answer is committed), so that when it dies its supervisor fails only that request and hands the
// ones behind it to the next instance. The parent reads the word only after the child is gone
// (endpoint::published_handling) and validates it: it comes from the child like everything else.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>

#include "procsup/ipc/frame.hpp"
#include "procsup/shm/region.hpp"
#include "procsup/shm/ring.hpp"
#include "procsup/sys/unique_fd.hpp"

namespace procsup::ipc {

inline constexpr std::uint64_t channel_magic = 0x4e414843'50555350ULL;  // "PSUPCHAN" little-endian
// 2: the header holds the id of the request the child is handling (`handling`).
inline constexpr std::uint32_t channel_layout_version = 2;

// The shared channel header at offset 0 of the region. Written once by channel::create() before
// any child exists; read (and validated) by channel::attach(). Pinned by test_ipc_channel.
struct channel_header {
  std::uint64_t magic;             // channel_magic
  std::uint32_t version;           // channel_layout_version
  std::uint32_t header_size;       // sizeof(channel_header)
  std::uint64_t ring_capacity;     // data bytes of each ring (a power of two)
  std::uint64_t to_child_offset;   // offset of the parent -> child ring's header
  std::uint64_t to_parent_offset;  // offset of the child -> parent ring's header
  std::uint64_t total_bytes;       // bytes of the region the channel uses
  // The id of the request the child is handling, 0 when none. Written only by the child, through
  // std::atomic_ref (relaxed: see endpoint::publish_handling); read by the parent once the child is
  // dead. Nothing else on this cache line is written after create(), so the child's stores stay
  // in its own cache: the hot path pays one store, no transfer.
  std::uint64_t handling;
  std::uint64_t reserved_;
};
static_assert(std::is_standard_layout_v<channel_header> && std::is_trivially_copyable_v<channel_header>);
static_assert(sizeof(channel_header) == shm::cache_line);
static_assert(alignof(channel_header) >= std::atomic_ref<std::uint64_t>::required_alignment);
static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free);

// Bytes of shared memory a channel with rings of `capacity` data bytes needs.
constexpr std::size_t channel_bytes(std::size_t capacity) {
  return sizeof(channel_header) + 2 * shm::ring_bytes(capacity);
}

struct channel_options {
  // Data bytes of each ring: a power of two in [64, 2^32]. max_body() is about half of it.
  std::size_t ring_capacity = std::size_t{1} << 20;
  // Spin budget of both endpoints' blocking calls before they sleep (endpoint::set_spin changes
  // one side).
  shm::spin_policy spin{};
};

class channel;

// One side of a channel: the writer of its outgoing ring and the reader of its incoming ring.
// One thread at a time per endpoint (the ring is single-producer / single-consumer). Must not
// outlive its channel. Movable.
class endpoint {
 public:
  endpoint() = default;

  // Largest body a frame may carry (ring max payload - 8-byte id). Any thread.
  std::size_t max_body() const noexcept;

  // Non-blocking send: ok, full, too_large (body > max_body(): refused, never split) or corrupt.
  shm::ring_status try_send(frame_kind kind, std::uint64_t id, std::span<const std::byte> body);

  // Zero-copy send: room for up to `max_body` bytes in place in the ring (empty span and st != ok
  // when not possible: full, too_large, corrupt). Fill it, then commit(kind, id, used) with
  // used <= max_body. A reservation that is not committed is simply dropped by the next one.
  std::span<std::byte> try_reserve(std::size_t max_body, shm::ring_status& st);
  void commit(frame_kind kind, std::uint64_t id, std::size_t used);

  // Non-blocking receive: ok (m filled; m.body in place), empty, or corrupt (also for an unknown
  // kind or a frame shorter than the id: the channel is then broken for good and error() says
  // why). After ok, call release() when done with m, before the next receive.
  shm::ring_status try_receive(message& m);
  // Hands the last received frame's space back to the peer (and wakes it if it waits for space).
  void release();

  // Blocking variants: spin per spin(), then sleep (child: futex; parent: poll on its eventfd)
  // until done or `timeout` passes (timeout < 0: forever). Return ok, timeout, too_large, corrupt.
  // For the child side, or for tests; an event-loop parent uses try_* + arm_wakeup().
  shm::ring_status send(frame_kind kind, std::uint64_t id, std::span<const std::byte> body,
                        std::chrono::nanoseconds timeout);
  shm::ring_status receive(message& m, std::chrono::nanoseconds timeout);

  // Event-loop side (parent): marks this side as sleeping and returns true if nothing is readable
  // (and, if pending_send > 0, a body of that many bytes still cannot be sent), so waiting on
  // wake_fd() is safe: the peer will signal it when that changes. Returns false (un-marked) if
  // there is work now, or the channel is broken (try_receive then says corrupt).
  // pending_send must be <= max_body() (std::invalid_argument otherwise).
  bool arm_wakeup(std::size_t pending_send = 0);
  // Parent: the eventfd to put in epoll (EPOLLIN; clear_wake() drains it). Child: -1.
  int wake_fd() const noexcept { return wake_fd_; }
  // Parent: drains the eventfd counter (non-blocking). Child: no-op.
  void clear_wake() noexcept;

  // Spin budget of the blocking calls (defaults to channel_options::spin). This side only.
  void set_spin(shm::spin_policy spin) noexcept { spin_ = spin; }

  // Streaming: publish sent frames and hand back consumed space in batches (one release-store and
  // one fence per batch instead of per frame; see ring_writer::set_batching). flush() publishes
  // now. The rings also flush by themselves when full, empty, a quarter full, or before sleeping.
  void set_batching(bool on) {
    out_.set_batching(on);
    in_.set_batching(on);
  }
  void flush() {
    out_.flush();
    in_.flush();
  }
  shm::spin_policy spin() const noexcept { return spin_; }

  // Child: publishes `id` as the request it is handling now (0: none). Call it before decoding
  // a request and again with 0 after its answer is committed: if the child dies in between, its
  // supervisor fails that request alone and re-sends the ones behind it. One relaxed store to a
  // line only the child writes (the parent reads it after the child's death, when every store
  // the child made is visible), plus a compiler barrier so the store is not moved across the work
  // it brackets. Child side only.
  void publish_handling(std::uint64_t id) noexcept {
    if (handling_ == nullptr) return;
    std::atomic_signal_fence(std::memory_order_seq_cst);  // the answer before it is committed first
    std::atomic_ref<std::uint64_t>(*handling_).store(id, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);  // and before the work that follows
  }
  // Parent: what the child last published (untrusted: validate it against the requests in
  // flight). Meaningful once the child is dead. Parent side only.
  std::uint64_t published_handling() const noexcept {
    return handling_ == nullptr ? 0 : std::atomic_ref<std::uint64_t>(*handling_).load(std::memory_order_relaxed);
  }

  // Corruption seen on either ring (or a bad frame); sticky.
  bool broken() const noexcept;
  std::string error() const;

 private:
  friend class channel;
  endpoint(void* out_ring, void* in_ring, std::size_t ring_bytes, shm::wakeup self, shm::wakeup peer,
           shm::spin_policy spin, std::uint64_t* handling);
  shm::ring_status accept(const shm::frame_view& f, message& m);

  shm::ring_writer out_;
  shm::ring_reader in_;
  shm::ring_header* out_hdr_ = nullptr;  // for the sleeping words of our own blocking waits
  shm::ring_header* in_hdr_ = nullptr;
  std::uint64_t* handling_ = nullptr;  // channel_header::handling (null: default-constructed)
  std::byte* reserved_ = nullptr;  // the id slot of the open zero-copy reservation
  std::size_t reserved_body_ = 0;
  int wake_fd_ = -1;  // not owned: the channel's eventfd (parent side only)
  shm::spin_policy spin_{};
  std::string error_;  // a bad frame (unknown kind, too short); the rings keep their own errors
};

// Owns the region and the parent's eventfd. Movable, not copyable; moving it does not move the
// mapping, so endpoints stay valid.
class channel {
 public:
  channel() = default;
  channel(channel&&) noexcept = default;
  channel& operator=(channel&&) noexcept = default;
  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;
  ~channel() = default;

  // Parent, before fork: a fresh region (memfd, O_CLOEXEC, sealed) with both rings formatted, and
  // an eventfd (EFD_CLOEXEC | EFD_NONBLOCK). Throws std::system_error, or std::invalid_argument
  // for a ring_capacity that is not a power of two in [64, 2^32].
  static channel create(const channel_options& options = {});
  // The same, with the region carved from `pool` (one mapping for many channels: see
  // shm::region_pool). For forked children only: memfd() is then -1 and a child maps its region
  // from region_source() (the launcher's child_setup::maps does that).
  static channel create(const channel_options& options, shm::region_pool& pool);

  // Exec'd child: takes ownership of both fds (also when it throws), maps the memfd, and validates
  // that it is sealed, the channel header (magic, version, sizes, offsets) and both rings. Throws
  // std::runtime_error / std::system_error naming what is wrong. Then call child_end(). Both fds
  // are set close-on-exec.
  static channel attach(int memfd, int parent_eventfd, shm::spin_policy spin = {});

  // Parent side: woken through the eventfd (epoll); wakes the child by futex. Call once.
  endpoint parent_end();
  // Child side (forked or attached): sleeps on futexes; wakes the parent by the eventfd. Call once.
  endpoint child_end();

  int memfd() const noexcept { return region_.fd(); }           // to dup2 into an exec'd child
  // Where a forked child maps a pooled channel's region (fd -1 when the channel is not pooled:
  // the child inherits the mapping).
  shm::region_source region_source() const noexcept { return region_.source(); }
  // Parent, after its child has the channel: keep the mapping out of later forks (a supervisor
  // with many children would otherwise copy every sibling's mapping into each new child, and the
  // fork gets slower with every child: MADV_DONTFORK) and close the memfd (the mapping stays
  // valid). Not a memfd seal: the region is sealed against resizing at create() already.
  void keep_out_of_forks() noexcept;
  int parent_eventfd() const noexcept { return eventfd_.get(); }  // likewise
  std::size_t ring_capacity() const noexcept { return capacity_; }

 private:
  static channel format(shm::shared_region region, const channel_options& options);
  void* ring_at(std::uint64_t offset) const noexcept;
  std::uint64_t* handling_word() const noexcept;

  shm::shared_region region_;
  sys::unique_fd eventfd_;
  std::size_t capacity_ = 0;
  shm::spin_policy spin_{};
};

}  // namespace procsup::ipc
