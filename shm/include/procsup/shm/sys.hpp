// One wrapper for every system call: retries EINTR and turns errno into an exception or a value.
#pragma once

#include <cerrno>
#include <string>
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

// As retry_eintr, but throws std::system_error naming `what` when the call fails.
template <class F>
auto check(const char* what, F&& f) -> decltype(f()) {
  auto r = retry_eintr(std::forward<F>(f));
  if (r == -1) throw std::system_error(errno, std::generic_category(), what);
  return r;
}

// Closes fd if it is >= 0 (EINTR on close is not retried: on Linux the fd is gone either way).
void close_fd(int fd) noexcept;

// A move-only owner of one file descriptor.
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
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd = -1) noexcept { close_fd(std::exchange(fd_, fd)); }
  explicit operator bool() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace procsup::sys
