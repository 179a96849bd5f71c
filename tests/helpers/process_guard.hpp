// A GoogleTest fixture base that fails a test which leaves a child process, a file descriptor or
// a /dev/shm entry behind. Header-only; Linux (/proc) only.
//
// Use it as the fixture of any test that forks, opens fds or shares memory:
//
//   class ring_fork : public procsup::testing::process_guard_test {};
//   TEST_F(ring_fork, million_frames_arrive_in_order) { ... fork, ..., waitpid ... }
//
// Before each test it snapshots the open fds (/proc/self/fd), the /dev/shm entries and the
// current children; after the test it adds a failure for every
//   - child process (running or zombie) that was not there before: the test forgot to reap it
//     (the guard then SIGKILLs and reaps it, so the next test starts clean),
//   - fd open now that was not open before (with its /proc/self/fd link target),
//   - /dev/shm entry that was not there before.
// A fixture that overrides SetUp()/TearDown() must call process_guard_test::SetUp() first in its
// SetUp and process_guard_test::TearDown() last in its TearDown (so its own fds are closed by
// then). Fixture members constructed before SetUp are part of the snapshot, so they may keep
// their fds until destruction.
//
// /dev/shm is machine-wide: a test process running in parallel (ctest -j) that creates a named
// segment would be blamed too. procsup itself never creates named shared memory (memfd only),
// so by default every new entry counts; override dev_shm_entry_counts() to narrow that.
//
// Outside a fixture, leak_snapshot::take() and leak_snapshot::leaks_since() do the same checks
// and return the problems as strings.
//
// Forking helpers for tests (a child must never return into the test runner: docs/platform-notes.md#googletest-and-fork):
//   pid_t pid = procsup::testing::fork_child([&] { ...; return 0; });  // child ends in _exit(code)
//   int status = procsup::testing::wait_child(pid);                     // waitpid, EINTR retried
//   EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << describe_wait_status(status);
#pragma once

#include <dirent.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

// procsup's launcher keeps a few placeholder fds per thread that runs launch_exec() (see
// reserve_launch_fds()). A snapshot reserves them first, so that they are not blamed on the test
// whose launch happened to be the thread's first. Weak: a test binary without the launcher
// (shm, ipc) does not need it, and then the address is null.
namespace procsup {
[[gnu::weak]] void reserve_launch_fds();
}  // namespace procsup

namespace procsup::testing {

namespace detail {

// Names in directory `path` (without "." and ".."); empty if it cannot be read. `self_fd`
// receives the fd of the directory stream itself (so /proc/self/fd can exclude it).
inline std::vector<std::string> list_dir(const char* path, int* self_fd = nullptr) {
  std::vector<std::string> out;
  DIR* d = ::opendir(path);
  if (d == nullptr) return out;
  if (self_fd != nullptr) *self_fd = ::dirfd(d);
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
  }
  ::closedir(d);
  return out;
}

inline std::string fd_target(int fd) {
  char buf[512];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  if (n < 0) return "?";
  return std::string(buf, static_cast<std::size_t>(n));
}

// The parent pid and state letter of process `pid`, from /proc/<pid>/stat; false if it is gone.
inline bool read_stat(pid_t pid, pid_t& ppid, char& state) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  const auto close = line.rfind(')');  // the command name may contain spaces and parentheses
  if (close == std::string::npos) return false;
  std::istringstream rest(line.substr(close + 1));
  long pp = 0;
  if (!(rest >> state >> pp)) return false;
  ppid = static_cast<pid_t>(pp);
  return true;
}

}  // namespace detail

// The fds, /dev/shm entries and children of this process at one moment.
struct leak_snapshot {
  std::set<int> fds;
  std::set<std::string> dev_shm;
  std::set<pid_t> children;

  // Open fds of this process (without the one used to list them).
  static std::set<int> open_fds() {
    std::set<int> fds;
    int self = -1;
    for (const auto& name : detail::list_dir("/proc/self/fd", &self)) {
      const int fd = std::atoi(name.c_str());
      if (fd != self) fds.insert(fd);
    }
    return fds;
  }

  static std::set<std::string> dev_shm_entries() {
    const auto names = detail::list_dir("/dev/shm");
    return {names.begin(), names.end()};
  }

  // Processes (running or zombie) whose parent is this process. Threads are not listed at the
  // top of /proc, so they do not count.
  static std::set<pid_t> child_pids() {
    std::set<pid_t> out;
    const pid_t self = ::getpid();
    for (const auto& name : detail::list_dir("/proc")) {
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      const auto pid = static_cast<pid_t>(std::atol(name.c_str()));
      pid_t ppid = 0;
      char state = '?';
      if (detail::read_stat(pid, ppid, state) && ppid == self) out.insert(pid);
    }
    return out;
  }

  static leak_snapshot take() {
    if (procsup::reserve_launch_fds != nullptr) procsup::reserve_launch_fds();
    return {open_fds(), dev_shm_entries(), child_pids()};
  }

  // What appeared since `before`, one line per problem. With `reap`, new children are SIGKILLed
  // and reaped (so they do not haunt later tests). `shm_counts` filters /dev/shm names.
  template <class ShmFilter>
  static std::vector<std::string> leaks_since(const leak_snapshot& before, bool reap, ShmFilter shm_counts) {
    std::vector<std::string> problems;
    for (const pid_t pid : child_pids()) {
      if (before.children.count(pid) != 0) continue;
      pid_t ppid = 0;
      char state = '?';
      (void)detail::read_stat(pid, ppid, state);
      problems.push_back("child process " + std::to_string(pid) + " was left " +
                         (state == 'Z' ? "unreaped (zombie)" : "running"));
      if (reap) {
        ::kill(pid, SIGKILL);
        int status = 0;
        while (::waitpid(pid, &status, 0) == -1 && errno == EINTR) {
        }
      }
    }
    for (const int fd : open_fds()) {
      if (before.fds.count(fd) == 0)
        problems.push_back("fd " + std::to_string(fd) + " (" + detail::fd_target(fd) + ") was leaked");
    }
    for (const auto& name : dev_shm_entries()) {
      if (before.dev_shm.count(name) == 0 && shm_counts(name))
        problems.push_back("/dev/shm/" + name + " appeared and was not removed");
    }
    return problems;
  }
  static std::vector<std::string> leaks_since(const leak_snapshot& before, bool reap = true) {
    return leaks_since(before, reap, [](const std::string&) { return true; });
  }
};

// Forks; the child runs `body` (which returns its exit code) and ends with _exit(code), never
// returning into the test runner. An exception escaping `body` exits with 125. Returns the child's
// pid (-1 if fork failed). Call it from a single-threaded test process.
template <class F>
pid_t fork_child(F&& body) {
  std::fflush(nullptr);  // or buffered output would be printed twice
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  int code = 125;
  try {
    code = body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "test child %d: exception: %s\n", static_cast<int>(::getpid()), e.what());
  } catch (...) {
    std::fprintf(stderr, "test child %d: unknown exception\n", static_cast<int>(::getpid()));
  }
  std::fflush(nullptr);
  ::_exit(code);
}

// Waits for child `pid` (retrying EINTR) and returns its wait status, or -1 if waitpid failed.
inline int wait_child(pid_t pid) {
  int status = 0;
  for (;;) {
    if (::waitpid(pid, &status, 0) == pid) return status;
    if (errno != EINTR) return -1;
  }
}

// A wait status in words: "exited with code 3", "killed by signal 9 (Killed)".
inline std::string describe_wait_status(int status) {
  if (status == -1) return "not waited for (waitpid failed)";
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" + ::strsignal(WTERMSIG(status)) + ")";
  return "wait status " + std::to_string(status);
}

// Everything readable from `fd` until EOF or an error (EINTR retried).
inline std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// How many mappings this process has (lines of /proc/self/maps): forks cost per mapping.
inline std::size_t mapping_count() {
  std::ifstream f("/proc/self/maps");
  std::string line;
  std::size_t n = 0;
  while (std::getline(f, line)) ++n;
  return n;
}

// The fixture base described at the top of this file.
class process_guard_test : public ::testing::Test {
 protected:
  void SetUp() override { before_ = leak_snapshot::take(); }

  void TearDown() override {
    const auto problems =
        leak_snapshot::leaks_since(before_, true, [this](const std::string& n) { return dev_shm_entry_counts(n); });
    for (const auto& p : problems) ADD_FAILURE() << "process_guard: " << p;
  }

  // Whether a new /dev/shm entry named `name` counts as a leak of this test (default: all do).
  virtual bool dev_shm_entry_counts(const std::string& name) const {
    (void)name;
    return true;
  }

  // The snapshot taken before the test (for tests that want to check earlier than TearDown).
  const leak_snapshot& snapshot_before() const noexcept { return before_; }

 private:
  leak_snapshot before_;
};

}  // namespace procsup::testing
