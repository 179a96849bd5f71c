// The SPSC frame ring. Every value read from the mapping is validated before use; see ring.hpp.
#include "procsup/shm/ring.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>

#include "procsup/shm/wait.hpp"

namespace procsup::shm {

namespace {

constexpr std::uint64_t align8(std::uint64_t n) { return (n + 7) & ~std::uint64_t{7}; }

// A frame header is one aligned 8-byte word, read with a single atomic load so that a peer
// scribbling on it concurrently cannot make us see two different lengths.
inline std::uint64_t load_word(const std::byte* p) noexcept {
  return __atomic_load_n(reinterpret_cast<const std::uint64_t*>(p), __ATOMIC_RELAXED);
}
inline void store_word(std::byte* p, std::uint64_t v) noexcept {
  __atomic_store_n(reinterpret_cast<std::uint64_t*>(p), v, __ATOMIC_RELAXED);
}
inline std::uint64_t make_header(std::uint32_t length, std::uint32_t tag) noexcept {
  return std::uint64_t{length} | (std::uint64_t{tag} << 32);
}

}  // namespace

// Batching publishes every 4 KiB (or quarter ring, if smaller): one fence per ~50 small frames,
// while the peer still gets work (or space) often enough to run in parallel.
static std::uint64_t batch_bytes(std::uint64_t capacity) { return std::min<std::uint64_t>(capacity / 4, 4096); }

const char* to_string(ring_status s) noexcept {
  switch (s) {
    case ring_status::ok: return "ok";
    case ring_status::empty: return "empty";
    case ring_status::full: return "full";
    case ring_status::too_large: return "too large";
    case ring_status::timeout: return "timeout";
    case ring_status::corrupt: return "corrupt";
  }
  return "?";
}

ring_header* format_ring(void* mem, std::size_t bytes, std::size_t capacity) {
  if (capacity < ring_min_capacity || (capacity & (capacity - 1)) != 0 || capacity > ring_max_capacity)
    throw std::invalid_argument("format_ring: capacity must be a power of two in [64, 2^32], got " +
                                std::to_string(capacity));
  if (mem == nullptr) throw std::invalid_argument("format_ring: no memory");
  if (bytes < ring_bytes(capacity))
    throw std::invalid_argument("format_ring: " + std::to_string(bytes) + " bytes is too small for a ring of " +
                                std::to_string(capacity));
  if (reinterpret_cast<std::uintptr_t>(mem) % cache_line != 0)
    throw std::invalid_argument("format_ring: memory is not 64-byte aligned");
  std::memset(mem, 0, sizeof(ring_header));
  auto* h = new (mem) ring_header;
  h->magic = ring_magic;
  h->version = ring_layout_version;
  h->header_size = sizeof(ring_header);
  h->capacity = capacity;
  // relaxed (all four): no peer exists yet; publication to it happens through fork() or the
  // mapping being handed over (exec, fd passing), which orders everything before it.
  h->head.store(0, std::memory_order_relaxed);
  h->tail.store(0, std::memory_order_relaxed);
  h->reader_sleeping.store(0, std::memory_order_relaxed);
  h->writer_sleeping.store(0, std::memory_order_relaxed);
  return h;
}

namespace {

// Validates the header of `mem`, reading each field exactly once (a peer may be rewriting it
// concurrently: the capacity we check must be the capacity we use). On success returns an empty
// string and stores the capacity in `capacity`.
std::string validate_header(const void* mem, std::size_t bytes, std::uint64_t& capacity) {
  if (mem == nullptr) return "ring: no memory";
  if (reinterpret_cast<std::uintptr_t>(mem) % cache_line != 0) return "ring: memory is not 64-byte aligned";
  if (bytes < sizeof(ring_header))
    return "ring: " + std::to_string(bytes) + " bytes is smaller than a ring header (" +
           std::to_string(sizeof(ring_header)) + ")";
  const auto* h = static_cast<const ring_header*>(mem);
  // relaxed loads of plain fields: single reads that the compiler may not repeat or tear; the
  // mapping was handed to us by fork/exec, which orders format_ring's stores before them.
  const std::uint64_t magic = __atomic_load_n(&h->magic, __ATOMIC_RELAXED);
  const std::uint32_t version = __atomic_load_n(&h->version, __ATOMIC_RELAXED);
  const std::uint32_t header_size = __atomic_load_n(&h->header_size, __ATOMIC_RELAXED);
  const std::uint64_t cap = __atomic_load_n(&h->capacity, __ATOMIC_RELAXED);
  if (magic != ring_magic) return "ring: bad magic number (not a procsup ring)";
  if (version != ring_layout_version)
    return "ring: layout version " + std::to_string(version) + ", this build understands " +
           std::to_string(ring_layout_version);
  if (header_size != sizeof(ring_header))
    return "ring: header size " + std::to_string(header_size) + " is not " + std::to_string(sizeof(ring_header));
  if (cap < ring_min_capacity || (cap & (cap - 1)) != 0 || cap > ring_max_capacity)
    return "ring: capacity " + std::to_string(cap) + " is not a power of two in [64, 2^32]";
  if (ring_bytes(cap) > bytes)
    return "ring: capacity " + std::to_string(cap) + " does not fit in " + std::to_string(bytes) + " bytes";
  capacity = cap;
  return {};
}

}  // namespace

std::string check_ring(const void* mem, std::size_t bytes) {
  std::uint64_t cap = 0;
  return validate_header(mem, bytes, cap);
}

// ---------------------------------------------------------------- writer

ring_writer::ring_writer(void* mem, std::size_t bytes, wakeup self, wakeup peer) : self_(self), peer_(peer) {
  std::uint64_t cap = 0;
  if (auto err = validate_header(mem, bytes, cap); !err.empty()) throw std::runtime_error(err);
  h_ = static_cast<ring_header*>(mem);
  data_ = static_cast<std::byte*>(mem) + sizeof(ring_header);
  capacity_ = cap;
  // relaxed: attach happens before any concurrent use (fork/exec orders it); validated anyway.
  head_ = h_->head.load(std::memory_order_relaxed);
  published_ = head_;
  // relaxed: as above.
  cached_tail_ = h_->tail.load(std::memory_order_relaxed);
  if (head_ % 8 != 0 || cached_tail_ % 8 != 0 || cached_tail_ > head_ || head_ - cached_tail_ > capacity_)
    error_ = "ring: positions are inconsistent at attach (head " + std::to_string(head_) + ", tail " +
             std::to_string(cached_tail_) + ", capacity " + std::to_string(capacity_) + ")";
}

bool ring_writer::refresh_tail() {
  // acquire: pairs with the consumer's release-store of tail in pop(); the consumer has finished
  // reading the bytes before that position, so we may overwrite them.
  const std::uint64_t t = h_->tail.load(std::memory_order_acquire);
  if (t > head_ || head_ - t > capacity_ || t % 8 != 0 || t < cached_tail_) {
    if (error_.empty())
      error_ = "ring: consumer position " + std::to_string(t) + " is impossible (producer at " +
               std::to_string(head_) + ", last consumer position " + std::to_string(cached_tail_) +
               ", capacity " + std::to_string(capacity_) + ")";
    return false;
  }
  cached_tail_ = t;
  return true;
}

bool ring_writer::has_room(std::uint64_t need) {
  // Unsigned arithmetic is exact here: head_ - cached_tail_ <= capacity_ is an invariant.
  if (head_ - cached_tail_ + need <= capacity_) return true;
  if (!refresh_tail()) return false;
  if (head_ - cached_tail_ + need <= capacity_) return true;
  flush();  // full while batching: let the reader drain what we wrote
  return false;
}

std::uint64_t ring_writer::bytes_needed(std::size_t payload) const noexcept {
  const std::uint64_t total = frame_header_size + align8(payload);
  const std::uint64_t contiguous = capacity_ - (head_ & (capacity_ - 1));
  return total > contiguous ? contiguous + total : total;
}

std::span<std::byte> ring_writer::try_reserve(std::size_t size, ring_status& status) {
  if (corrupt()) { status = ring_status::corrupt; return {}; }
  if (size > max_payload()) { status = ring_status::too_large; return {}; }
  // A second try_reserve without commit() abandons the open reservation (nothing was published).
  reserving_ = false;
  const std::uint64_t total = frame_header_size + align8(size);
  std::uint64_t off = head_ & (capacity_ - 1);
  const std::uint64_t contiguous = capacity_ - off;
  const std::uint64_t pad = total > contiguous ? contiguous : 0;
  if (!has_room(pad + total)) {
    status = corrupt() ? ring_status::corrupt : ring_status::full;
    return {};
  }
  if (pad != 0) {
    // Not yet visible: head is published only in commit(), after the frame itself, so the reader
    // never sees a padding frame without the frame that follows it.
    store_word(data_ + off, make_header(static_cast<std::uint32_t>(contiguous - frame_header_size), padding_tag));
    head_ += contiguous;
    off = 0;
  }
  reserved_at_ = off;
  reserved_size_ = size;
  reserving_ = true;
  status = ring_status::ok;
  return {data_ + off + frame_header_size, size};
}

void ring_writer::commit(std::uint32_t tag, std::size_t used) {
  if (!reserving_ || used > reserved_size_ || tag == padding_tag)
    throw std::logic_error("ring_writer::commit without a matching reservation (or padding tag)");
  reserving_ = false;
  store_word(data_ + reserved_at_, make_header(static_cast<std::uint32_t>(used), tag));
  head_ += frame_header_size + align8(used);
  committed();
}

void ring_writer::committed() {
  // Batching: publish once batch_bytes() wait, so the reader never starves for long.
  if (!batching_ || head_ - published_ >= batch_bytes(capacity_)) publish();
}

void ring_writer::set_batching(bool on) {
  if (!on) flush();
  batching_ = on;
}

void ring_writer::flush() {
  if (head_ != published_) publish();
}

void ring_writer::publish() {
  published_ = head_;
  // release: makes the frame bytes (and any padding) visible before the new head; pairs with the
  // consumer's acquire-load of head in try_read().
  h_->head.store(head_, std::memory_order_release);
  // seq_cst fence: orders the head store before the load of reader_sleeping; pairs with the
  // consumer's fence in arm_wakeup() between setting reader_sleeping and re-reading head.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  wake_if_sleeping(h_->reader_sleeping, peer_);
}

ring_status ring_writer::try_write(std::uint32_t tag, std::span<const std::byte> payload) {
  return try_write(tag, payload, {});
}

ring_status ring_writer::try_write(std::uint32_t tag, std::span<const std::byte> a, std::span<const std::byte> b) {
  if (tag == padding_tag) throw std::invalid_argument("ring_writer: tag 0xffffffff is reserved for padding");
  if (a.size() > max_payload() || b.size() > max_payload() - a.size()) {
    return corrupt() ? ring_status::corrupt : ring_status::too_large;
  }
  ring_status st;
  auto room = try_reserve(a.size() + b.size(), st);
  if (st != ring_status::ok) return st;
  if (!a.empty()) std::memcpy(room.data(), a.data(), a.size());
  if (!b.empty()) std::memcpy(room.data() + a.size(), b.data(), b.size());
  commit(tag, a.size() + b.size());
  return ring_status::ok;
}

bool ring_writer::arm_space_wakeup(std::size_t need_payload) {
  flush();
  // Never arm for what can never fit (it would sleep forever) or on a corrupt ring.
  if (corrupt() || need_payload > max_payload()) return false;
  const std::uint64_t need = bytes_needed(need_payload);
  // relaxed store + seq_cst fence: pairs with the consumer's fence in pop() between its
  // tail store and its load of writer_sleeping (Dekker: either refresh_tail() below sees the
  // new tail, or the consumer sees our flag and wakes us).
  h_->writer_sleeping.store(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!refresh_tail() || head_ - cached_tail_ + need <= capacity_) {
    // relaxed: our own flag; un-marking only saves the consumer a needless wake.
    h_->writer_sleeping.store(0, std::memory_order_relaxed);
    return false;  // room now (or corrupt: the caller sees it on its next try)
  }
  return true;
}

ring_status ring_writer::write(std::uint32_t tag, std::span<const std::byte> payload,
                               std::chrono::nanoseconds timeout, spin_policy spin) {
  return spin_then_sleep(
      [&] { return try_write(tag, payload); }, ring_status::full, ring_status::timeout,
      [&] { return space_may_have_freed(); }, [&] { return arm_space_wakeup(payload.size()); }, h_->writer_sleeping,
      self_, timeout, spin);
}

bool ring_writer::space_may_have_freed() const noexcept {
  // relaxed: only a hint; try_write's refresh_tail does the acquire.
  return h_->tail.load(std::memory_order_relaxed) != cached_tail_;
}

std::size_t ring_writer::free_bytes() {
  if (corrupt() || !refresh_tail()) return 0;
  return static_cast<std::size_t>(capacity_ - (head_ - cached_tail_));
}

// ---------------------------------------------------------------- reader

ring_reader::ring_reader(void* mem, std::size_t bytes, wakeup self, wakeup peer) : self_(self), peer_(peer) {
  std::uint64_t cap = 0;
  if (auto err = validate_header(mem, bytes, cap); !err.empty()) throw std::runtime_error(err);
  h_ = static_cast<ring_header*>(mem);
  data_ = static_cast<const std::byte*>(mem) + sizeof(ring_header);
  capacity_ = cap;
  // relaxed: attach happens before any concurrent use (fork/exec orders it); validated anyway.
  tail_ = h_->tail.load(std::memory_order_relaxed);
  released_ = tail_;
  cached_head_ = tail_;
  if (tail_ % 8 != 0) error_ = "ring: consumer position " + std::to_string(tail_) + " is not 8-byte aligned at attach";
}

ring_status ring_reader::fail(std::string what) {
  if (error_.empty()) error_ = std::move(what);
  return ring_status::corrupt;
}

bool ring_reader::readable() const noexcept {
  // relaxed: only a hint; try_read does the acquire.
  return cached_head_ != tail_ || h_->head.load(std::memory_order_relaxed) != tail_;
}

ring_status ring_reader::try_read(frame_view& frame) {
  if (corrupt()) return ring_status::corrupt;
  if (pending_ != 0) throw std::logic_error("ring_reader::try_read before pop() of the previous frame");
  if (cached_head_ == tail_) {
    // acquire: pairs with the producer's release-store in publish(); the frame bytes before
    // this head are complete.
    const std::uint64_t h = h_->head.load(std::memory_order_acquire);
    if (h < tail_ || h - tail_ > capacity_ || h % 8 != 0)
      return fail("ring: producer position " + std::to_string(h) + " is impossible (consumer at " +
                  std::to_string(tail_) + ", capacity " + std::to_string(capacity_) + ")");
    cached_head_ = h;
    if (h == tail_) {
      if (batching_) flush();  // about to go idle: give the producer its space now
      return ring_status::empty;
    }
  }
  // Invariants here: tail_ % 8 == 0 and 0 < cached_head_ - tail_ <= capacity_, so every offset
  // below is 8-aligned and inside the data area.
  std::uint64_t avail = cached_head_ - tail_;
  std::uint64_t off = tail_ & (capacity_ - 1);
  std::uint64_t skipped = 0;
  std::uint64_t word = load_word(data_ + off);
  if (static_cast<std::uint32_t>(word >> 32) == padding_tag) {
    // A producer pads only when the next frame does not fit before the end, so a padding frame
    // never starts at offset 0, fills exactly the rest of the buffer, and is published together
    // with the frame that follows it (one head store). Anything else is a lie.
    const std::uint64_t contiguous = capacity_ - off;
    const auto length = static_cast<std::uint32_t>(word);
    if (off == 0 || length != contiguous - frame_header_size || contiguous >= avail)
      return fail("ring: bad padding frame at position " + std::to_string(tail_) + " (length " +
                  std::to_string(length) + ", " + std::to_string(contiguous) + " bytes to the end, " +
                  std::to_string(avail) + " bytes published)");
    skipped = contiguous;
    avail -= contiguous;
    off = 0;
    word = load_word(data_);
  }
  const auto length = static_cast<std::uint32_t>(word);
  const auto tag = static_cast<std::uint32_t>(word >> 32);
  const std::uint64_t total = frame_header_size + align8(length);
  if (tag == padding_tag || length > ring_max_payload(capacity_) || total > capacity_ - off || total > avail)
    return fail("ring: bad frame at position " + std::to_string(tail_ + skipped) + " (length " +
                std::to_string(length) + ", tag " + std::to_string(tag) + ", " + std::to_string(avail) +
                " bytes published)");
  frame.tag = tag;
  frame.payload = {data_ + off + frame_header_size, length};
  pending_ = skipped + total;
  return ring_status::ok;
}

void ring_reader::pop() {
  if (pending_ == 0) return;
  tail_ += pending_;
  pending_ = 0;
  // Batching: hand space back once batch_bytes() are consumed (or on flush / empty).
  if (!batching_ || tail_ - released_ >= batch_bytes(capacity_)) flush();
}

void ring_reader::set_batching(bool on) {
  if (!on) flush();
  batching_ = on;
}

void ring_reader::flush() {
  if (tail_ == released_) return;
  released_ = tail_;
  // release: our reads of the frames happen before the producer may overwrite them; pairs with
  // the producer's acquire-load of tail in refresh_tail().
  h_->tail.store(tail_, std::memory_order_release);
  // seq_cst fence: orders the tail store before the load of writer_sleeping; pairs with the
  // producer's fence in arm_space_wakeup().
  std::atomic_thread_fence(std::memory_order_seq_cst);
  wake_if_sleeping(h_->writer_sleeping, peer_);
}

bool ring_reader::arm_wakeup() {
  flush();
  if (corrupt()) return false;
  // relaxed store + seq_cst fence: pairs with the producer's fence in publish() (Dekker: either
  // we see its new head below, or it sees our flag and wakes us).
  h_->reader_sleeping.store(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // relaxed: ordered by the fence above; try_read re-loads head with acquire before reading.
  if (cached_head_ != tail_ || h_->head.load(std::memory_order_relaxed) != tail_) {
    // relaxed: our own flag; un-marking only saves the producer a needless wake.
    h_->reader_sleeping.store(0, std::memory_order_relaxed);
    return false;
  }
  return true;
}

ring_status ring_reader::read(frame_view& frame, std::chrono::nanoseconds timeout, spin_policy spin) {
  return spin_then_sleep(
      [&] { return try_read(frame); }, ring_status::empty, ring_status::timeout, [&] { return readable(); },
      [&] { return arm_wakeup(); }, h_->reader_sleeping, self_, timeout, spin);
}

}  // namespace procsup::shm
