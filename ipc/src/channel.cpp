// The channel: region layout, attach-time validation, and the endpoint's framing (id + body) and
// waits over two shm rings. The rings validate positions and lengths; we validate kinds and ids.
#include "procsup/ipc/channel.hpp"

#include <sys/mman.h>

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "procsup/shm/wait.hpp"

namespace procsup::ipc {

using shm::ring_status;

namespace {

constexpr std::uint64_t to_child_offset = sizeof(channel_header);
constexpr std::uint64_t to_parent_offset(std::uint64_t capacity) {
  return sizeof(channel_header) + shm::ring_bytes(capacity);
}

bool valid_capacity(std::uint64_t c) {
  return c >= shm::ring_min_capacity && (c & (c - 1)) == 0 && c <= shm::ring_max_capacity;
}
constexpr const char* capacity_rule_text = "a power of two in [64, 2^32]";
static_assert(shm::ring_min_capacity == 64 && shm::ring_max_capacity == (std::size_t{1} << 32));

void store_id(std::byte* at, std::uint64_t id) noexcept { std::memcpy(at, &id, sizeof id); }

}  // namespace

// ---------------------------------------------------------------- endpoint

endpoint::endpoint(void* out_ring, void* in_ring, std::size_t ring_bytes, shm::wakeup self, shm::wakeup peer,
                   shm::spin_policy spin, std::uint64_t* handling)
    : out_(out_ring, ring_bytes, self, peer),
      in_(in_ring, ring_bytes, self, peer),
      out_hdr_(static_cast<shm::ring_header*>(out_ring)),
      in_hdr_(static_cast<shm::ring_header*>(in_ring)),
      handling_(handling),
      wake_fd_(self.eventfd),
      spin_(spin) {}

std::size_t endpoint::max_body() const noexcept {
  const std::size_t p = out_.max_payload();
  return p > frame_id_size ? p - frame_id_size : 0;
}

ring_status endpoint::try_send(frame_kind kind, std::uint64_t id, std::span<const std::byte> body) {
  if (!error_.empty()) return ring_status::corrupt;
  if (body.size() > max_body()) return ring_status::too_large;
  std::byte idb[frame_id_size];
  store_id(idb, id);
  return out_.try_write(static_cast<std::uint32_t>(kind), std::span<const std::byte>(idb), body);
}

std::span<std::byte> endpoint::try_reserve(std::size_t max_body_bytes, ring_status& st) {
  if (!error_.empty()) {
    st = ring_status::corrupt;
    return {};
  }
  if (max_body_bytes > max_body()) {
    st = ring_status::too_large;
    return {};
  }
  auto room = out_.try_reserve(max_body_bytes + frame_id_size, st);
  if (st != ring_status::ok) return {};
  reserved_ = room.data();
  reserved_body_ = max_body_bytes;
  return room.subspan(frame_id_size);
}

void endpoint::commit(frame_kind kind, std::uint64_t id, std::size_t used) {
  if (reserved_ == nullptr || used > reserved_body_)
    throw std::logic_error("ipc::endpoint::commit without a matching try_reserve (or used > reserved)");
  store_id(reserved_, id);
  reserved_ = nullptr;
  out_.commit(static_cast<std::uint32_t>(kind), used + frame_id_size);
}

ring_status endpoint::accept(const shm::frame_view& f, message& m) {
  if (!is_frame_kind(f.tag)) {
    error_ = "ipc: the peer sent a frame of unknown kind " + std::to_string(f.tag) + " (" +
             std::to_string(f.payload.size()) + " bytes)";
    return ring_status::corrupt;
  }
  if (f.payload.size() < frame_id_size) {
    error_ = std::string("ipc: the peer sent a ") + to_string(static_cast<frame_kind>(f.tag)) + " frame of " +
             std::to_string(f.payload.size()) + " bytes, shorter than its 8-byte request id";
    return ring_status::corrupt;
  }
  m.kind = static_cast<frame_kind>(f.tag);
  std::memcpy(&m.id, f.payload.data(), frame_id_size);
  m.body = f.payload.subspan(frame_id_size);
  return ring_status::ok;
}

ring_status endpoint::try_receive(message& m) {
  if (!error_.empty()) return ring_status::corrupt;
  shm::frame_view f;
  const auto st = in_.try_read(f);
  if (st != ring_status::ok) return st;
  return accept(f, m);
}

void endpoint::release() { in_.pop(); }

// Both waits are shm::spin_then_sleep, as the ring's own: the first attempt reads no clock, and
// the spin reads it once per ~64 cpu_relax, not per iteration (issue 17 measured the hot round
// trip at 1.36x a bare SPSC ring with a clock read per spin iteration).
ring_status endpoint::send(frame_kind kind, std::uint64_t id, std::span<const std::byte> body,
                           std::chrono::nanoseconds timeout) {
  return shm::spin_then_sleep(
      [&] { return try_send(kind, id, body); }, ring_status::full, ring_status::timeout,
      [&] { return out_.space_may_have_freed(); }, [&] { return out_.arm_space_wakeup(body.size() + frame_id_size); },
      out_hdr_->writer_sleeping, shm::wakeup{wake_fd_}, timeout, spin_);
}

ring_status endpoint::receive(message& m, std::chrono::nanoseconds timeout) {
  return shm::spin_then_sleep(
      [&] { return try_receive(m); }, ring_status::empty, ring_status::timeout, [&] { return in_.readable(); },
      [&] { return in_.arm_wakeup(); }, in_hdr_->reader_sleeping, shm::wakeup{wake_fd_}, timeout, spin_);
}

bool endpoint::arm_wakeup(std::size_t pending_send) {
  if (pending_send > max_body())
    throw std::invalid_argument("ipc::endpoint::arm_wakeup: pending_send " + std::to_string(pending_send) +
                                " exceeds max_body " + std::to_string(max_body()));
  if (broken()) return false;
  if (!in_.arm_wakeup()) return false;
  if (pending_send > 0 && !out_.arm_space_wakeup(pending_send + frame_id_size)) {
    // relaxed: we will not sleep after all; a stray wake only costs the peer a system call.
    in_hdr_->reader_sleeping.store(0, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void endpoint::clear_wake() noexcept {
  if (wake_fd_ < 0) return;
  std::uint64_t v;
  // Non-blocking eventfd: one read returns and zeroes the whole counter (EAGAIN if it was 0).
  (void)sys::retry_eintr([&] { return ::read(wake_fd_, &v, sizeof v); });
}

bool endpoint::broken() const noexcept { return !error_.empty() || out_.corrupt() || in_.corrupt(); }

std::string endpoint::error() const {
  if (!error_.empty()) return error_;
  if (in_.corrupt()) return "ipc: incoming " + in_.error();
  if (out_.corrupt()) return "ipc: outgoing " + out_.error();
  return {};
}

// ---------------------------------------------------------------- channel

namespace {
void check_capacity(std::size_t cap) {
  if (!valid_capacity(cap))
    throw std::invalid_argument("ipc::channel::create: ring_capacity must be " + std::string(capacity_rule_text) + ", got " +
                                std::to_string(cap));
}
}  // namespace

channel channel::create(const channel_options& options) {
  check_capacity(options.ring_capacity);
  return format(shm::shared_region::create(channel_bytes(options.ring_capacity), "procsup-channel"), options);
}

channel channel::create(const channel_options& options, shm::region_pool& pool) {
  check_capacity(options.ring_capacity);
  return format(pool.allocate(channel_bytes(options.ring_capacity)), options);
}

channel channel::format(shm::shared_region region, const channel_options& options) {
  const std::size_t cap = options.ring_capacity;
  channel ch;
  ch.region_ = std::move(region);
  ch.eventfd_.reset(sys::check("eventfd", [] { return ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }));
  ch.capacity_ = cap;
  ch.spin_ = options.spin;
  auto* h = new (ch.region_.data()) channel_header{};
  h->magic = channel_magic;
  h->version = channel_layout_version;
  h->header_size = sizeof(channel_header);
  h->ring_capacity = cap;
  h->to_child_offset = to_child_offset;
  h->to_parent_offset = to_parent_offset(cap);
  h->total_bytes = channel_bytes(cap);
  h->handling = 0;
  shm::format_ring(ch.ring_at(h->to_child_offset), shm::ring_bytes(cap), cap);
  shm::format_ring(ch.ring_at(h->to_parent_offset), shm::ring_bytes(cap), cap);
  // No fence needed: the child sees this memory only after fork()/exec, which order it.
  return ch;
}

channel channel::attach(int memfd, int parent_eventfd, shm::spin_policy spin) {
  sys::unique_fd efd(parent_eventfd);  // owned from here, also if we throw
  channel ch;
  ch.region_ = shm::shared_region::attach(memfd);  // takes memfd; checks it is a memfd sealed against shrinking
  ch.spin_ = spin;
  const std::size_t size = ch.region_.size();
  const std::string where = "ipc::channel::attach: memfd " + std::to_string(memfd) + ": ";
  if (size < sizeof(channel_header))
    throw std::runtime_error(where + std::to_string(size) + " bytes, too small for a channel header");
  channel_header h;
  std::memcpy(&h, ch.region_.data(), sizeof h);  // validate one snapshot, use only that
  if (h.magic != channel_magic) throw std::runtime_error(where + "bad magic number (not a procsup channel)");
  if (h.version != channel_layout_version)
    throw std::runtime_error(where + "channel layout version " + std::to_string(h.version) +
                             ", this build understands " + std::to_string(channel_layout_version));
  if (h.header_size != sizeof(channel_header))
    throw std::runtime_error(where + "channel header size " + std::to_string(h.header_size) + " is not " +
                             std::to_string(sizeof(channel_header)));
  if (!valid_capacity(h.ring_capacity))
    throw std::runtime_error(where + "ring capacity " + std::to_string(h.ring_capacity) +
                             " is not " + capacity_rule_text);
  if (h.to_child_offset != to_child_offset || h.to_parent_offset != to_parent_offset(h.ring_capacity) ||
      h.total_bytes != channel_bytes(h.ring_capacity))
    throw std::runtime_error(where + "ring offsets / total size do not match the channel layout");
  if (h.total_bytes > size)
    throw std::runtime_error(where + "the channel needs " + std::to_string(h.total_bytes) + " bytes, the memfd has " +
                             std::to_string(size));
  ch.capacity_ = static_cast<std::size_t>(h.ring_capacity);
  const std::pair<std::uint64_t, const char*> rings[] = {{h.to_child_offset, "parent->child"},
                                                         {h.to_parent_offset, "child->parent"}};
  for (const auto& [off, name] : rings) {
    if (auto err = shm::check_ring(ch.ring_at(off), shm::ring_bytes(ch.capacity_)); !err.empty())
      throw std::runtime_error(where + name + " " + err);
  }
  if (efd.get() < 0)
    throw std::runtime_error("ipc::channel::attach: no parent eventfd (got " + std::to_string(parent_eventfd) + ")");
  // An eventfd takes exactly 8-byte writes; adding 0 changes nothing, so this probes harmlessly.
  const std::uint64_t zero = 0;
  if (sys::retry_eintr([&] { return ::write(efd.get(), &zero, sizeof zero); }) != sizeof zero)
    throw std::system_error(errno, std::generic_category(),
                            "ipc::channel::attach: fd " + std::to_string(parent_eventfd) + " is not a writable eventfd");
  // Our copy must not leak into grandchildren (dup2 into us cleared the flag).
  sys::check("fcntl(eventfd, F_SETFD)", [&] { return ::fcntl(efd.get(), F_SETFD, FD_CLOEXEC); });
  ch.eventfd_ = std::move(efd);
  return ch;
}

void* channel::ring_at(std::uint64_t offset) const noexcept {
  return static_cast<std::byte*>(region_.data()) + offset;
}

endpoint channel::parent_end() {
  if (!region_.data()) throw std::logic_error("ipc::channel::parent_end on an empty channel");
  // The parent writes to_child and reads to_parent; it sleeps on (polls) the eventfd and wakes the
  // child by futex.
  return endpoint(ring_at(to_child_offset), ring_at(to_parent_offset(capacity_)), shm::ring_bytes(capacity_),
                  shm::wakeup::event(eventfd_.get()), shm::wakeup::futex(), spin_, handling_word());
}

endpoint channel::child_end() {
  if (!region_.data()) throw std::logic_error("ipc::channel::child_end on an empty channel");
  return endpoint(ring_at(to_parent_offset(capacity_)), ring_at(to_child_offset), shm::ring_bytes(capacity_),
                  shm::wakeup::futex(), shm::wakeup::event(eventfd_.get()), spin_, handling_word());
}

std::uint64_t* channel::handling_word() const noexcept {
  return &static_cast<channel_header*>(region_.data())->handling;
}

void channel::keep_out_of_forks() noexcept {
  // A pooled region's chunk is kept out of forks from the start.
  if (region_.data() != nullptr && !region_.pooled()) ::madvise(region_.data(), region_.size(), MADV_DONTFORK);
  region_.close_fd();
}

}  // namespace procsup::ipc
