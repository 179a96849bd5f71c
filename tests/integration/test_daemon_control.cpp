// The control socket over a real Unix socket: round trips with a fake handler driven by a small
// epoll loop (as the daemon's loop will drive it), permissions, peer credentials, stale sockets,
// the client's errors, and the human status table.
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "helpers/process_guard.hpp"
#include "procsup/daemon/control.hpp"
#include "procsup/daemon/logging.hpp"
#include "procsup/supervisor/launcher.hpp"

namespace {

namespace pd = procsup::daemon;
using nlohmann::json;

// A temporary directory (0755, so another uid can reach a socket inside when the test allows it).
struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/procsup-control-XXXXXX";
    path = ::mkdtemp(tmpl);
    ::chmod(path.c_str(), 0755);
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
};

// The control server driven by an epoll loop on its own thread, the way the daemon drives it
// (the fd hooks, and one-shot timers from epoll_wait's timeout). Every call into the server
// happens on that thread. `wakeups` counts the loop's turns (a busy loop shows there).
class served_control {
 public:
  served_control(const std::string& path, pd::control_server::handler h, pd::control_limits limits = {}) {
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    stop_ = ::eventfd(0, EFD_CLOEXEC);
    add(stop_, EPOLLIN);
    pd::control_fd_hooks hooks;
    hooks.added = [this](int fd) { add(fd, EPOLLIN); };
    hooks.interest = [this](int fd, bool readable, bool writable) {
      epoll_event ev{};
      ev.events = (readable ? EPOLLIN : 0U) | (writable ? EPOLLOUT : 0U);
      ev.data.fd = fd;
      ::epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &ev);
    };
    hooks.removed = [this](int fd) { ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr); };
    hooks.add_timer = [this](std::chrono::milliseconds after, std::function<void()> fn) {
      timers_[++next_timer_] = {std::chrono::steady_clock::now() + after, std::move(fn)};
      ++timers_armed_;
      timers_pending_ = timers_.size();
      return next_timer_;
    };
    hooks.cancel_timer = [this](std::uint64_t id) {
      timers_.erase(id);
      timers_pending_ = timers_.size();
    };
    auto r = pd::control_server::open(path, std::move(h), hooks, limits);
    if (auto* err = std::get_if<pd::control_error>(&r)) {
      ADD_FAILURE() << err->message;
      return;
    }
    server_ = std::move(std::get<std::unique_ptr<pd::control_server>>(r));
    add(server_->listen_fd(), EPOLLIN);
    thread_ = std::thread([this] { loop(); });
  }
  ~served_control() {
    const std::uint64_t one = 1;
    (void)!::write(stop_, &one, sizeof one);
    if (thread_.joinable()) thread_.join();
    server_.reset();
    ::close(stop_);
    ::close(epoll_);
  }
  bool ok() const { return server_ != nullptr; }
  pd::control_server& server() { return *server_; }  // from the loop thread (a handler) only
  std::uint64_t wakeups() const { return wakeups_.load(); }
  std::size_t timers_pending() const { return timers_pending_.load(); }
  std::size_t timers_armed() const { return timers_armed_.load(); }

 private:
  void add(int fd, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
  }
  void loop() {
    epoll_event events[16];
    for (;;) {
      int timeout = -1;
      const auto now = std::chrono::steady_clock::now();
      for (const auto& [id, t] : timers_) {
        const auto ms = std::chrono::ceil<std::chrono::milliseconds>(t.first - now).count();
        timeout = timeout < 0 ? static_cast<int>(std::max<long long>(ms, 0)) : std::min(timeout, static_cast<int>(std::max<long long>(ms, 0)));
      }
      const int n = ::epoll_wait(epoll_, events, 16, timeout);
      ++wakeups_;
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == stop_) return;
        server_->on_event(fd, events[i].events);
      }
      const auto after = std::chrono::steady_clock::now();
      for (auto it = timers_.begin(); it != timers_.end();) {
        if (it->second.first > after) {
          ++it;
          continue;
        }
        auto fn = std::move(it->second.second);
        timers_.erase(it);
        timers_pending_ = timers_.size();  // before fn: what it does may be seen at once
        fn();
        it = timers_.begin();  // fn may have added or cancelled timers
      }
    }
  }

  int epoll_ = -1;
  int stop_ = -1;
  std::unique_ptr<pd::control_server> server_;
  std::map<std::uint64_t, std::pair<std::chrono::steady_clock::time_point, std::function<void()>>> timers_;
  std::uint64_t next_timer_ = 0;
  std::atomic<std::uint64_t> wakeups_{0};
  std::atomic<std::size_t> timers_pending_{0};
  std::atomic<std::size_t> timers_armed_{0};
  std::thread thread_;
};

json echo_handler(const json& request) {
  if (request["cmd"] == "boom") throw std::runtime_error("handler failed: boom");
  return {{"ok", true}, {"echo", request}};
}

class daemon_control : public procsup::testing::process_guard_test {};

TEST_F(daemon_control, request_and_reply_round_trip_over_a_real_socket) {
  temp_dir dir;
  const std::string path = dir.path + "/procsup.sock";
  {
    served_control server(path, echo_handler);
    ASSERT_TRUE(server.ok());
    const json request = {{"cmd", "signal"}, {"name", "api"}, {"signal", "HUP"}};
    const auto r = pd::control_request(path, request);
    ASSERT_TRUE(std::holds_alternative<json>(r)) << std::get<pd::control_error>(r).message;
    EXPECT_EQ(std::get<json>(r), (json{{"ok", true}, {"echo", request}}));

    const auto failed = pd::control_request(path, {{"cmd", "boom"}});
    ASSERT_TRUE(std::holds_alternative<json>(failed));
    EXPECT_EQ(std::get<json>(failed), (json{{"ok", false}, {"error", "handler failed: boom"}}));
  }
  struct stat st {};
  EXPECT_NE(::lstat(path.c_str(), &st), 0) << "the socket file outlived the server";
}

// Raw client: send `bytes`, half-close, read everything the server answers.
std::string raw_exchange(const std::string& path, const std::string& bytes) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return std::string("connect: ") + std::strerror(errno);
  }
  (void)!::write(fd, bytes.data(), bytes.size());
  ::shutdown(fd, SHUT_WR);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

// Out of fds, a waiting client is accepted on the server's spare fd, told why and hung up on
// (before, it was left waiting while a level-triggered loop spun on the readable listen socket);
// once fds are free again the server serves as before.
TEST_F(daemon_control, out_of_fds_clients_are_served_from_the_reserve_then_told_so_and_service_resumes) {
  temp_dir dir;
  const std::string path = dir.path + "/procsup.sock";
  served_control server(path, echo_handler);
  ASSERT_TRUE(server.ok());
  // Made while fds are free: 4 for the reserve, 1 more to be refused.
  std::vector<int> clients;
  for (int i = 0; i < 5; ++i) {
    const int c = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(c, 0);
    timeval five{5, 0};  // a failure is a timeout, not a hang
    ASSERT_EQ(::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &five, sizeof five), 0);
    clients.push_back(c);
  }

  // The refusal is logged. UBSan's vptr check probes memory through a pipe: out of fds it
  // reports a false "invalid vptr" for a type not in its cache yet, so the logging path runs
  // once before the fds run out (into a quiet logger).
  const auto previous_logger = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("quiet", std::make_shared<spdlog::sinks::null_sink_mt>()));
  procsup::daemon::log_event(spdlog::level::warn, "warm-up", {{"connections", 0}});

  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(clients.back()) + 16;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  std::vector<int> ballast;  // every number below the limit taken
  for (int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC); fd >= 0; fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC))
    ballast.push_back(fd);
  EXPECT_EQ(errno, EMFILE);

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  auto read_line = [](int fd) {
    std::string line;
    char ch;
    while (::read(fd, &ch, 1) == 1) {
      line += ch;
      if (ch == '\n') break;
    }
    return line;
  };
  // The first four are served as usual (an operator's `ctl status` while procsup is out of fds).
  std::vector<std::string> served;
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(::connect(clients[i], reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
    const std::string req = "{\"cmd\":\"status\"}\n";
    ASSERT_EQ(::write(clients[i], req.data(), req.size()), static_cast<ssize_t>(req.size()));
    served.push_back(read_line(clients[i]));
  }
  // The reserve is held by those four: the fifth is told why and hung up on.
  ASSERT_EQ(::connect(clients[4], reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  std::string reply;
  char buf[512];
  ssize_t n;
  while ((n = ::read(clients[4], buf, sizeof buf)) > 0) reply.append(buf, static_cast<std::size_t>(n));
  const int read_errno = errno;
  for (int c : clients) ::close(c);
  for (int fd : ballast) ::close(fd);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  spdlog::set_default_logger(previous_logger);

  for (const auto& line : served) EXPECT_EQ(line, "{\"echo\":{\"cmd\":\"status\"},\"ok\":true}\n");
  EXPECT_EQ(n, 0) << "no EOF: " << std::strerror(read_errno);
  EXPECT_EQ(reply, "{\"error\":\"procsup is out of file descriptors (EMFILE): try again later\",\"ok\":false}\n");
  EXPECT_EQ(raw_exchange(path, "{\"cmd\":\"status\"}\n"), "{\"echo\":{\"cmd\":\"status\"},\"ok\":true}\n");
}

TEST_F(daemon_control, pipelined_lines_each_get_a_reply_in_order_and_garbage_an_error) {
  temp_dir dir;
  const std::string path = dir.path + "/procsup.sock";
  served_control server(path, echo_handler);
  ASSERT_TRUE(server.ok());
  const std::string out = raw_exchange(path, "{\"cmd\":\"status\"}\n\nnot json\n[1,2]\n{\"cmd\":\"stop\",\"name\":\"a\"}\n");
  EXPECT_EQ(out,
            "{\"echo\":{\"cmd\":\"status\"},\"ok\":true}\n"
            "{\"error\":\"bad request: not JSON\",\"ok\":false}\n"
            "{\"error\":\"bad request: expected an object with a \\\"cmd\\\" string\",\"ok\":false}\n"
            "{\"echo\":{\"cmd\":\"stop\",\"name\":\"a\"},\"ok\":true}\n");
}

TEST_F(daemon_control, a_big_reply_is_delivered_whole) {
  temp_dir dir;
  const std::string path = dir.path + "/procsup.sock";
  const std::string big(4 << 20, 'x');  // larger than the socket buffer: needs EPOLLOUT
  served_control server(path, [&](const json&) { return json{{"ok", true}, {"data", big}}; });
  ASSERT_TRUE(server.ok());
  const auto r = pd::control_request(path, {{"cmd", "logs"}});
  ASSERT_TRUE(std::holds_alternative<json>(r));
  EXPECT_EQ(std::get<json>(r)["data"].get<std::string>().size(), big.size());
}

TEST_F(daemon_control, the_socket_is_owner_only) {
  temp_dir dir;
  const std::string path = dir.path + "/procsup.sock";
  served_control server(path, echo_handler);
  ASSERT_TRUE(server.ok());
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600U);
  EXPECT_EQ(st.st_uid, ::geteuid());
}

// Runs `body` as uid/gid 65534 (nobody) in a forked child; returns its exit code.
int as_nobody(const std::function<int()>& body) {
  procsup::child_setup setup;
  setup.uid = 65534;
  setup.gid = 65534;
  const auto r = procsup::launch_fork(setup, body);
  if (!std::holds_alternative<pid_t>(r)) return -1;
  int status = 0;
  while (::waitpid(std::get<pid_t>(r), &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

TEST_F(daemon_control, another_uid_is_refused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become another uid";
  temp_dir dir;
  const std::string path = dir.path + "/procsup.sock";
  served_control server(path, echo_handler);
  ASSERT_TRUE(server.ok());

  // Layer 1: the 0600 socket file keeps other users from connecting at all.
  EXPECT_EQ(as_nobody([&] {
              const auto r = pd::control_request(path, {{"cmd", "status"}});
              const auto* err = std::get_if<pd::control_error>(&r);
              return err != nullptr && err->error == EACCES ? 0 : 1;
            }),
            0);

  // Layer 2: even when the file permits it, SO_PEERCRED refuses them.
  ASSERT_EQ(::chmod(path.c_str(), 0666), 0);
  std::string reply_text;
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  const int code = [&] {
    procsup::child_setup setup;
    setup.uid = 65534;
    setup.gid = 65534;
    setup.fds = {{pipe_fds[1], 3}};
    const auto r = procsup::launch_fork(setup, [&] {
      const auto reply = pd::control_request(path, {{"cmd", "shutdown"}});
      const std::string text = std::holds_alternative<json>(reply) ? std::get<json>(reply).dump()
                                                                    : std::get<pd::control_error>(reply).message;
      return ::write(3, text.data(), text.size()) == static_cast<ssize_t>(text.size()) ? 0 : 1;
    });
    ::close(pipe_fds[1]);
    if (!std::holds_alternative<pid_t>(r)) return -1;
    char buf[512];
    ssize_t n;
    while ((n = ::read(pipe_fds[0], buf, sizeof buf)) > 0) reply_text.append(buf, static_cast<std::size_t>(n));
    ::close(pipe_fds[0]);
    int status = 0;
    ::waitpid(std::get<pid_t>(r), &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
  }();
  EXPECT_EQ(code, 0);
  EXPECT_EQ(reply_text, "{\"error\":\"permission denied: uid 65534\",\"ok\":false}");

  // Root (the owner here) is still served.
  EXPECT_TRUE(std::holds_alternative<json>(pd::control_request(path, {{"cmd", "status"}})));
}

TEST_F(daemon_control, a_missing_socket_gives_a_clear_error_naming_the_path) {
  const auto r = pd::control_request("/tmp/procsup-no-such-dir/procsup.sock", {{"cmd", "status"}});
  ASSERT_TRUE(std::holds_alternative<pd::control_error>(r));
  EXPECT_EQ(std::get<pd::control_error>(r).message,
            "cannot connect to /tmp/procsup-no-such-dir/procsup.sock: No such file or directory \u2014 is procsup "
            "running?");
}

TEST_F(daemon_control, a_stale_socket_is_replaced_and_a_live_one_is_not) {
  temp_dir dir;
  const std::string path = dir.path + "/procsup.sock";
  {  // leave a stale socket file behind: bound, then closed without unlink
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);
  }
  served_control first(path, echo_handler);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(std::holds_alternative<json>(pd::control_request(path, {{"cmd", "status"}})));

  const auto second = pd::control_server::open(path, echo_handler);
  ASSERT_TRUE(std::holds_alternative<pd::control_error>(second));
  EXPECT_EQ(std::get<pd::control_error>(second).error, EADDRINUSE);
  EXPECT_NE(std::get<pd::control_error>(second).message.find(path), std::string::npos);

  const std::string file = dir.path + "/plain-file";
  { std::ofstream(file) << "x"; }
  const auto third = pd::control_server::open(file, echo_handler);
  ASSERT_TRUE(std::holds_alternative<pd::control_error>(third));
  EXPECT_EQ(std::get<pd::control_error>(third).error, EEXIST);
}

// ---- abuse: back-pressure, half-closed peers, idle connections, connection caps (issue 14)

// A connected client socket (SO_RCVTIMEO / SO_SNDTIMEO 10 s: a failure is a timeout, not a hang).
int connect_client(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval ten{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &ten, sizeof ten);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &ten, sizeof ten);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ADD_FAILURE() << "connect: " << std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads one line (blocking, bounded by SO_RCVTIMEO); "" on EOF / timeout.
std::string read_line(int fd) {
  std::string line;
  char ch;
  while (::recv(fd, &ch, 1, 0) == 1) {
    if (ch == '\n') return line;
    line += ch;
  }
  return line;
}

// Everything until EOF (bounded by SO_RCVTIMEO per read).
std::string read_to_eof(int fd) {
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

// Waits (bounded) until the server has closed fd's connection: POLLHUP (the peer's close makes
// both directions shut down), whatever is still unread.
bool wait_closed_by_server(int fd, int deadline_ms = 10'000) {
  pollfd p{fd, POLLRDHUP, 0};
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
  while (std::chrono::steady_clock::now() < until) {
    p.revents = 0;
    const int n = ::poll(&p, 1, 100);
    if (n > 0 && (p.revents & POLLHUP) != 0) return true;
  }
  return false;
}

// Sends pipelined copies of `line` without ever reading, until the server stops taking them
// (the socket stays full for `quiet_ms`) or `max_bytes` are out. Returns the whole lines sent.
std::size_t flood(int fd, const std::string& line, std::size_t max_bytes, int quiet_ms = 500) {
  std::string block;
  while (block.size() < 65536) block += line;
  std::size_t sent = 0;
  while (sent < max_bytes) {
    const std::size_t off = sent % block.size();
    const ssize_t n = ::send(fd, block.data() + off, std::min(block.size() - off, max_bytes - sent),
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) break;
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, quiet_ms) <= 0) break;  // the server no longer reads: back-pressure
  }
  return sent / line.size();
}

TEST_F(daemon_control, a_peer_that_never_reads_stops_being_read_and_gets_every_reply_once_it_does) {
  temp_dir dir;
  const std::string path = dir.path + "/procsup.sock";
  std::atomic<std::size_t> answered{0};
  const std::string payload(8192, 'x');
  pd::control_limits limits;
  limits.pause_output = 64 << 10;
  served_control server(path, [&](const json&) {
    ++answered;
    return json{{"ok", true}, {"data", payload}};
  }, limits);
  ASSERT_TRUE(server.ok());
  const int fd = connect_client(path);
  ASSERT_GE(fd, 0);
  const std::string request = "{\"cmd\":\"logs\",\"name\":\"x\",\"lines\":1000}\n";
  const std::size_t sent = flood(fd, request, 8 << 20);
  // Without back-pressure every request sent is answered into memory at once (8 KiB each);
  // with it, answering stops once pause_output + the kernel's socket buffers are full.
  const std::size_t answered_while_stalled = answered.load();
  EXPECT_GT(sent, 2000U) << "the kernel took too little for this test to mean anything";
  EXPECT_LT(answered_while_stalled, 200U) << "of " << sent << " requests";
  // No busy loop meanwhile: a few round trips on another connection cost a few loop turns each.
  const auto turns_before = server.wakeups();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(std::holds_alternative<json>(pd::control_request(path, {{"cmd", "status"}})));
  EXPECT_LT(server.wakeups() - turns_before, 400U);
  // Reading resumes the answering: every complete request gets its reply, in order.
  ASSERT_EQ(::shutdown(fd, SHUT_WR), 0);
  const std::string replies = read_to_eof(fd);
  ::close(fd);
  EXPECT_EQ(static_cast<std::size_t>(std::count(replies.begin(), replies.end(), '\n')), sent);
  EXPECT_EQ(answered.load(), sent + 20);
}

TEST_F(daemon_control, a_half_closed_peer_that_never_reads_does_not_spin_and_is_dropped_when_idle) {
  temp_dir dir;
  const std::string path = dir.path + "/procsup.sock";
  // 2,000 replies of ~2 KiB: all answered (under pause_output), far more than the socket
  // buffers take, so the EOF is read while output is pending.
  const std::string payload(2000, 'x');
  pd::control_limits limits;
  limits.pause_output = 8 << 20;
  limits.batch = 4096;  // all in one pass (a batch that ends on a full socket waits for room)
  limits.idle_timeout = std::chrono::milliseconds(1500);
  std::atomic<std::size_t> answered{0};
  served_control server(path, [&](const json& req) {
    if (req["cmd"] == "ping") return json{{"ok", true}};
    ++answered;
    return json{{"ok", true}, {"data", payload}};
  }, limits);
  ASSERT_TRUE(server.ok());
  const int fd = connect_client(path);
  ASSERT_GE(fd, 0);
  std::string requests;
  for (int i = 0; i < 2000; ++i) requests += "{\"cmd\":\"status\"}\n";
  ASSERT_EQ(::send(fd, requests.data(), requests.size(), MSG_NOSIGNAL), static_cast<ssize_t>(requests.size()));
  ASSERT_EQ(::shutdown(fd, SHUT_WR), 0);
  const auto turns_before = server.wakeups();
  // Every request is answered, the EOF read, the replies wait; other clients are served.
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(std::holds_alternative<json>(pd::control_request(path, {{"cmd", "ping"}})));
  // No progress for idle_timeout: closed, its unsent replies dropped.
  EXPECT_TRUE(wait_closed_by_server(fd));
  ::close(fd);
  EXPECT_EQ(answered.load(), 2000U);
  // No loop turns without cause all that time (a level-triggered EOF left in the interest set
  // spun here: ~10^5 turns a second).
  EXPECT_LT(server.wakeups() - turns_before, 400U);
}

TEST_F(daemon_control, idle_connections_are_told_why_and_closed_and_then_no_timer_is_left) {
  temp_dir dir;
  const std::string path = dir.path + "/procsup.sock";
  pd::control_limits limits;
  limits.idle_timeout = std::chrono::milliseconds(300);
  served_control server(path, echo_handler, limits);
  ASSERT_TRUE(server.ok());
  std::vector<int> fds;
  for (int i = 0; i < 5; ++i) fds.push_back(connect_client(path));
  // One of them is served first: its idle time starts at its request.
  ASSERT_EQ(::send(fds[0], "{\"cmd\":\"status\"}\n", 17, MSG_NOSIGNAL), 17);
  EXPECT_EQ(read_line(fds[0]), "{\"echo\":{\"cmd\":\"status\"},\"ok\":true}");
  for (int fd : fds) {
    EXPECT_EQ(read_to_eof(fd), "{\"error\":\"closed: no request for 300 ms\",\"ok\":false}\n");
    ::close(fd);
  }
  EXPECT_EQ(server.timers_pending(), 0U) << "an idle server keeps a timer";
  EXPECT_GE(server.timers_armed(), 1U);
  // A new connection is served as before.
  EXPECT_EQ(raw_exchange(path, "{\"cmd\":\"status\"}\n"), "{\"echo\":{\"cmd\":\"status\"},\"ok\":true}\n");
}

TEST_F(daemon_control, a_follower_is_exempt_from_the_idle_timeout_while_it_reads_but_not_once_it_stops) {
  temp_dir dir;
  const std::string path = dir.path + "/procsup.sock";
  pd::control_limits limits;
  limits.idle_timeout = std::chrono::milliseconds(300);
  std::unique_ptr<served_control> server;
  int follower = -1;  // loop thread only
  server = std::make_unique<served_control>(path, [&](const json& req) -> json {
    pd::control_server& srv = server->server();  // the handler runs on the loop thread
    if (req["cmd"] == "follow") {
      follower = srv.current_connection();
      return {{"ok", true}, {"follow", true}};
    }
    if (req["cmd"] == "poke") {  // n lines of `size` bytes to the follower
      const std::string text(req.value("size", 10), 'y');
      bool delivered = true;
      for (int i = 0; i < req.value("n", 1); ++i) delivered = srv.push(follower, {{"line", text}}) && delivered;
      return {{"ok", delivered}};
    }
    return {{"ok", true}};
  }, limits);
  ASSERT_TRUE(server->ok());
  const int f = connect_client(path);
  ASSERT_EQ(::send(f, "{\"cmd\":\"follow\"}\n", 17, MSG_NOSIGNAL), 17);
  EXPECT_EQ(read_line(f), "{\"follow\":true,\"ok\":true}");
  // Two idle connections closed one after the other: the follower has outlived two timeouts.
  for (int i = 0; i < 2; ++i) {
    const int idle = connect_client(path);
    EXPECT_EQ(read_to_eof(idle), "{\"error\":\"closed: no request for 300 ms\",\"ok\":false}\n");
    ::close(idle);
  }
  const auto poke = [&](int n, int size) {
    const auto r = pd::control_request(path, {{"cmd", "poke"}, {"n", n}, {"size", size}});
    return std::holds_alternative<json>(r) && std::get<json>(r).value("ok", false);
  };
  EXPECT_TRUE(poke(1, 10));
  EXPECT_EQ(read_line(f), "{\"line\":\"yyyyyyyyyy\"}");
  // It stops reading: what is pushed to it piles up (under max_pending_push), no byte is taken
  // for idle_timeout: closed.
  EXPECT_TRUE(poke(40, 64 << 10));
  EXPECT_TRUE(wait_closed_by_server(f));
  ::close(f);
}

TEST(daemon_control_admission, one_uid_cannot_hold_every_slot_and_root_always_has_a_reserve) {
  pd::control_limits l;
  l.max_connections = 64;
  l.max_per_uid = 48;
  l.root_reserve = 8;
  EXPECT_TRUE(pd::control_server::admits(l, 1000, 0, 0));
  EXPECT_TRUE(pd::control_server::admits(l, 1000, 47, 47));
  EXPECT_FALSE(pd::control_server::admits(l, 1000, 48, 48)) << "a uid's cap";
  EXPECT_TRUE(pd::control_server::admits(l, 0, 48, 0)) << "root beside a capped uid";
  EXPECT_TRUE(pd::control_server::admits(l, 1000, 63, 10)) << "the table has room";
  EXPECT_FALSE(pd::control_server::admits(l, 1000, 64, 10)) << "the table is full";
  EXPECT_TRUE(pd::control_server::admits(l, 0, 64, 16)) << "root's reserve";
  EXPECT_TRUE(pd::control_server::admits(l, 0, 71, 71)) << "root is not capped per uid";
  EXPECT_FALSE(pd::control_server::admits(l, 0, 72, 72)) << "the reserve is full too";
}

TEST_F(daemon_control, past_the_table_root_uses_the_reserve_and_then_is_told_too_many) {
  temp_dir dir;
  const std::string path = dir.path + "/procsup.sock";
  pd::control_limits limits;
  limits.max_connections = 4;
  limits.root_reserve = 2;
  served_control server(path, echo_handler, limits);
  ASSERT_TRUE(server.ok());
  ASSERT_EQ(::geteuid(), 0U) << "tests run as root (the socket's owner and root are the same uid here)";
  std::vector<int> fds;
  for (int i = 0; i < 7; ++i) {
    fds.push_back(connect_client(path));
    // The refused one may be closed already (EPIPE): its reply waits to be read all the same.
    const ssize_t n = ::send(fds.back(), "{\"cmd\":\"status\"}\n", 17, MSG_NOSIGNAL);
    if (i < 6) {
      EXPECT_EQ(n, 17);
    }
    const std::string reply = read_line(fds.back());
    if (i < 6) {
      EXPECT_EQ(reply, "{\"echo\":{\"cmd\":\"status\"},\"ok\":true}") << "connection " << i;
    } else {
      EXPECT_EQ(reply, "{\"error\":\"too many control connections: try again later\",\"ok\":false}");
    }
  }
  for (int fd : fds) ::close(fd);
}

TEST_F(daemon_control, a_line_longer_than_the_limit_gets_an_error_and_the_connection_closes) {
  temp_dir dir;
  const std::string path = dir.path + "/procsup.sock";
  pd::control_limits limits;
  limits.max_line = 1024;
  served_control server(path, echo_handler, limits);
  ASSERT_TRUE(server.ok());
  const int fd = connect_client(path);
  const std::string junk(64 << 10, 'a');  // never a newline
  ASSERT_EQ(::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL), static_cast<ssize_t>(junk.size()));
  EXPECT_EQ(read_to_eof(fd), "{\"error\":\"bad request: line longer than 1024 bytes\",\"ok\":false}\n");
  ::close(fd);
}

TEST(daemon_control_table, status_is_an_aligned_table_like_supervisorctl) {
  const json status = json::parse(R"([
    {"name":"api","instance":0,"pid":1234,"state":"running","restarts":0,"uptime_s":3725.4,"last_exit":null,
     "memory_bytes":12897484,"cpu_seconds":1.5},
    {"name":"api","instance":1,"pid":1240,"state":"running","restarts":12,"uptime_s":5,"last_exit":{"signal":"SIGSEGV"}},
    {"name":"worker","instance":0,"pid":null,"state":"stopped","restarts":3,"uptime_s":null,"last_exit":{"code":1}}
  ])");
  EXPECT_EQ(pd::format_status_table(status),
            "NAME    STATE    PID   UPTIME   RESTARTS  MEM    CPU    LAST EXIT\n"
            "api:0   running  1234  1:02:05  0         12.3M  1.50s  -\n"
            "api:1   running  1240  0:00:05  12        -      -      signal SIGSEGV\n"
            "worker  stopped  -     -        3         -      -      exit 1\n");
  EXPECT_EQ(pd::format_uptime(2 * 86400 + 4 * 3600), "2d 04:00:00");
}

}  // namespace
