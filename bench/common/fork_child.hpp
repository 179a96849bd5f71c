// Helpers shared by the benchmark programs: a forked child that runs a function and is reaped
// (its exit status checked), and full reads / writes on pipes and sockets.
#pragma once

#include <benchmark/benchmark.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

namespace procsup::bench {

[[noreturn]] inline void die(const char* what) {
  std::perror(what);
  std::_Exit(111);
}

// A forked child running body() and ending with _exit (its code, or 100 if body threw); reaped,
// and its exit status checked, by wait().
class child_process {
 public:
  explicit child_process(const std::function<int()>& body) {
    pid_ = ::fork();
    if (pid_ < 0) die("fork");
    if (pid_ == 0) {
      int code = 100;
      try {
        code = body();
      } catch (...) {
      }
      ::_exit(code);
    }
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  ~child_process() { wait(nullptr); }
  pid_t pid() const { return pid_; }
  // Reaps the child; reports an error on `state` if it did not exit 0.
  void wait(benchmark::State* state) {
    if (pid_ <= 0) return;
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    if (state && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
      state->SkipWithError(("child failed, wait status " + std::to_string(status)).c_str());
  }

 private:
  pid_t pid_ = -1;
};

// Writes all n bytes (retrying EINTR and short writes); false on error.
inline bool write_full(int fd, const void* p, std::size_t n) {
  const auto* b = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t r = ::write(fd, b, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    b += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// Reads exactly n bytes; false on EOF or error.
inline bool read_full(int fd, void* p, std::size_t n) {
  auto* b = static_cast<char*>(p);
  while (n > 0) {
    const ssize_t r = ::read(fd, b, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    b += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

}  // namespace procsup::bench
