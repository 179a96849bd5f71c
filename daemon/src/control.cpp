// The control socket's server, driven by the daemon's epoll loop through on_event and a one-shot
// timer: accepting within the connection limits, back-pressure (requests are read and parsed only
// as replies drain), EOF handled once, idle connections closed. Client side: control_client.cpp.
#include "procsup/daemon/control.hpp"

#include "control_detail.hpp"

#include "procsup/daemon/logging.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace procsup::daemon {
namespace {

using detail::dump_line;
using detail::errno_text;
using detail::make_address;

nlohmann::json error_reply(const std::string& message) { return {{"ok", false}, {"error", message}}; }

// One best-effort, non-blocking write for peers we are about to close.
void write_and_forget(int fd, const std::string& line) {
  while (::send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno == EINTR) {
  }
}

// The bytes read per readiness of one connection: with `batch`, what keeps one busy peer from
// holding the loop while others wait.
constexpr std::size_t read_chunk = 16384;

}  // namespace

std::variant<std::unique_ptr<control_server>, control_error> control_server::open(const std::string& path, handler h,
                                                                                   control_fd_hooks hooks,
                                                                                   control_limits limits) {
  sockaddr_un addr{};
  if (!make_address(path, addr))
    return control_error{ENAMETOOLONG, "control socket " + path + ": path empty or longer than 107 bytes"};

  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return control_error{EEXIST, "control socket " + path + ": exists and is not a socket"};
    // A socket file is stale if nobody accepts on it; a live one belongs to another procsup.
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) return control_error{errno, "control socket " + path + ": socket: " + errno_text(errno)};
    const int rc = ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    const int e = errno;
    ::close(probe);
    if (rc == 0) return control_error{EADDRINUSE, "control socket " + path + ": another procsup is listening on it"};
    if (e != ECONNREFUSED) return control_error{e, "control socket " + path + ": probing existing socket: " + errno_text(e)};
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      return control_error{errno, "control socket " + path + ": removing stale socket: " + errno_text(errno)};
  }

  std::unique_ptr<control_server> server(new control_server(path, std::move(h), std::move(hooks), limits));
  server->listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (server->listen_fd_ < 0) return control_error{errno, "control socket " + path + ": socket: " + errno_text(errno)};
  // umask, not chmod after bind: the socket must never exist with wider permissions.
  const mode_t old_mask = ::umask(0177);
  const int bound = ::bind(server->listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  const int bind_errno = errno;
  ::umask(old_mask);
  if (bound != 0) return control_error{bind_errno, "control socket " + path + ": bind: " + errno_text(bind_errno)};
  if (::stat(path.c_str(), &st) == 0) {
    server->dev_ = st.st_dev;
    server->ino_ = st.st_ino;
  }
  if (::listen(server->listen_fd_, 64) != 0)
    return control_error{errno, "control socket " + path + ": listen: " + errno_text(errno)};
  server->spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  for (std::size_t i = 0; i < reserved_fds; ++i)
    if (const int r = ::open("/dev/null", O_RDONLY | O_CLOEXEC); r >= 0) server->reserve_.push_back(r);
  return server;
}

control_server::control_server(std::string path, handler h, control_fd_hooks hooks, control_limits limits)
    : path_(std::move(path)),
      handler_(std::move(h)),
      hooks_(std::move(hooks)),
      limits_(limits),
      owner_uid_(::geteuid()) {}

control_server::~control_server() {
  while (!connections_.empty()) close_connection(connections_.begin()->first);
  if (spare_fd_ >= 0) ::close(spare_fd_);
  for (int r : reserve_) ::close(r);
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    struct stat st {};
    // Only our own socket file: a successor may already have replaced it.
    if (ino_ != 0 && ::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) ::unlink(path_.c_str());
  }
}

std::vector<int> control_server::connection_fds() const {
  std::vector<int> fds;
  for (const auto& [fd, c] : connections_) fds.push_back(fd);
  return fds;
}

bool control_server::admits(const control_limits& limits, uid_t uid, std::size_t open, std::size_t of_uid) noexcept {
  if (uid == 0) return open < limits.max_connections + limits.root_reserve;
  return open < limits.max_connections && of_uid < limits.max_per_uid;
}

void control_server::on_readable(int fd) { on_event(fd, EPOLLIN); }
void control_server::on_writable(int fd) { on_event(fd, EPOLLOUT); }

// The connection's state × event table:
//   EPOLLIN   (reading)            one chunk into `in`; 0 bytes: input_done (EOF, once)
//   EPOLLOUT  (writing)            send what the socket takes
//   either                         then answer up to `batch` lines while can_serve()
//   EPOLLHUP / EPOLLERR            after that pass: the peer cannot read: close
//   idle timer                     no request and no output taken for idle_timeout: close
// settle() then closes a connection that is done or sets what it waits for: input only while it
// can take a request (nothing blocks the next one), output while replies are unsent or lines
// wait for their turn. So no state leaves a readiness that nobody consumes (no busy loop), and
// `in` and `out` stay bounded whatever the peer sends.
void control_server::on_event(int fd, std::uint32_t epoll_events) {
  if (fd == listen_fd_) {
    accept_all();
    return;
  }
  const auto it = connections_.find(fd);
  if (it == connections_.end()) return;
  connection& c = it->second;
  if ((epoll_events & EPOLLOUT) != 0 && !flush(fd, c)) return;
  if ((epoll_events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 && c.reading && !c.input_done && !c.closing) {
    char buf[read_chunk];
    for (;;) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.in.append(buf, static_cast<std::size_t>(n));
        break;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      c.input_done = true;  // 0 = the peer shut its write side, < 0 = error: read no more
      break;
    }
  }
  if (!serve(fd, c)) return;
  if ((epoll_events & (EPOLLHUP | EPOLLERR)) != 0) {
    // Hung up (both directions) or failed: nothing we send can arrive. EPOLLHUP is reported
    // whatever the interest set, so keeping the connection would spin the loop.
    close_connection(fd);
    return;
  }
  settle(fd, c);
}

bool control_server::push(int fd, const nlohmann::json& message) noexcept {
  const auto it = connections_.find(fd);
  if (it == connections_.end() || it->second.input_done || it->second.closing) return false;
  connection& c = it->second;
  try {
    append(c, dump_line(message));
  } catch (...) {  // bad_alloc: treat like a peer that cannot keep up
    close_connection(fd);
    return false;
  }
  if (c.out.size() > limits_.max_pending_push) {
    close_connection(fd);
    return false;
  }
  if (!flush(fd, c)) return false;
  if (serving_fd_ != fd) settle(fd, c);  // else serve() settles it when the handler is done
  return connections_.count(fd) != 0;
}

// Out of fds: one reserved fd makes room for the waiting peer, which is then served like any
// other (procsup is single-threaded: nothing else can take the freed number in between).
int control_server::accept_from_reserve() {
  if (reserve_.empty()) return -1;
  ::close(reserve_.back());
  reserve_.pop_back();
  const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) {
    if (const int r = ::open("/dev/null", O_RDONLY | O_CLOEXEC); r >= 0) reserve_.push_back(r);
    return -1;
  }
  log_event(spdlog::level::warn, "control connection served from the reserve: procsup is out of file descriptors",
            {{"reserve_left", reserve_.size()}});
  return fd;
}

void control_server::accept_all() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    bool reserved = false;
    if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
      fd = accept_from_reserve();
      reserved = fd >= 0;
      if (!reserved) errno = EMFILE;
    }
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && refuse_one_out_of_fds(errno)) continue;
      return;  // EAGAIN: all taken; ENOBUFS/ENOMEM: try again on the next readiness
    }
    ucred cred{};
    socklen_t len = sizeof cred;
    // A refused peer gives its reserved fd back at once.
    auto give_back = [&] {
      if (!reserved) return;
      if (const int r = ::open("/dev/null", O_RDONLY | O_CLOEXEC); r >= 0) reserve_.push_back(r);
    };
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      ::close(fd);
      give_back();
      continue;
    }
    if (cred.uid != 0 && cred.uid != owner_uid_) {
      write_and_forget(fd, dump_line(error_reply("permission denied: uid " + std::to_string(cred.uid))));
      ::close(fd);
      give_back();
      continue;
    }
    const auto of_uid = per_uid_.find(cred.uid);
    if (!admits(limits_, cred.uid, connections_.size(), of_uid == per_uid_.end() ? 0 : of_uid->second)) {
      const bool uid_full = cred.uid != 0 && connections_.size() < limits_.max_connections;
      write_and_forget(fd, dump_line(error_reply(
                               uid_full ? "too many control connections of uid " + std::to_string(cred.uid) + " (" +
                                              std::to_string(limits_.max_per_uid) + "): try again later"
                                        : std::string("too many control connections: try again later"))));
      ::close(fd);
      give_back();
      log_event(spdlog::level::debug, "control connection refused: too many",
                {{"uid", cred.uid}, {"connections", connections_.size()}});
      continue;
    }
    connection c;
    c.uid = cred.uid;
    c.last_progress = clock::now();
    c.reserved = reserved;
    connections_.emplace(fd, std::move(c));
    ++per_uid_[cred.uid];
    if (hooks_.added) hooks_.added(fd);
    arm_timer();
  }
}

// Out of fds: the spare one makes room to accept the waiting peer, tell it why and hang up, so
// that it is not left waiting and the listening socket does not stay readable (a level-triggered
// loop would spin on it). False when no spare could be had (then the next readiness retries).
bool control_server::refuse_one_out_of_fds(int error) {
  if (spare_fd_ < 0) return false;
  ::close(spare_fd_);
  const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd >= 0) {
    write_and_forget(fd, dump_line(error_reply(std::string("procsup is out of file descriptors (") +
                                               (error == EMFILE ? "EMFILE" : "ENFILE") + "): try again later")));
    ::close(fd);
  }
  spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  log_event(spdlog::level::warn, "control connection refused: out of file descriptors",
            {{"error", errno_text(error)}, {"connections", connections_.size()}});
  return fd >= 0 && spare_fd_ >= 0;
}

bool control_server::has_request(const connection& c) const noexcept { return c.in.find('\n') != std::string::npos; }

// The next buffered request may be answered now: nothing before it is unanswered (a deferred
// reply) and the replies before it have drained below pause_output (back-pressure).
bool control_server::can_serve(const connection& c) const noexcept {
  return !c.closing && c.waiting == 0 && c.out.size() < limits_.pause_output;
}

void control_server::append(connection& c, const std::string& line) {
  if (c.out.empty()) c.last_progress = clock::now();  // a stall is counted from here
  c.out += line;
}

bool control_server::serve(int fd, connection& c) {
  std::size_t start = 0;  // of the next unanswered line in c.in (erased once, at the end)
  std::size_t newline;
  for (std::size_t taken = 0; taken < limits_.batch && can_serve(c) && (newline = c.in.find('\n', start)) != std::string::npos;
       ++taken) {
    const std::string_view line(c.in.data() + start, newline - start);
    start = newline + 1;
    c.last_progress = clock::now();
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    nlohmann::json reply;
    const auto request = nlohmann::json::parse(line, nullptr, false);
    if (request.is_discarded()) {
      reply = error_reply("bad request: not JSON");
    } else if (!request.is_object() || !request.contains("cmd") || !request["cmd"].is_string()) {
      reply = error_reply("bad request: expected an object with a \"cmd\" string");
    } else {
      serving_fd_ = fd;
      deferred_now_ = false;
      try {
        reply = handler_ ? handler_(request) : error_reply("no handler");
      } catch (const std::exception& e) {
        reply = error_reply(e.what());
      } catch (...) {
        reply = error_reply("internal error");
      }
      serving_fd_ = -1;
      if (connections_.count(fd) == 0) return false;  // the handler's push() closed it
      // Deferred: complete() adds the reply (perhaps already, from within the handler). A
      // handler that threw after defer() still answers, once.
      if (std::exchange(deferred_now_, false)) {
        if (c.waiting != 0 && reply.is_object() && !reply.value("ok", true)) {
          c.waiting = 0;
          append(c, dump_line(reply));
        }
        continue;
      }
      if (reply.is_object()) {
        const auto follow = reply.find("follow");
        if (follow != reply.end() && follow->is_boolean() && follow->get<bool>() && reply.value("ok", false))
          c.follower = true;
      }
    }
    append(c, dump_line(reply));
    // Before the next request: what the socket takes now no longer counts against pause_output.
    if (c.out.size() >= limits_.pause_output && !flush(fd, c)) return false;
  }
  c.in.erase(0, start);
  if (c.in.capacity() > 4 * read_chunk && c.in.size() < read_chunk) c.in.shrink_to_fit();  // after a long line
  if (!c.closing && c.in.size() > limits_.max_line && !has_request(c)) {
    // One line longer than any request: refuse the rest of this connection's input.
    c.in.clear();
    c.in.shrink_to_fit();
    c.input_done = true;
    c.closing = true;
    append(c, dump_line(error_reply("bad request: line longer than " + std::to_string(limits_.max_line) + " bytes")));
  }
  if (c.out.size() > limits_.max_pending_output) {
    close_connection(fd);  // one reply larger than any peer should be sent
    return false;
  }
  return flush(fd, c);
}

bool control_server::flush(int fd, connection& c) {
  while (!c.out.empty()) {
    const ssize_t n = ::send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      c.out.erase(0, static_cast<std::size_t>(n));
      c.last_progress = clock::now();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    close_connection(fd);  // EPIPE, ECONNRESET: the peer is gone
    return false;
  }
  if (c.out.empty() && c.out.capacity() > read_chunk) c.out.shrink_to_fit();  // a big reply's memory goes back
  return true;
}

void control_server::settle(int fd, connection& c) {
  const bool pending_request = has_request(c);
  const bool done = c.out.empty() && (c.closing || (c.input_done && c.waiting == 0 && !pending_request));
  if (done) {  // an incomplete last line after EOF is dropped, as it always was
    close_connection(fd);
    return;
  }
  // Input only while the next request could be answered at once and none is queued: so a peer
  // that never reads stops being read (its bytes wait in the kernel, not here).
  const bool readable = !c.input_done && !c.closing && !pending_request && can_serve(c);
  // Room to write: for unsent replies, and for queued requests that wait for their turn
  // (batch) rather than for a deferred reply; writable soon after the peer reads.
  const bool writable = !c.out.empty() || (pending_request && can_serve(c));
  if (readable != c.reading || writable != c.writing) {
    c.reading = readable;
    c.writing = writable;
    if (hooks_.interest) hooks_.interest(fd, readable, writable);
  }
}

control_server::deferred control_server::defer() {
  const auto it = connections_.find(serving_fd_);
  if (it == connections_.end()) throw std::logic_error("control_server::defer() outside a request");
  deferred_now_ = true;
  it->second.waiting = ++next_serial_;
  return {serving_fd_, it->second.waiting};
}

void control_server::complete(const deferred& d, const nlohmann::json& reply) {
  const auto it = connections_.find(d.fd);
  // A serial mismatch: that peer left and the fd number now belongs to another.
  if (d.serial == 0 || it == connections_.end() || it->second.waiting != d.serial) return;
  connection& c = it->second;
  c.waiting = 0;
  append(c, dump_line(reply));
  if (serving_fd_ == d.fd) return;  // completed from within the handler: serve() goes on
  if (serve(d.fd, c)) settle(d.fd, c);  // answers the requests queued behind it, then flushes
}

void control_server::arm_timer() {
  if (timer_ != 0 || connections_.empty() || limits_.idle_timeout.count() <= 0 || !hooks_.add_timer) return;
  // One timer for all connections, for the oldest deadline; activity only moves deadlines
  // later, so it needs no re-arming until it fires.
  auto earliest = clock::time_point::max();
  for (const auto& [fd, c] : connections_) earliest = std::min(earliest, c.last_progress + limits_.idle_timeout);
  const auto now = clock::now();
  auto after = std::chrono::ceil<std::chrono::milliseconds>(earliest - now);
  // Exempt connections only (followers, deferred replies): look again one timeout later.
  if (earliest == clock::time_point::max()) after = limits_.idle_timeout;
  after = std::min(std::max(after, std::chrono::milliseconds(10)), limits_.idle_timeout);
  timer_ = hooks_.add_timer(after, [this] {
    timer_ = 0;
    on_timer();
  });
}

void control_server::on_timer() {
  const auto now = clock::now();
  std::vector<int> idle;
  for (auto& [fd, c] : connections_) {
    const bool exempt = c.waiting != 0 || (c.follower && c.out.empty());
    if (exempt) {
      c.last_progress = now;  // a follower's stall, if any, is counted from when it starts
      continue;
    }
    if (now - c.last_progress >= limits_.idle_timeout) idle.push_back(fd);
  }
  for (int fd : idle) {
    const auto& c = connections_.at(fd);
    // Told why when that cannot cut a reply in half; a peer that stopped reading just goes.
    if (c.out.empty())
      write_and_forget(fd, dump_line(error_reply("closed: no request for " +
                                                 std::to_string(limits_.idle_timeout.count()) + " ms")));
    log_event(spdlog::level::debug, "control connection closed: idle",
              {{"uid", c.uid}, {"unsent_bytes", c.out.size()}, {"follower", c.follower}});
    close_connection(fd);
  }
  arm_timer();
}

void control_server::close_connection(int fd) {
  const auto it = connections_.find(fd);
  if (it == connections_.end()) return;
  const auto per = per_uid_.find(it->second.uid);
  if (per != per_uid_.end() && --per->second == 0) per_uid_.erase(per);
  const bool reserved = it->second.reserved;
  connections_.erase(it);
  if (connections_.empty() && timer_ != 0) {  // an idle procsup has no timer
    if (hooks_.cancel_timer) hooks_.cancel_timer(timer_);
    timer_ = 0;
  }
  if (hooks_.removed) hooks_.removed(fd);
  ::close(fd);
  // Its number goes back to the reserve before anything else can take it.
  if (reserved)
    if (const int r = ::open("/dev/null", O_RDONLY | O_CLOEXEC); r >= 0) reserve_.push_back(r);
}

}  // namespace procsup::daemon
