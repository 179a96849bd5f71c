// Helpers for black-box tests of the real `procsup` binary (tests/integration/test_program_*.cpp).
// Header-only; Linux only. Nothing here links procsup's own libraries: procsup is started with
// a plain fork/execve, so a launcher bug cannot hide itself.
//
//   procsup::testing::program_dir dir;                       // a fresh temp dir, removed at the end
//   auto cfg = dir.write("p.toml", config_text);
//   procsup::testing::procsup_process p({"--log-format", "json", "run", cfg});
//   auto ev = p.wait_event("[a] ready");                     // a JSON log line, or nullopt at the deadline
//   auto r = procsup::testing::ctl(dir.socket(), {"status", "--json"});
//   EXPECT_EQ(p.wait_exit(), 0);                             // bounded; SIGKILLs on the deadline
//
// procsup's stdout and stderr go into one pipe that a reader thread splits into lines, so a test
// waits for *events* (log lines) rather than sleeping. Every wait has a deadline (generous: the
// test machine is loaded and ASan builds are slow); nothing asserts on timing. The destructor
// SIGKILLs and reaps a procsup that is still running (a failed test leaves nothing behind).
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "helpers/process_guard.hpp"

#ifndef PROCSUP_BINARY
#error "PROCSUP_BINARY (the path of the procsup program) must be defined"
#endif
#ifndef PROCSUP_TEST_TARGET
#error "PROCSUP_TEST_TARGET (the path of procsup_test_target) must be defined"
#endif

namespace procsup::testing {

using json = nlohmann::json;
using namespace std::chrono_literals;

// How long any single awaited thing may take before the test fails (not a timing assert: on a
// quiet machine everything here happens within milliseconds).
inline constexpr std::chrono::seconds default_deadline{30};

inline const std::string procsup_binary = PROCSUP_BINARY;
inline const std::string test_target = PROCSUP_TEST_TARGET;

// A TOML basic string: "..." with escapes.
inline std::string toml_str(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// A TOML array of strings (an argv).
inline std::string toml_argv(const std::vector<std::string>& argv) {
  std::string out = "[";
  for (std::size_t i = 0; i < argv.size(); ++i) out += (i ? ", " : "") + toml_str(argv[i]);
  return out + "]";
}

// A unique word to put on the command lines of a test's children, so that /proc can tell which
// processes belong to this test (other tests may run in parallel under ctest -j).
inline std::string unique_tag(const char* what) {
  static std::atomic<int> counter{0};
  return std::string("procsup-test-") + what + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

// Process state letter from /proc/PID/stat ('\0' when the process does not exist).
inline char process_state(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!std::getline(f, s)) return '\0';
  const auto close = s.rfind(')');
  if (close == std::string::npos || close + 2 >= s.size()) return '\0';
  return s[close + 2];
}

// Alive = exists and is not a zombie (a zombie has died; whoever its parent is reaps it).
inline bool process_alive(pid_t pid) {
  const char st = process_state(pid);
  return st != '\0' && st != 'Z' && st != 'X';
}

// The /proc/PID/status line starting with `key` ("SigIgn:"), or "".
inline std::string status_line(pid_t pid, const std::string& key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return line;
  return "";
}

// The whole content of a file ("" if it cannot be read).
inline std::string read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out = read_all(fd);
  ::close(fd);
  return out;
}

// Live (non-zombie) processes whose command line contains `tag`.
inline std::vector<pid_t> live_processes_tagged(const std::string& tag) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string cmd = read_file(e.path() / "cmdline");
    if (cmd.find(tag) == std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    if (process_alive(pid)) out.push_back(pid);
  }
  return out;
}

// Waits up to `deadline` for process `pid` to exit, on its pidfd (readable once it has exited;
// works for processes that are not our children). 1: exited, 0: still running at the deadline,
// -1: no pidfd (errno says why: ESRCH when there is no such process).
inline int wait_pidfd(pid_t pid, std::chrono::milliseconds deadline) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return -1;
  pollfd p{fd, POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, static_cast<int>(deadline.count()));
  } while (r < 0 && errno == EINTR);
  ::close(fd);
  return r > 0 ? 1 : 0;
}

// Waits (bounded) until process `pid` has died. True if it is gone.
inline bool wait_process_gone(pid_t pid, std::chrono::milliseconds deadline = default_deadline) {
  const int r = wait_pidfd(pid, deadline);
  if (r < 0) return errno == ESRCH || !process_alive(pid);
  return r > 0 || !process_alive(pid);
}

// Waits (bounded) until no live process carries `tag`; returns the survivors.
inline std::vector<pid_t> wait_tagged_gone(const std::string& tag, std::chrono::milliseconds deadline = default_deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    auto left = live_processes_tagged(tag);
    if (left.empty()) return left;
    for (pid_t p : left) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= until) return live_processes_tagged(tag);
      wait_process_gone(p, std::chrono::duration_cast<std::chrono::milliseconds>(until - now));
    }
  }
}

// A temporary directory for one test's config, socket and scripts.
class program_dir {
 public:
  program_dir() {
    char tmpl[] = "/tmp/procsup-prog-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    if (d == nullptr) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    path_ = d;
  }
  ~program_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  program_dir(const program_dir&) = delete;
  program_dir& operator=(const program_dir&) = delete;

  const std::string& path() const { return path_; }
  std::string socket() const { return path_ + "/procsup.sock"; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

  std::string write(const std::string& name, const std::string& text, bool executable = false) const {
    const std::string p = file(name);
    std::ofstream(p) << text;
    if (executable) std::filesystem::permissions(p, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                                        std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                                                        std::filesystem::perms::others_exec);
    return p;
  }

  // A config with `[supervisor]` (socket in this dir + `supervisor_extra` lines) and `programs`
  // (raw TOML: the [[program]] tables).
  std::string write_config(const std::string& programs, const std::string& supervisor_extra = "",
                           const std::string& name = "procsup.toml") const {
    return write(name, "[supervisor]\nsocket = " + toml_str(socket()) + "\n" + supervisor_extra + "\n" + programs);
  }

 private:
  std::string path_;
};

namespace detail {

// fork + execve with stdout and stderr into `out_fd` (stdin /dev/null), every other fd closed,
// SIGKILL on the death of this thread (so a crashed test runner leaves no procsup behind).
// Everything the child needs is prepared before fork (the test process may have threads).
// With `uid`, the child runs as that uid (and gid) with no supplementary groups.
inline pid_t spawn(const std::vector<std::string>& argv, int out_fd, int err_fd, std::optional<uid_t> uid = std::nullopt) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_store;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string v = *e;
    if (v.rfind("NOTIFY_SOCKET=", 0) == 0 || v.rfind("WATCHDOG_", 0) == 0 || v.rfind("LISTEN_", 0) == 0) continue;
    env_store.push_back(v);
  }
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s = 1; s < NSIG; ++s) ::signal(s, SIG_DFL);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    if (uid && (::setgroups(0, nullptr) != 0 || ::setgid(*uid) != 0 || ::setuid(*uid) != 0)) ::_exit(125);
    if (::dup2(devnull, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) ::_exit(126);
    ::syscall(SYS_close_range, 3U, ~0U, 0U);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  if (devnull >= 0) ::close(devnull);
  return pid;
}

// Waits for our child `pid` to exit within `deadline`; on the deadline SIGKILLs it. Returns the
// wait status; *timed_out tells whether the deadline was hit.
inline int wait_child_bounded(pid_t pid, std::chrono::milliseconds deadline, bool* timed_out = nullptr) {
  if (timed_out != nullptr) *timed_out = false;
  if (wait_pidfd(pid, deadline) == 0) {
    if (timed_out != nullptr) *timed_out = true;
    ::kill(pid, SIGKILL);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

inline int exit_code_of(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

}  // namespace detail

struct cli_result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `procsup ARGS...` to completion (bounded) and captures stdout and stderr.
// With `uid`, procsup runs as that user.
inline cli_result run_procsup_cli(const std::vector<std::string>& args, std::chrono::milliseconds deadline = default_deadline,
                                  std::optional<uid_t> uid = std::nullopt) {
  int out[2];
  int err[2];
  cli_result r;
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return r;
  }
  std::vector<std::string> argv{procsup_binary};
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t pid = detail::spawn(argv, out[1], err[1], uid);
  ::close(out[1]);
  ::close(err[1]);
  // Read both pipes together until EOF on both (bounded by the child's lifetime).
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* bufs[2] = {&r.out, &r.err};
  int open_count = 2;
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (open_count > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    const int n = ::poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      const ssize_t k = ::read(fds[i].fd, buf, sizeof buf);
      if (k > 0) {
        bufs[i]->append(buf, static_cast<std::size_t>(k));
      } else if (k == 0 || errno != EINTR) {
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  ::close(out[0]);
  ::close(err[0]);
  bool timed_out = false;
  r.exit_code = detail::exit_code_of(detail::wait_child_bounded(pid, 5s, &timed_out));
  if (timed_out || open_count > 0) ADD_FAILURE() << "procsup " << args.at(0) << " did not finish in time";
  return r;
}

// `procsup ctl --socket SOCKET ARGS...`
inline cli_result ctl(const std::string& socket, const std::vector<std::string>& args) {
  std::vector<std::string> full{"ctl", "--socket", socket};
  full.insert(full.end(), args.begin(), args.end());
  return run_procsup_cli(full);
}

// `ctl status --json`: one object per instance, in config order; empty on failure (a test failure).
// (Exit code 3 only says that not every instance is running.)
inline std::vector<json> status_json(const std::string& socket) {
  const auto r = ctl(socket, {"status", "--json"});
  std::vector<json> out;
  if (r.exit_code != 0 && r.exit_code != 3) {
    ADD_FAILURE() << "ctl status --json failed (" << r.exit_code << "): " << r.err;
    return out;
  }
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      out.push_back(json::parse(line));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "ctl status --json printed a non-JSON line: " << line;
    }
  }
  return out;
}

// The status object of instance `id` ("name" or "name:i"), or a null json.
inline json status_of(const std::string& socket, const std::string& id) {
  for (auto& s : status_json(socket))
    if (s.value("id", "") == id) return s;
  ADD_FAILURE() << "no instance " << id << " in ctl status";
  return json();
}

// A running `procsup` (or `unshare ... procsup`) whose output is read line by line.
class procsup_process {
 public:
  // argv after the program name, e.g. {"--log-format", "json", "run", cfg}. `prefix` goes before
  // the procsup binary (e.g. {"/usr/bin/unshare", "-fp", "--mount-proc"}).
  explicit procsup_process(const std::vector<std::string>& args, const std::vector<std::string>& prefix = {}) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    std::vector<std::string> argv = prefix;
    argv.push_back(procsup_binary);
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = detail::spawn(argv, p[1], p[1]);
    ::close(p[1]);
    read_fd_ = p[0];
    reader_ = std::thread([this] { read_loop(); });
  }

  ~procsup_process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      detail::wait_child_bounded(pid_, 10s);
      pid_ = 0;
    }
    stop_reader();
  }
  procsup_process(const procsup_process&) = delete;
  procsup_process& operator=(const procsup_process&) = delete;

  pid_t pid() const { return pid_; }

  // Sends `sig` to the procsup process (or to unshare, with a prefix).
  void kill(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }

  // Waits (bounded) for procsup to exit; returns its exit code (128+N for a signal), -1 if it
  // had to be SIGKILLed at the deadline (also a test failure). Drains the output afterwards.
  int wait_exit(std::chrono::milliseconds deadline = default_deadline) {
    if (pid_ <= 0) return exit_code_;
    bool timed_out = false;
    const int status = detail::wait_child_bounded(pid_, deadline, &timed_out);
    pid_ = 0;
    exit_code_ = timed_out ? -1 : detail::exit_code_of(status);
    if (timed_out) ADD_FAILURE() << "procsup did not exit in time; output:\n" << output();
    // procsup is gone; its output pipe reaches EOF once no child holds it (bounded anyway).
    wait_eof(5s);
    return exit_code_;
  }

  // Every line so far.
  std::vector<std::string> lines() const {
    std::lock_guard lk(mu_);
    return lines_;
  }
  std::string output() const {
    std::string s;
    for (auto& l : lines()) s += l + "\n";
    return s;
  }

  // Waits for a line (index >= `from`) that satisfies `pred`; returns its index, or nullopt at the
  // deadline or EOF (a test failure is added then, with the output so far).
  std::optional<std::size_t> wait_line(const std::function<bool(const std::string&)>& pred, const std::string& what,
                                       std::size_t from = 0, std::chrono::milliseconds deadline = default_deadline) {
    std::unique_lock lk(mu_);
    const auto until = std::chrono::steady_clock::now() + deadline;
    std::size_t i = from;
    for (;;) {
      for (; i < lines_.size(); ++i)
        if (pred(lines_[i])) return i;
      if (eof_) break;
      if (cv_.wait_until(lk, until) == std::cv_status::timeout && lines_.size() == i) break;
    }
    std::string all;
    for (auto& l : lines_) all += l + "\n";
    lk.unlock();
    ADD_FAILURE() << "no log line " << what << (eof_ ? " (procsup's output ended)" : " within the deadline")
                  << "; output:\n"
                  << all;
    return std::nullopt;
  }

  // JSON log lines (--log-format json): waits for one whose "msg" equals `msg` and whose fields
  // contain every key/value of `fields`; returns it (with "_index" = its line index) or nullopt.
  std::optional<json> wait_event(const std::string& msg, const json& fields = json::object(), std::size_t from = 0,
                                 std::chrono::milliseconds deadline = default_deadline) {
    json found;
    auto idx = wait_line(
        [&](const std::string& line) {
          json j = parse(line);
          if (!j.is_object() || j.value("msg", "") != msg) return false;
          for (auto& [k, v] : fields.items())
            if (!j.contains(k) || j[k] != v) return false;
          found = std::move(j);
          return true;
        },
        "{\"msg\":\"" + msg + "\"" + (fields.empty() ? "" : ", " + fields.dump()) + "}", from, deadline);
    if (!idx) return std::nullopt;
    found["_index"] = *idx;
    return found;
  }

  // Every JSON log line so far whose msg equals `msg`.
  std::vector<json> events(const std::string& msg) const {
    std::vector<json> out;
    for (auto& l : lines()) {
      json j = parse(l);
      if (j.is_object() && j.value("msg", "") == msg) out.push_back(std::move(j));
    }
    return out;
  }

  static json parse(const std::string& line) {
    if (line.empty() || line.front() != '{') return json();
    try {
      return json::parse(line);
    } catch (...) {
      return json();
    }
  }

 private:
  void read_loop() {
    std::string partial;
    char buf[8192];
    for (;;) {
      pollfd fds[2] = {{read_fd_, POLLIN, 0}, {wake_, POLLIN, 0}};
      const int n = ::poll(fds, 2, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 || fds[1].revents != 0) break;
      const ssize_t k = ::read(read_fd_, buf, sizeof buf);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) break;
      partial.append(buf, static_cast<std::size_t>(k));
      std::vector<std::string> got;
      std::size_t start = 0;
      for (std::size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1)
        got.push_back(partial.substr(start, nl - start));
      partial.erase(0, start);
      if (!got.empty()) {
        std::lock_guard lk(mu_);
        for (auto& g : got) lines_.push_back(std::move(g));
        cv_.notify_all();
      }
    }
    std::lock_guard lk(mu_);
    if (!partial.empty()) lines_.push_back(partial);
    eof_ = true;
    cv_.notify_all();
  }

  void wait_eof(std::chrono::milliseconds deadline) {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, deadline, [this] { return eof_; });
  }

  void stop_reader() {
    if (reader_.joinable()) {
      const std::uint64_t one = 1;
      if (::write(wake_, &one, sizeof one) < 0) {
      }
      reader_.join();
    }
    if (read_fd_ >= 0) ::close(read_fd_);
    if (wake_ >= 0) ::close(wake_);
    read_fd_ = wake_ = -1;
  }

  pid_t pid_ = 0;
  int exit_code_ = -1;
  int read_fd_ = -1;
  int wake_ = -1;
  std::thread reader_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  bool eof_ = false;
};

// The fixture for program tests: the process guard (no child, fd or /dev/shm entry left behind)
// plus a temp dir.
class program_test : public process_guard_test {
 protected:
  program_dir dir_;
};

}  // namespace procsup::testing
