// A move-only owner of one file descriptor, and the EINTR retry every system call goes through.
#pragma once

#include <cerrno>
#include <system_error>
#include <utility>

namespace procsup::sys {

// Calls f() until it does not fail with EINTR. Returns f()'s result; errno is left as f() set it.
// Any thread. Async-signal-safe if f is.
template <class F>
auto retry_eintr(F&& f) -> decltype(f()) {
  for (;;) {
    auto r = f();
    if (r != -1 || errno != EINTR) return r;
  }
}

// As retry_eintr, but throws std::system_error naming `what` when the call fails (for callers
// that cannot go on without it: see docs/development.md, Conventions).
template <class F>
auto check(const char* what, F&& f) -> decltype(f()) {
  auto r = retry_eintr(std::forward<F>(f));
  if (r == -1) throw std::system_error(errno, std::generic_category(), what);
  return r;
}

// Closes fd if it is >= 0. EINTR on close is not retried: on Linux the fd is gone either way,
// and a retry could close an fd another thread was just given. Async-signal-safe; keeps errno.
void close_fd(int fd) noexcept;

// Owns one fd: closed by the destructor, reset() or move-assignment. Not thread-safe (as an int).
class unique_fd {
 public:
  unique_fd() noexcept = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { close_fd(fd_); }

  int get() const noexcept { return fd_; }
  // Gives the fd up without closing it (the caller owns it now).
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
  // Closes the fd held (if any) and holds `fd` instead.
  void reset(int fd = -1) noexcept { close_fd(std::exchange(fd_, fd)); }
  explicit operator bool() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Both ends of a pipe.
struct fd_pair {
  unique_fd read;
  unique_fd write;
};

}  // namespace procsup::sys
