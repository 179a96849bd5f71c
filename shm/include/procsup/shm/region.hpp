// A shared memory region backed by a memfd: inherited by a forked child through the mapping,
// attachable by an exec'd child through the (inherited) file descriptor.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>

#include "procsup/sys/unique_fd.hpp"

namespace procsup::shm {

namespace detail {
struct pool_chunk;
struct pool_state;
}  // namespace detail

// Where a pooled region lives: what a forked child needs to map its own copy of the region at
// the same address, since the parent's mapping of the pool chunk is kept out of forks.
struct region_source {
  void* addr = nullptr;
  std::size_t size = 0;
  int fd = -1;  // the chunk's memfd (O_CLOEXEC; open in the parent while the region lives)
  off_t offset = 0;
};

// Owns a MAP_SHARED mapping of a sealed memfd (no name in /dev/shm: it is freed when the last
// mapping and fd are gone, whatever kills the processes).
class shared_region {
 public:
  shared_region() = default;
  shared_region(shared_region&&) noexcept;
  shared_region& operator=(shared_region&&) noexcept;
  shared_region(const shared_region&) = delete;
  shared_region& operator=(const shared_region&) = delete;
  ~shared_region();

  // Creates a zero-filled region of `size` bytes (rounded up to the page size). The fd is
  // O_CLOEXEC and sealed against shrinking and growing. `name` only shows in /proc/PID/fd.
  // Throws std::system_error.
  static shared_region create(std::size_t size, const char* name = "procsup");

  // Maps the memfd `fd` (for example inherited across exec). Takes ownership of fd. Checks that
  // the fd is a memfd sealed against shrinking, so the peer cannot truncate it under us (SIGBUS).
  // Throws std::system_error or std::runtime_error naming the problem.
  static shared_region attach(int fd);

  void* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  // The region's own memfd; -1 once closed, and always for a pooled region (its chunk holds
  // other regions, so it is never handed to anyone: see source()).
  int fd() const noexcept { return fd_.get(); }

  // Closes the fd but keeps the mapping (a forked child that needs only the mapping).
  void close_fd() noexcept { fd_.reset(); }

  // A region carved from a region_pool: source() says where a forked child maps it.
  bool pooled() const noexcept { return chunk_ != nullptr; }
  region_source source() const noexcept;

 private:
  friend class region_pool;
  shared_region(void* data, std::size_t size, sys::unique_fd fd) noexcept
      : data_(data), size_(size), fd_(std::move(fd)) {}
  void reset() noexcept;
  void* data_ = nullptr;
  std::size_t size_ = 0;
  sys::unique_fd fd_;
  std::shared_ptr<detail::pool_chunk> chunk_;  // pooled: the chunk and our slot in it
  std::size_t slot_ = 0;
};

// Regions carved from a few large memfd chunks instead of one memfd and one mapping each.
//
// Why: fork() costs about 1.4 us per mapping of the parent, MADV_DONTFORK or not (the kernel
// copies the mapping tree, then removes each don't-fork entry from the copy). A supervisor with
// one channel mapping per child made every fork slower with every child: 1.7 ms per fork with
// 1,000 children instead of 0.3 ms. A chunk holds `slots_per_chunk` regions in one mapping, kept
// out of forks (MADV_DONTFORK) from the start; a forked child maps only its own region, at the
// same address, from the chunk's memfd (region_source), before it closes every inherited fd.
//
// A released region's memory is returned to the system (FALLOC_FL_PUNCH_HOLE), so the next
// region in that slot starts zero-filled; a chunk whose regions are all released is unmapped and
// its memfd closed. Thread-safe. Regions may outlive the pool. A forked child that uses the
// pool object it inherited gets fresh chunks of its own (the parent's are not mapped in it).
class region_pool {
 public:
  explicit region_pool(std::size_t slots_per_chunk = 64);
  ~region_pool();
  region_pool(const region_pool&) = delete;
  region_pool& operator=(const region_pool&) = delete;

  // A zero-filled region of `size` bytes (rounded up to the page size). Throws std::system_error
  // (memfd_create, ftruncate, mmap) or std::invalid_argument (size 0).
  shared_region allocate(std::size_t size);

  // Chunks currently mapped (for tests and diagnostics).
  std::size_t chunks() const;

 private:
  detail::pool_state& state();
  std::shared_ptr<detail::pool_state> state_;
  pid_t owner_;
  std::size_t slots_per_chunk_;
};

}  // namespace procsup::shm
