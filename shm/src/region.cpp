// shared_region: memfd + MAP_SHARED; sealed so that no peer can shrink it under the other.
#include "procsup/shm/region.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace procsup::shm {

namespace {
std::size_t page_round(std::size_t n) {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return (n + page - 1) / page * page;
}
}  // namespace

shared_region::shared_region(shared_region&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      fd_(std::move(o.fd_)),
      chunk_(std::move(o.chunk_)),
      slot_(o.slot_) {}

shared_region& shared_region::operator=(shared_region&& o) noexcept {
  if (this != &o) {
    reset();
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    fd_ = std::move(o.fd_);
    chunk_ = std::move(o.chunk_);
    slot_ = o.slot_;
  }
  return *this;
}

shared_region::~shared_region() { reset(); }

shared_region shared_region::create(std::size_t size, const char* name) {
  if (size == 0) throw std::invalid_argument("shared_region::create: size 0");
  size = page_round(size);
  sys::unique_fd fd(sys::check("memfd_create", [&] {
    return ::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  }));
  sys::check("ftruncate(memfd)", [&] { return ::ftruncate(fd.get(), static_cast<off_t>(size)); });
  sys::check("fcntl(F_ADD_SEALS)", [&] {
    return ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  });
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap(memfd)");
  return shared_region(p, size, std::move(fd));
}

shared_region shared_region::attach(int raw_fd) {
  sys::unique_fd fd(raw_fd);
  int seals = ::fcntl(fd.get(), F_GET_SEALS);
  if (seals == -1)
    throw std::system_error(errno, std::generic_category(),
                            "shared_region::attach: fd " + std::to_string(raw_fd) + " is not a memfd");
  if (!(seals & F_SEAL_SHRINK))
    throw std::runtime_error("shared_region::attach: memfd " + std::to_string(raw_fd) +
                             " is not sealed against shrinking");
  struct stat st {};
  sys::check("fstat(memfd)", [&] { return ::fstat(fd.get(), &st); });
  if (st.st_size <= 0) throw std::runtime_error("shared_region::attach: memfd is empty");
  const auto size = static_cast<std::size_t>(st.st_size);
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap(attached memfd)");
  // Our own copy of the fd must not leak into grandchildren.
  ::fcntl(fd.get(), F_SETFD, FD_CLOEXEC);
  return shared_region(p, size, std::move(fd));
}

// ------------------------------------------------------------------ region_pool

namespace detail {

// One memfd of `slots` regions of `slot_size` bytes, mapped once, MADV_DONTFORK. Its bookkeeping
// is guarded by the pool state's mutex.
struct pool_chunk {
  std::shared_ptr<pool_state> state;  // released regions go back here (cycle broken when empty)
  pid_t owner = 0;
  std::size_t slot_size = 0;
  std::byte* base = nullptr;
  std::size_t bytes = 0;
  sys::unique_fd fd;
  std::vector<bool> used;
  std::size_t in_use = 0;

  ~pool_chunk() {
    if (base != nullptr) ::munmap(base, bytes);
  }
  void release(std::size_t slot) noexcept;
};

struct pool_state {
  std::mutex mu;
  // slot size -> chunks with at least one region in use (the ones that have a free slot first
  // found by a scan: there are few chunks).
  std::map<std::size_t, std::vector<std::shared_ptr<pool_chunk>>> chunks;
};

void pool_chunk::release(std::size_t slot) noexcept {
  // A forked child's copy of a region: the chunk is not mapped in it and its memfd was closed
  // (the number may name another file by now). Leave everything alone.
  if (::getpid() != owner) return;
  // Zero the slot and give its memory back (the memfd is not sealed against writes).
  (void)::fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(slot * slot_size),
                    static_cast<off_t>(slot_size));
  std::shared_ptr<pool_state> keep = state;  // may drop the last reference to this chunk below
  std::lock_guard lk(keep->mu);
  used[slot] = false;
  if (--in_use == 0) {
    auto& list = keep->chunks[slot_size];
    for (auto it = list.begin(); it != list.end(); ++it)
      if (it->get() == this) {
        state.reset();  // break the cycle; the erase below may destroy *this
        list.erase(it);
        break;
      }
  }
}

}  // namespace detail

void shared_region::reset() noexcept {
  if (chunk_) {
    auto chunk = std::move(chunk_);
    chunk->release(slot_);
  } else if (data_) {
    ::munmap(data_, size_);
  }
  data_ = nullptr;
  size_ = 0;
  fd_.reset();
}

region_source shared_region::source() const noexcept {
  if (!chunk_) return {};
  return {data_, size_, chunk_->fd.get(), static_cast<off_t>(slot_ * chunk_->slot_size)};
}

region_pool::region_pool(std::size_t slots_per_chunk)
    : state_(std::make_shared<detail::pool_state>()), owner_(::getpid()), slots_per_chunk_(slots_per_chunk) {
  if (slots_per_chunk == 0) throw std::invalid_argument("region_pool: slots_per_chunk 0");
}

region_pool::~region_pool() {
  if (::getpid() != owner_) {
    // A forked child's copy: the chunks are its parent's, not mapped here; forget them.
    new std::shared_ptr<detail::pool_state>(std::move(state_));
  }
}

detail::pool_state& region_pool::state() {
  if (::getpid() != owner_) {
    // Inherited across fork: none of the parent's chunks is mapped here and its mutex may have
    // been held by a thread that does not exist here. Leak the copy, start empty.
    new std::shared_ptr<detail::pool_state>(std::move(state_));
    state_ = std::make_shared<detail::pool_state>();
    owner_ = ::getpid();
  }
  return *state_;
}

std::size_t region_pool::chunks() const {
  std::lock_guard lk(state_->mu);
  std::size_t n = 0;
  for (auto& [size, list] : state_->chunks) n += list.size();
  return n;
}

shared_region region_pool::allocate(std::size_t size) {
  if (size == 0) throw std::invalid_argument("region_pool::allocate: size 0");
  size = page_round(size);
  detail::pool_state& st = state();
  std::lock_guard lk(st.mu);
  auto& list = st.chunks[size];
  std::shared_ptr<detail::pool_chunk> chunk;
  for (auto& c : list)
    if (c->in_use < c->used.size()) {
      chunk = c;
      break;
    }
  if (!chunk) {
    chunk = std::make_shared<detail::pool_chunk>();
    chunk->owner = owner_;
    chunk->slot_size = size;
    chunk->bytes = size * slots_per_chunk_;
    chunk->fd.reset(sys::check("memfd_create", [] {
      return ::memfd_create("procsup-pool", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    }));
    sys::check("ftruncate(pool memfd)", [&] { return ::ftruncate(chunk->fd.get(), static_cast<off_t>(chunk->bytes)); });
    // A child that gets the memfd for a moment (to map its region) cannot resize it under us.
    sys::check("fcntl(F_ADD_SEALS)", [&] {
      return ::fcntl(chunk->fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    });
    void* p = ::mmap(nullptr, chunk->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, chunk->fd.get(), 0);
    if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap(pool memfd)");
    chunk->base = static_cast<std::byte*>(p);
    // From the start: no child ever inherits the chunk (each maps its own region).
    if (::madvise(p, chunk->bytes, MADV_DONTFORK) != 0)
      throw std::system_error(errno, std::generic_category(), "madvise(MADV_DONTFORK)");
    chunk->used.assign(slots_per_chunk_, false);
    chunk->state = state_;
    list.push_back(chunk);
  }
  std::size_t slot = 0;
  while (chunk->used[slot]) ++slot;
  chunk->used[slot] = true;
  ++chunk->in_use;
  shared_region r(chunk->base + slot * size, size, sys::unique_fd{});
  r.chunk_ = std::move(chunk);
  r.slot_ = slot;
  return r;
}

}  // namespace procsup::shm
