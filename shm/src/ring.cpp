// The SPSC frame ring. Every value read from the mapping is validated before use; see ring.hpp.
#include "procsup/shm/ring.hpp"

#include <sys/eventfd.h>
#include <poll.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#include "procsup/shm/futex.hpp"
#include "procsup/shm/sys.hpp"

namespace procsup::shm {

namespace {

constexpr std::uint64_t align8(std::uint64_t n) { return (n + 7) & ~std::uint64_t{7}; }

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

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

// Wakes the side that sleeps on `word` (it set word = 1 before sleeping). Called after a full
// fence that follows our publish, pairing with the sleeper's fence between setting `word` and
// re-checking the ring (a Dekker handshake: one of the two sees the other's store).
void wake_if_sleeping(std::atomic<std::uint32_t>& word, wakeup how) noexcept {
  // relaxed: ordered by the caller's seq_cst fence; the exchange makes exactly one waker act.
  if (word.load(std::memory_order_relaxed) == 0) return;
  if (word.exchange(0, std::memory_order_relaxed) == 0) return;
  if (how.eventfd >= 0) {
    std::uint64_t one = 1;
    // EAGAIN (counter saturated) means a wake is already pending: fine.
    (void)sys::retry_eintr([&] { return ::write(how.eventfd, &one, sizeof one); });
  } else {
    futex_wake(word, 1);
  }
}

// Sleeps until `word` is cleared by the peer, the eventfd fires, or the deadline passes.
// Returns false on timeout.
bool sleep_on(std::atomic<std::uint32_t>& word, wakeup how, std::chrono::nanoseconds timeout) {
  if (how.eventfd >= 0) {
    pollfd p{how.eventfd, POLLIN, 0};
    int ms = timeout.count() < 0 ? -1 : static_cast<int>((timeout.count() + 999'999) / 1'000'000);
    int r = sys::retry_eintr([&] { return ::poll(&p, 1, ms); });
    if (r > 0) {
      std::uint64_t v;
      (void)::read(how.eventfd, &v, sizeof v);
    }
    return r != 0;
  }
  return futex_wait(word, 1, timeout);
}

using clock = std::chrono::steady_clock;

std::chrono::nanoseconds remaining(clock::time_point deadline, bool forever) {
  if (forever) return std::chrono::nanoseconds(-1);
  auto left = deadline - clock::now();
  return left.count() > 0 ? std::chrono::duration_cast<std::chrono::nanoseconds>(left)
                          : std::chrono::nanoseconds(0);
}

}  // namespace

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
  if (capacity < 64 || (capacity & (capacity - 1)) != 0 || capacity > (std::size_t{1} << 40))
    throw std::invalid_argument("format_ring: capacity must be a power of two in [64, 2^40], got " +
                                std::to_string(capacity));
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
  h->head.store(0, std::memory_order_relaxed);
  h->tail.store(0, std::memory_order_relaxed);
  h->reader_sleeping.store(0, std::memory_order_relaxed);
  h->writer_sleeping.store(0, std::memory_order_relaxed);
  // Publication to the peer happens through fork()/the mapping being handed over, which orders.
  return h;
}

std::string check_ring(const void* mem, std::size_t bytes) {
  if (mem == nullptr) return "ring: no memory";
  if (reinterpret_cast<std::uintptr_t>(mem) % cache_line != 0) return "ring: memory is not 64-byte aligned";
  if (bytes < sizeof(ring_header)) return "ring: " + std::to_string(bytes) + " bytes is smaller than a ring header";
  const auto* h = static_cast<const ring_header*>(mem);
  if (h->magic != ring_magic) return "ring: bad magic number (not a procsup ring)";
  if (h->version != ring_layout_version)
    return "ring: layout version " + std::to_string(h->version) + ", this build understands " +
           std::to_string(ring_layout_version);
  if (h->header_size != sizeof(ring_header)) return "ring: header size " + std::to_string(h->header_size) + " is not " + std::to_string(sizeof(ring_header));
  const std::uint64_t cap = h->capacity;
  if (cap < 64 || (cap & (cap - 1)) != 0 || cap > (std::uint64_t{1} << 40))
    return "ring: capacity " + std::to_string(cap) + " is not a power of two in [64, 2^40]";
  if (ring_bytes(cap) > bytes)
    return "ring: capacity " + std::to_string(cap) + " does not fit in " + std::to_string(bytes) + " bytes";
  return {};
}

// ---------------------------------------------------------------- writer

ring_writer::ring_writer(void* mem, std::size_t bytes, wakeup self, wakeup peer) : self_(self), peer_(peer) {
  if (auto err = check_ring(mem, bytes); !err.empty()) throw std::runtime_error(err);
  h_ = static_cast<ring_header*>(mem);
  data_ = static_cast<std::byte*>(mem) + sizeof(ring_header);
  capacity_ = h_->capacity;
  // relaxed: attach happens before any concurrent use (fork/exec orders it); validated anyway.
  head_ = h_->head.load(std::memory_order_relaxed);
  cached_tail_ = h_->tail.load(std::memory_order_relaxed);
  if (head_ % 8 != 0 || cached_tail_ > head_ || head_ - cached_tail_ > capacity_)
    error_ = "ring: positions are inconsistent at attach (head " + std::to_string(head_) + ", tail " +
             std::to_string(cached_tail_) + ")";
}

bool ring_writer::refresh_tail() {
  // acquire: pairs with the consumer's release-store of tail in pop(); the consumer has finished
  // reading the bytes before that position, so we may overwrite them.
  const std::uint64_t t = h_->tail.load(std::memory_order_acquire);
  if (t > head_ || head_ - t > capacity_ || t % 8 != 0 || t < cached_tail_) {
    error_ = "ring: consumer position " + std::to_string(t) + " is impossible (producer at " +
             std::to_string(head_) + ", capacity " + std::to_string(capacity_) + ")";
    return false;
  }
  cached_tail_ = t;
  return true;
}

bool ring_writer::has_room(std::uint64_t need) {
  if (head_ + need - cached_tail_ <= capacity_) return true;
  if (!refresh_tail()) return false;
  return head_ + need - cached_tail_ <= capacity_;
}

std::span<std::byte> ring_writer::try_reserve(std::size_t size, ring_status& status) {
  if (corrupt()) { status = ring_status::corrupt; return {}; }
  if (size > max_payload()) { status = ring_status::too_large; return {}; }
  const std::uint64_t total = frame_header_size + align8(size);
  std::uint64_t off = head_ & (capacity_ - 1);
  const std::uint64_t contiguous = capacity_ - off;
  const std::uint64_t pad = total > contiguous ? contiguous : 0;
  if (!has_room(pad + total)) {
    status = corrupt() ? ring_status::corrupt : ring_status::full;
    return {};
  }
  if (pad != 0) {
    // Not yet visible: head is published only in commit(), after the frame itself.
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
  publish();
}

void ring_writer::publish() {
  // release: makes the frame bytes (and any padding) visible before the new head; pairs with the
  // consumer's acquire-load of head in try_read().
  h_->head.store(head_, std::memory_order_release);
  // seq_cst fence: orders the head store before the load of reader_sleeping; pairs with the
  // consumer's fence in arm_wakeup()/read() between setting reader_sleeping and re-reading head.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  wake_if_sleeping(h_->reader_sleeping, peer_);
}

ring_status ring_writer::try_write(std::uint32_t tag, std::span<const std::byte> payload) {
  return try_write(tag, payload, {});
}

ring_status ring_writer::try_write(std::uint32_t tag, std::span<const std::byte> a, std::span<const std::byte> b) {
  if (tag == padding_tag) throw std::invalid_argument("ring_writer: tag 0xffffffff is reserved for padding");
  ring_status st;
  auto room = try_reserve(a.size() + b.size(), st);
  if (st != ring_status::ok) return st;
  if (!a.empty()) std::memcpy(room.data(), a.data(), a.size());
  if (!b.empty()) std::memcpy(room.data() + a.size(), b.data(), b.size());
  commit(tag, a.size() + b.size());
  return ring_status::ok;
}

bool ring_writer::arm_space_wakeup(std::size_t need_payload) {
  const std::uint64_t total = frame_header_size + align8(need_payload);
  const std::uint64_t off = head_ & (capacity_ - 1);
  const std::uint64_t need = total + (total > capacity_ - off ? capacity_ - off : 0);
  // relaxed store + seq_cst fence: pairs with the consumer's fence in pop() between its
  // tail store and its load of writer_sleeping.
  h_->writer_sleeping.store(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!refresh_tail()) {
    h_->writer_sleeping.store(0, std::memory_order_relaxed);
    return false;  // corrupt: let the caller see it on the next try
  }
  if (head_ + need - cached_tail_ <= capacity_) {
    h_->writer_sleeping.store(0, std::memory_order_relaxed);
    return false;
  }
  return true;
}

ring_status ring_writer::write(std::uint32_t tag, std::span<const std::byte> payload,
                               std::chrono::nanoseconds timeout, spin_policy spin) {
  const bool forever = timeout.count() < 0;
  const auto start = clock::now();
  const auto deadline = start + (forever ? std::chrono::nanoseconds(0) : timeout);
  for (;;) {
    auto st = try_write(tag, payload);
    if (st != ring_status::full) return st;
    const auto now = clock::now();
    if (!forever && now >= deadline) return ring_status::timeout;
    if (now - start < spin.spin) { cpu_relax(); continue; }
    if (arm_space_wakeup(payload.size())) {
      if (!sleep_on(h_->writer_sleeping, self_, remaining(deadline, forever)) && !forever) {
        h_->writer_sleeping.store(0, std::memory_order_relaxed);
        if (try_write(tag, payload) == ring_status::ok) return ring_status::ok;
        return ring_status::timeout;
      }
    }
  }
}

std::size_t ring_writer::free_bytes() {
  if (corrupt() || !refresh_tail()) return 0;
  return static_cast<std::size_t>(capacity_ - (head_ - cached_tail_));
}

// ---------------------------------------------------------------- reader

ring_reader::ring_reader(void* mem, std::size_t bytes, wakeup self, wakeup peer) : self_(self), peer_(peer) {
  if (auto err = check_ring(mem, bytes); !err.empty()) throw std::runtime_error(err);
  h_ = static_cast<ring_header*>(mem);
  data_ = static_cast<const std::byte*>(mem) + sizeof(ring_header);
  capacity_ = h_->capacity;
  // relaxed: see ring_writer's constructor.
  tail_ = h_->tail.load(std::memory_order_relaxed);
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
  for (;;) {
    if (cached_head_ == tail_) {
      // acquire: pairs with the producer's release-store in publish(); the frame bytes before
      // this head are complete.
      const std::uint64_t h = h_->head.load(std::memory_order_acquire);
      if (h < tail_ || h - tail_ > capacity_ || h % 8 != 0)
        return fail("ring: producer position " + std::to_string(h) + " is impossible (consumer at " +
                    std::to_string(tail_) + ", capacity " + std::to_string(capacity_) + ")");
      cached_head_ = h;
      if (h == tail_) return ring_status::empty;
    }
    const std::uint64_t avail = cached_head_ - tail_;
    const std::uint64_t off = tail_ & (capacity_ - 1);
    const std::uint64_t contiguous = capacity_ - off;
    const std::uint64_t word = load_word(data_ + off);
    const auto length = static_cast<std::uint32_t>(word);
    const auto tag = static_cast<std::uint32_t>(word >> 32);
    if (tag == padding_tag) {
      if (length != contiguous - frame_header_size || contiguous > avail)
        return fail("ring: bad padding frame at position " + std::to_string(tail_) + " (length " +
                    std::to_string(length) + ", " + std::to_string(contiguous) + " bytes to the end)");
      tail_ += contiguous;
      // release: hands the padding's bytes back to the producer (see pop()).
      h_->tail.store(tail_, std::memory_order_release);
      continue;
    }
    const std::uint64_t total = frame_header_size + align8(length);
    if (length > ring_max_payload(capacity_) || total > contiguous || total > avail)
      return fail("ring: bad frame at position " + std::to_string(tail_) + " (length " + std::to_string(length) +
                  ", tag " + std::to_string(tag) + ", " + std::to_string(avail) + " bytes published)");
    frame.tag = tag;
    frame.payload = {data_ + off + frame_header_size, length};
    pending_ = total;
    return ring_status::ok;
  }
}

void ring_reader::pop() {
  if (pending_ == 0) return;
  tail_ += pending_;
  pending_ = 0;
  // release: our reads of the frame happen before the producer may overwrite it; pairs with the
  // producer's acquire-load of tail in refresh_tail().
  h_->tail.store(tail_, std::memory_order_release);
  // seq_cst fence: orders the tail store before the load of writer_sleeping; pairs with the
  // producer's fence in arm_space_wakeup().
  std::atomic_thread_fence(std::memory_order_seq_cst);
  wake_if_sleeping(h_->writer_sleeping, peer_);
}

bool ring_reader::arm_wakeup() {
  // relaxed store + seq_cst fence: pairs with the producer's fence in publish() (Dekker: either
  // we see its new head below, or it sees our flag and wakes us).
  h_->reader_sleeping.store(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // acquire is not needed here: try_read re-loads head with acquire.
  if (cached_head_ != tail_ || h_->head.load(std::memory_order_relaxed) != tail_) {
    h_->reader_sleeping.store(0, std::memory_order_relaxed);
    return false;
  }
  return true;
}

ring_status ring_reader::read(frame_view& frame, std::chrono::nanoseconds timeout, spin_policy spin) {
  const bool forever = timeout.count() < 0;
  const auto start = clock::now();
  const auto deadline = start + (forever ? std::chrono::nanoseconds(0) : timeout);
  for (;;) {
    auto st = try_read(frame);
    if (st != ring_status::empty) return st;
    const auto now = clock::now();
    if (!forever && now >= deadline) return ring_status::timeout;
    if (now - start < spin.spin) {
      for (int i = 0; i < 16 && !readable(); ++i) cpu_relax();
      continue;
    }
    if (arm_wakeup()) {
      if (!sleep_on(h_->reader_sleeping, self_, remaining(deadline, forever)) && !forever) {
        h_->reader_sleeping.store(0, std::memory_order_relaxed);
        return try_read(frame) == ring_status::ok ? ring_status::ok : ring_status::timeout;
      }
    }
  }
}

}  // namespace procsup::shm
