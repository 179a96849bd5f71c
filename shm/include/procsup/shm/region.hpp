// A shared memory region backed by a memfd: inherited by a forked child through the mapping,
// attachable by an exec'd child through the (inherited) file descriptor.
#pragma once

#include <cstddef>

#include "procsup/shm/sys.hpp"

namespace procsup::shm {

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
  int fd() const noexcept { return fd_.get(); }

  // Closes the fd but keeps the mapping (a forked child that needs only the mapping).
  void close_fd() noexcept { fd_.reset(); }

  // Forgets the mapping without unmapping it (a forked child about to _exit).
  void leak() noexcept;

 private:
  shared_region(void* data, std::size_t size, sys::unique_fd fd) noexcept
      : data_(data), size_(size), fd_(std::move(fd)) {}
  void* data_ = nullptr;
  std::size_t size_ = 0;
  sys::unique_fd fd_;
};

}  // namespace procsup::shm
