// Black-box: the real procsup against control-socket clients that are hostile or broken (issue
// 14): pipelined requests that are never read, a peer that half-closes and never reads, idle
// connections that hold every slot, one uid holding many. In each, procsup's memory (VmHWM
// against VmRSS at the start) stays within 64 MiB, its CPU time under 10 % while the abuse lasts
// (until procsup closes the abusing connection), and a concurrent status request is answered
// within 1 s (5 s under ASan).
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>

#include "helpers/program_harness.hpp"

namespace {

using namespace procsup::testing;

#if defined(__SANITIZE_ADDRESS__)
constexpr int k_slow = 5;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr int k_slow = 5;
#else
constexpr int k_slow = 1;
#endif
#else
constexpr int k_slow = 1;
#endif

constexpr long k_rss_slack_kib = 64 * 1024;
constexpr double k_cpu_share = 0.10;
const std::chrono::milliseconds k_status_bound{1000 * k_slow};
// procsup's idle timeout (10 s) plus generous slack for a loaded machine.
const std::chrono::milliseconds k_idle_close_deadline{40'000};

// procsup's resident memory now and at its peak (KiB), and its CPU time (utime + stime) so far.
struct usage {
  long rss_kib = -1;
  long hwm_kib = -1;
  double cpu_s = -1;
};

long status_kib(pid_t pid, const std::string& key) {
  const std::string line = status_line(pid, key);
  return line.empty() ? -1 : std::atol(line.c_str() + key.size());
}

usage usage_of(pid_t pid) {
  usage u;
  u.rss_kib = status_kib(pid, "VmRSS:");
  u.hwm_kib = status_kib(pid, "VmHWM:");
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return u;
  std::istringstream in(stat.substr(close + 2));
  std::vector<std::string> f;
  for (std::string w; in >> w;) f.push_back(w);
  if (f.size() < 13) return u;  // f[0] is field 3 (state): utime is field 14, stime 15
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  u.cpu_s = (std::stod(f[11]) + std::stod(f[12])) / tick;
  return u;
}

// From the start of an abuse to its end: procsup's memory and CPU share over that time.
class abuse_window {
 public:
  explicit abuse_window(pid_t pid) : pid_(pid), start_(usage_of(pid)), t0_(std::chrono::steady_clock::now()) {}
  void check(const std::string& what) const {
    const usage end = usage_of(pid_);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    ASSERT_GT(start_.rss_kib, 0);
    ASSERT_GT(end.hwm_kib, 0);
    ASSERT_GE(start_.cpu_s, 0);
    ASSERT_GE(end.cpu_s, start_.cpu_s);
    EXPECT_LT(end.hwm_kib - start_.rss_kib, k_rss_slack_kib)
        << what << ": peak RSS " << end.hwm_kib << " KiB, " << start_.rss_kib << " KiB at the start";
    EXPECT_LT((end.cpu_s - start_.cpu_s) / wall, k_cpu_share)
        << what << ": " << end.cpu_s - start_.cpu_s << " s of CPU in " << wall << " s";
    std::cout << "[ measured ] " << what << ": peak RSS +" << (end.hwm_kib - start_.rss_kib) << " KiB (RSS "
              << start_.rss_kib << " KiB at the start), CPU " << (end.cpu_s - start_.cpu_s) << " s (" << start_.cpu_s
              << " s at the start) in " << wall << " s\n";
  }

 private:
  pid_t pid_;
  usage start_;
  std::chrono::steady_clock::time_point t0_;
};

// A raw client connection (10 s send / receive timeouts: a failure is a timeout, not a hang).
class raw_client {
 public:
  explicit raw_client(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval ten{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &ten, sizeof ten);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &ten, sizeof ten);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
      ADD_FAILURE() << "connect " << path << ": " << std::strerror(errno);
  }
  ~raw_client() {
    if (fd_ >= 0) ::close(fd_);
  }
  raw_client(const raw_client&) = delete;
  raw_client& operator=(const raw_client&) = delete;
  int fd() const { return fd_; }

  bool send_all(const std::string& bytes) {
    std::size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }
  // One line (without '\n'); "" on EOF or timeout.
  std::string read_line() {
    std::string line;
    char ch;
    while (::recv(fd_, &ch, 1, 0) == 1) {
      if (ch == '\n') return line;
      line += ch;
    }
    return line;
  }
  std::string read_to_eof() {
    std::string out;
    char buf[65536];
    ssize_t n;
    while ((n = ::recv(fd_, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<std::size_t>(n));
    return out;
  }
  // Sends pipelined copies of `line`, never reading, until procsup stops taking them (the socket
  // stays full for 1 s) or `max_bytes` are out. Returns the bytes sent.
  std::size_t flood(const std::string& line, std::size_t max_bytes) {
    std::string block;
    while (block.size() < 65536) block += line;
    std::size_t sent = 0;
    while (sent < max_bytes) {
      const std::size_t off = sent % block.size();
      const ssize_t n =
          ::send(fd_, block.data() + off, std::min(block.size() - off, max_bytes - sent), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN) break;
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, 1000) <= 0) break;  // procsup no longer reads: back-pressure
    }
    return sent;
  }
  // Waits (bounded) until procsup has closed this connection (POLLHUP), whatever is unread.
  bool wait_closed(std::chrono::milliseconds deadline) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{fd_, POLLRDHUP, 0};
      if (::poll(&p, 1, 200) > 0 && (p.revents & POLLHUP) != 0) return true;
    }
    return false;
  }

 private:
  int fd_ = -1;
};

// One status request on a fresh connection: its reply, and how long it took.
std::pair<json, std::chrono::milliseconds> timed_status(const std::string& path) {
  const auto t0 = std::chrono::steady_clock::now();
  raw_client c(path);
  c.send_all("{\"cmd\":\"status\"}\n");
  const std::string line = c.read_line();
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  return {procsup_process::parse(line), took};
}

// While procsup is abused: status requests are answered, in time, and `ctl status` works.
void expect_status_served(const std::string& path, const std::string& what) {
  for (int i = 0; i < 5; ++i) {
    const auto [reply, took] = timed_status(path);
    EXPECT_TRUE(reply.is_object() && reply.value("ok", false)) << what << ": " << reply.dump();
    EXPECT_LT(took, k_status_bound) << what << ": status took " << took.count() << " ms";
  }
  const auto r = ctl(path, {"status"});
  EXPECT_EQ(r.exit_code, 0) << what << ": " << r.err;
}

class program_control_abuse : public program_test {
 protected:
  // procsup with `programs` [[program]] tables, started and ready.
  std::unique_ptr<procsup_process> start(const std::string& programs) {
    const auto cfg = dir_.write_config(programs);
    auto p = std::make_unique<procsup_process>(std::vector<std::string>{"--log-format", "json", "run", cfg});
    EXPECT_TRUE(p->wait_event("ready"));
    return p;
  }
  void stop(procsup_process& p) {
    p.kill(SIGTERM);
    EXPECT_EQ(p.wait_exit(), 0) << p.output();
  }
  std::string sleeper(const std::string& name, const std::string& tag) const {
    return "[[program]]\nname = " + toml_str(name) + "\ncommand = " + toml_argv({test_target, "print-pid-then-sleep", tag}) +
           "\n";
  }
};

TEST_F(program_control_abuse, pipelined_logs_requests_never_read_leave_memory_cpu_and_status_alone) {
  const auto tag = unique_tag("logs");
  // "x" fills its tail with 1,000 lines of 200 bytes: each `logs x -n 1000` reply is ~230 KB.
  const std::string line(200, 'l');
  auto p = start("[[program]]\nname = \"x\"\ncommand = " +
                 toml_argv({"/bin/sh", "-c", "yes " + line + " | head -n 1000; exec " + test_target + " print-pid-then-sleep " + tag}) +
                 "\n");
  ASSERT_TRUE(p->wait_event("[x] ready"));
  // The tail is full once `logs` says so (bounded).
  const auto until = std::chrono::steady_clock::now() + default_deadline;
  std::size_t have = 0;
  while (have < 1000 && std::chrono::steady_clock::now() < until) {
    raw_client c(dir_.socket());
    c.send_all("{\"cmd\":\"logs\",\"name\":\"x\",\"lines\":1000}\n");
    have = procsup_process::parse(c.read_line()).value("lines", json::array()).size();
    if (have < 1000) ::poll(nullptr, 0, 50);
  }
  ASSERT_EQ(have, 1000U);

  abuse_window window(p->pid());
  raw_client abuser(dir_.socket());
  const std::size_t sent = abuser.flood("{\"cmd\":\"logs\",\"name\":\"x\",\"lines\":1000}\n", 1 << 20);
  // procsup stopped reading long before 1 MiB (~26,000 requests, ~6 GB of replies) was in.
  EXPECT_LT(sent, std::size_t{1} << 20);
  std::cout << "[ measured ] procsup took " << sent << " bytes of requests before it stopped reading\n";
  expect_status_served(dir_.socket(), "logs flood");
  EXPECT_TRUE(abuser.wait_closed(k_idle_close_deadline)) << "the abusing connection stayed open";
  window.check("1 MiB of pipelined logs -n 1000, never read");
  expect_status_served(dir_.socket(), "after the logs flood");
  stop(*p);
}

TEST_F(program_control_abuse, pipelined_status_requests_never_read_leave_memory_cpu_and_status_alone) {
  const auto tag = unique_tag("status");
  auto p = start(sleeper("a", tag) + sleeper("b", tag));
  abuse_window window(p->pid());
  raw_client abuser(dir_.socket());
  const std::size_t sent = abuser.flood("{\"cmd\":\"status\"}\n", 1 << 20);
  EXPECT_LT(sent, std::size_t{1} << 20);
  std::cout << "[ measured ] procsup took " << sent << " bytes of requests before it stopped reading\n";
  expect_status_served(dir_.socket(), "status flood");
  EXPECT_TRUE(abuser.wait_closed(k_idle_close_deadline)) << "the abusing connection stayed open";
  window.check("1 MiB of pipelined status, never read");
  stop(*p);
}

TEST_F(program_control_abuse, a_peer_that_sends_2000_requests_half_closes_and_never_reads_does_not_spin) {
  const auto tag = unique_tag("halfclose");
  std::string programs;
  for (int i = 0; i < 8; ++i) programs += sleeper("p" + std::to_string(i), tag);  // status replies of ~1.5 KB
  auto p = start(programs);
  abuse_window window(p->pid());
  raw_client abuser(dir_.socket());
  std::string requests;
  for (int i = 0; i < 2000; ++i) requests += "{\"cmd\":\"status\"}\n";
  ASSERT_TRUE(abuser.send_all(requests));
  ASSERT_EQ(::shutdown(abuser.fd(), SHUT_WR), 0);
  expect_status_served(dir_.socket(), "half-closed peer");
  EXPECT_TRUE(abuser.wait_closed(k_idle_close_deadline)) << "the half-closed connection stayed open";
  window.check("2,000 requests, half-closed, never read");
  stop(*p);
}

TEST_F(program_control_abuse, idle_connections_in_every_slot_are_closed_by_the_idle_timeout) {
  const auto tag = unique_tag("idle");
  // "talker" prints a line only when it gets SIGHUP: a `logs -f` follower of it that reads has
  // nothing to read meanwhile, and must outlive the idle timeout.
  auto p = start(sleeper("a", tag) + "[[program]]\nname = \"talker\"\ncommand = " +
                 toml_argv({"/bin/sh", "-c", "trap 'echo hup' HUP; while :; do sleep 0.2; done", tag}) + "\n");
  ASSERT_TRUE(p->wait_event("[talker] ready"));
  raw_client follower(dir_.socket());
  follower.send_all("{\"cmd\":\"logs\",\"name\":\"talker\",\"lines\":0,\"follow\":true}\n");
  EXPECT_EQ(procsup_process::parse(follower.read_line()).value("follow", false), true);
  abuse_window window(p->pid());
  std::vector<std::unique_ptr<raw_client>> idle;
  for (int i = 0; i < 63; ++i) idle.push_back(std::make_unique<raw_client>(dir_.socket()));
  // With the follower, 64 connections fill the table; root (these tests run as root) still has
  // its reserve.
  expect_status_served(dir_.socket(), "63 idle connections and a follower");
  // Then root's reserve fills up: connections that are answered stay open (idle from their
  // request on), until one is refused. (About 8: a status connection just served may not have
  // been closed by procsup yet. The exact accounting: test_daemon_control.)
  std::string refusal;
  while (idle.size() < 80 && refusal.empty()) {
    auto c = std::make_unique<raw_client>(dir_.socket());
    c->send_all("{\"cmd\":\"status\"}\n");
    const json reply = procsup_process::parse(c->read_line());
    if (reply.value("ok", false)) idle.push_back(std::move(c));
    else refusal = reply.value("error", reply.dump());
  }
  EXPECT_EQ(refusal, "too many control connections: try again later");
  EXPECT_GE(idle.size(), 69U);
  EXPECT_LE(idle.size(), 71U);
  const auto blocked = ctl(dir_.socket(), {"status"});
  EXPECT_NE(blocked.exit_code, 0);
  EXPECT_NE(blocked.err.find("too many control connections"), std::string::npos) << blocked.err;
  // Each idle connection is told why and closed, after 10 s without a request.
  for (auto& c : idle) {
    ASSERT_TRUE(c->wait_closed(k_idle_close_deadline));
    EXPECT_EQ(c->read_to_eof(), "{\"error\":\"closed: no request for 10000 ms\",\"ok\":false}\n");
  }
  window.check("72 idle connections");
  // The follower, silent for as long, is still there and gets the next line.
  const auto hup = ctl(dir_.socket(), {"signal", "talker", "HUP"});
  EXPECT_EQ(hup.exit_code, 0) << hup.err;
  // (The shell also reports its sleep, which the HUP to the group kills: "Hangup" on stderr.)
  std::vector<std::string> got;
  for (int i = 0; i < 4 && std::find(got.begin(), got.end(), "hup") == got.end(); ++i)
    got.push_back(procsup_process::parse(follower.read_line()).value("line", ""));
  EXPECT_NE(std::find(got.begin(), got.end(), "hup"), got.end()) << "the follower was closed";
  expect_status_served(dir_.socket(), "after the idle connections");
  stop(*p);
}

// One uid other than root holds at most 48 of the 64 slots; root is served meanwhile. procsup
// runs as nobody here, so that both nobody and root may connect (the socket is nobody's, 0600).
TEST_F(program_control_abuse, one_uid_cannot_hold_every_slot_and_root_is_served_meanwhile) {
  constexpr uid_t nobody = 65534;
  ASSERT_EQ(::geteuid(), 0U) << "needs root (to run procsup and a client as nobody)";
  ASSERT_EQ(::chown(dir_.path().c_str(), nobody, nobody), 0) << std::strerror(errno);
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  const auto tag = unique_tag("peruid");
  const auto cfg = dir_.write_config(sleeper("a", tag));
  procsup_process p({"--log-format", "json", "run", cfg},
                    {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
  ASSERT_TRUE(p.wait_event("ready"));

  // A client as nobody opens 49 connections, sends a status request on each and reports each
  // first reply line; it holds them until `hold` is closed. Only async-signal-safe calls after
  // fork (this process has threads).
  int report[2];
  int hold[2];
  ASSERT_EQ(::pipe2(report, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(hold, O_CLOEXEC), 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, dir_.socket().c_str(), sizeof addr.sun_path - 1);
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(report[0]);
    ::close(hold[1]);
    if (::setgroups(0, nullptr) != 0 || ::setgid(nobody) != 0 || ::setuid(nobody) != 0) ::_exit(2);
    int fds[49];
    for (int i = 0; i < 49; ++i) {
      fds[i] = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      timeval ten{10, 0};
      ::setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &ten, sizeof ten);
      if (::connect(fds[i], reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) ::_exit(3);
      (void)!::send(fds[i], "{\"cmd\":\"status\"}\n", 17, MSG_NOSIGNAL);
      char ch;
      while (::recv(fds[i], &ch, 1, 0) == 1) {
        if (::write(report[1], &ch, 1) != 1) ::_exit(4);
        if (ch == '\n') break;
      }
    }
    if (::write(report[1], "done\n", 5) != 5) ::_exit(4);
    char ch;
    while (::read(hold[0], &ch, 1) > 0) {
    }
    ::_exit(0);
  }
  ASSERT_GT(child, 0);
  ::close(report[1]);
  ::close(hold[0]);
  std::string lines;
  {
    pollfd pf{report[0], POLLIN, 0};
    const auto until = std::chrono::steady_clock::now() + default_deadline;
    while (lines.find("done\n") == std::string::npos && std::chrono::steady_clock::now() < until) {
      if (::poll(&pf, 1, 200) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(report[0], buf, sizeof buf);
      if (n <= 0) break;
      lines.append(buf, static_cast<std::size_t>(n));
    }
  }
  std::vector<json> replies;
  std::istringstream in(lines);
  for (std::string l; std::getline(in, l) && l != "done";) replies.push_back(procsup_process::parse(l));
  ASSERT_EQ(replies.size(), 49U) << lines;
  for (int i = 0; i < 48; ++i) EXPECT_TRUE(replies[i].value("ok", false)) << "connection " << i << ": " << replies[i].dump();
  EXPECT_EQ(replies[48].value("error", ""), "too many control connections of uid 65534 (48): try again later");
  // nobody holds 48 connections; root gets in.
  expect_status_served(dir_.socket(), "uid 65534 holding 48 connections");
  ::close(hold[1]);
  ::close(report[0]);
  EXPECT_EQ(detail::exit_code_of(detail::wait_child_bounded(child, 10s)), 0);
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

}  // namespace
