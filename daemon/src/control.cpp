// The control socket's server (driven by the daemon's epoll loop through on_readable /
// on_writable) and client, plus the human status table.
#include "procsup/daemon/control.hpp"

#include "procsup/daemon/logging.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace procsup::daemon {
namespace {

std::string errno_text(int e) { return std::strerror(e); }

bool make_address(const std::string& path, sockaddr_un& addr) {
  addr = sockaddr_un{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return true;
}

std::string dump_line(const nlohmann::json& j) {
  // replace: a handler's string with invalid UTF-8 must not throw out of the event loop.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

nlohmann::json error_reply(const std::string& message) { return {{"ok", false}, {"error", message}}; }

// One best-effort, non-blocking write for peers we are about to close.
void write_and_forget(int fd, const std::string& line) {
  while (::send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno == EINTR) {
  }
}

}  // namespace

std::variant<std::unique_ptr<control_server>, control_error> control_server::open(const std::string& path, handler h,
                                                                                   control_fd_hooks hooks) {
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

  std::unique_ptr<control_server> server(new control_server(path, std::move(h), std::move(hooks)));
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
  return server;
}

control_server::control_server(std::string path, handler h, control_fd_hooks hooks)
    : path_(std::move(path)), handler_(std::move(h)), hooks_(std::move(hooks)), owner_uid_(::geteuid()) {}

control_server::~control_server() {
  while (!connections_.empty()) close_connection(connections_.begin()->first);
  if (spare_fd_ >= 0) ::close(spare_fd_);
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

void control_server::on_readable(int fd) {
  if (fd == listen_fd_) {
    accept_all();
    return;
  }
  const auto it = connections_.find(fd);
  if (it == connections_.end()) return;
  connection& c = it->second;
  bool eof = false;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      c.in.append(buf, static_cast<std::size_t>(n));
      if (c.in.size() > max_line + sizeof buf) break;  // serve() refuses it
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    eof = true;  // 0 = peer closed (its write side), < 0 = error
    break;
  }
  serve(fd, c);
  if (connections_.count(fd) == 0) return;
  if (eof) {
    c.eof = true;
    if (c.out.empty() && c.waiting == 0) close_connection(fd);
  }
}

void control_server::on_writable(int fd) {
  const auto it = connections_.find(fd);
  if (it == connections_.end()) return;
  flush(fd, it->second);
}

bool control_server::push(int fd, const nlohmann::json& message) noexcept {
  const auto it = connections_.find(fd);
  if (it == connections_.end() || it->second.eof) return false;
  connection& c = it->second;
  try {
    c.out += dump_line(message);
  } catch (...) {  // bad_alloc: treat like a peer that cannot keep up
    close_connection(fd);
    return false;
  }
  if (c.out.size() > max_pending_push) {
    close_connection(fd);
    return false;
  }
  flush(fd, c);
  return connections_.count(fd) != 0;
}

void control_server::accept_all() {
  for (;;) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && refuse_one_out_of_fds(errno)) continue;
      return;  // EAGAIN: all taken; ENOBUFS/ENOMEM: try again on the next readiness
    }
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      ::close(fd);
      continue;
    }
    if (cred.uid != 0 && cred.uid != owner_uid_) {
      write_and_forget(fd, dump_line(error_reply("permission denied: uid " + std::to_string(cred.uid))));
      ::close(fd);
      continue;
    }
    if (connections_.size() >= max_connections) {
      write_and_forget(fd, dump_line(error_reply("too many control connections")));
      ::close(fd);
      continue;
    }
    connections_.emplace(fd, connection{});
    if (hooks_.added) hooks_.added(fd);
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

void control_server::serve(int fd, connection& c) {
  std::size_t newline;
  while (!c.eof && c.waiting == 0 && (newline = c.in.find('\n')) != std::string::npos) {
    std::string line = c.in.substr(0, newline);
    c.in.erase(0, newline + 1);
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
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
      // Deferred: complete() adds the reply (perhaps already, from within the handler). A
      // handler that threw after defer() still answers, once.
      if (std::exchange(deferred_now_, false)) {
        if (c.waiting != 0 && reply.is_object() && !reply.value("ok", true)) {
          c.waiting = 0;
          c.out += dump_line(reply);
        }
        continue;
      }
    }
    c.out += dump_line(reply);
  }
  if (c.in.size() > max_line) {
    c.in.clear();
    c.out += dump_line(error_reply("bad request: line longer than " + std::to_string(max_line) + " bytes"));
    c.eof = true;  // close once the error is out
  }
  if (c.out.size() > max_pending_output) {
    close_connection(fd);  // a peer that sends but never reads
    return;
  }
  flush(fd, c);
}

void control_server::flush(int fd, connection& c) {
  while (!c.out.empty()) {
    const ssize_t n = ::send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      c.out.erase(0, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!c.want_write) {
        c.want_write = true;
        if (hooks_.output) hooks_.output(fd, true);
      }
      return;
    }
    close_connection(fd);  // EPIPE, ECONNRESET: the peer is gone
    return;
  }
  if (c.want_write) {
    c.want_write = false;
    if (hooks_.output) hooks_.output(fd, false);
  }
  if (c.eof && c.waiting == 0) close_connection(fd);
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
  c.out += dump_line(reply);
  if (serving_fd_ == d.fd) return;  // completed from within the handler: serve() goes on
  serve(d.fd, c);                   // answers the requests queued behind it, then flushes
}

void control_server::close_connection(int fd) {
  if (connections_.erase(fd) == 0) return;
  if (hooks_.removed) hooks_.removed(fd);
  ::close(fd);
}

namespace {

// Connects to `path` (send / receive timeouts `timeout`) and sends `request` as one line. The fd
// is the caller's to close.
std::variant<int, control_error> connect_and_send(const std::string& path, const nlohmann::json& request,
                                                  std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  if (!make_address(path, addr))
    return control_error{ENAMETOOLONG, "cannot connect to " + path + ": path empty or longer than 107 bytes"};
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return control_error{errno, "cannot create a socket for " + path + ": " + errno_text(errno)};

  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int e = errno;
    ::close(fd);
    return control_error{e, "cannot connect to " + path + ": " + errno_text(e) + " \u2014 is procsup running?"};
  }

  const std::string line = dump_line(request);
  std::size_t sent = 0;
  while (sent < line.size()) {
    const ssize_t n = ::send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // The server may have refused us and closed: its reply is still worth reading.
      break;
    }
    sent += static_cast<std::size_t>(n);
  }
  return fd;
}

struct fd_closer {
  int fd;
  ~fd_closer() { ::close(fd); }
};

}  // namespace

std::variant<nlohmann::json, control_error> control_request(const std::string& path, const nlohmann::json& request,
                                                            std::chrono::milliseconds timeout) {
  auto connected = connect_and_send(path, request, timeout);
  if (auto* err = std::get_if<control_error>(&connected)) return std::move(*err);
  const int fd = std::get<int>(connected);
  fd_closer guard{fd};

  std::string reply;
  char buf[16384];
  for (;;) {
    const auto newline = reply.find('\n');
    if (newline != std::string::npos) {
      reply.resize(newline);
      break;
    }
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return control_error{ETIMEDOUT, path + ": no reply within " + std::to_string(timeout.count()) + " ms"};
    if (n < 0) return control_error{errno, path + ": reading the reply: " + errno_text(errno)};
    if (n == 0) {
      if (reply.empty()) return control_error{ECONNRESET, path + ": procsup closed the connection without a reply"};
      break;
    }
    reply.append(buf, static_cast<std::size_t>(n));
  }
  auto parsed = nlohmann::json::parse(reply, nullptr, false);
  if (parsed.is_discarded()) return control_error{EPROTO, path + ": the reply is not JSON"};
  return parsed;
}

std::optional<control_error> control_stream(const std::string& path, const nlohmann::json& request,
                                            const std::function<bool(const nlohmann::json&)>& on_line,
                                            std::chrono::milliseconds timeout) {
  auto connected = connect_and_send(path, request, timeout);
  if (auto* err = std::get_if<control_error>(&connected)) return std::move(*err);
  const int fd = std::get<int>(connected);
  fd_closer guard{fd};

  std::string pending;
  bool first = true;
  char buf[16384];
  for (;;) {
    std::size_t newline;
    while ((newline = pending.find('\n')) != std::string::npos) {
      auto parsed = nlohmann::json::parse(pending.substr(0, newline), nullptr, false);
      pending.erase(0, newline + 1);
      if (parsed.is_discarded()) return control_error{EPROTO, path + ": a reply line is not JSON"};
      if (first) {
        first = false;
        const timeval forever{};  // after the reply, a follow waits as long as it takes
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &forever, sizeof forever);
      }
      if (!on_line(parsed)) return std::nullopt;
    }
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return control_error{ETIMEDOUT, path + ": no reply within " + std::to_string(timeout.count()) + " ms"};
    if (n < 0) return control_error{errno, path + ": reading the reply: " + errno_text(errno)};
    if (n == 0) {
      if (first) return control_error{ECONNRESET, path + ": procsup closed the connection without a reply"};
      return std::nullopt;
    }
    pending.append(buf, static_cast<std::size_t>(n));
  }
}

std::string format_uptime(double seconds) {
  if (!(seconds >= 0)) seconds = 0;
  auto total = static_cast<long long>(seconds);
  const long long days = total / 86400;
  total %= 86400;
  char buf[64];
  if (days > 0)
    std::snprintf(buf, sizeof buf, "%lldd %02lld:%02lld:%02lld", days, total / 3600, total % 3600 / 60, total % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", total / 3600, total % 3600 / 60, total % 60);
  return buf;
}

namespace {

std::string cell(const nlohmann::json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::string last_exit_text(const nlohmann::json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return "exit " + std::to_string(v.get<long long>());
  if (v.is_object()) {
    if (v.contains("signal") && !v["signal"].is_null()) return "signal " + cell(v["signal"]);
    if (v.contains("code") && !v["code"].is_null()) return "exit " + cell(v["code"]);
  }
  return v.dump();
}

}  // namespace

// "512K", "12.3M", "1.5G"
std::string format_bytes(double b) {
  const char* units[] = {"B", "K", "M", "G", "T"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 || b >= 100 ? "%.0f%s" : "%.1f%s", b, units[u]);
  return buf;
}

namespace {
void add_service_columns(const nlohmann::json& instances, std::vector<std::string>& header,
                         std::vector<std::vector<std::string>>& rows) {
  if (!instances.is_array()) return;
  bool health = false, status = false;
  for (const auto& i : instances) {
    if (!i.is_object()) continue;
    health = health || i.value("health", nlohmann::json{}).is_string();
    status = status || i.value("status_text", nlohmann::json{}).is_string();
  }
  std::size_t r = 0;
  for (const auto& i : instances) {
    if (!i.is_object() || r >= rows.size()) continue;
    const auto h = i.value("health", nlohmann::json{});
    const auto t = i.value("status_text", nlohmann::json{});
    if (health) rows[r].push_back(h.is_string() ? h.get<std::string>() : "-");
    if (status) rows[r].push_back(t.is_string() ? t.get<std::string>() : "-");
    ++r;
  }
  if (health) header.push_back("HEALTH");
  if (status) header.push_back("STATUS");
}
}  // namespace

std::string format_status_table(const nlohmann::json& instances) {
  std::vector<std::string> header{"NAME", "STATE", "PID", "UPTIME", "RESTARTS", "MEM", "CPU", "LAST EXIT"};
  std::vector<std::vector<std::string>> rows;
  if (instances.is_array()) {
    std::map<std::string, int> per_name;
    for (const auto& i : instances)
      if (i.is_object()) ++per_name[cell(i.value("name", nlohmann::json{}))];
    for (const auto& i : instances) {
      if (!i.is_object()) continue;
      const std::string name = cell(i.value("name", nlohmann::json{}));
      std::string shown = name;
      if (per_name[name] > 1) shown += ":" + cell(i.value("instance", nlohmann::json{}));
      const auto pid = i.value("pid", nlohmann::json{});
      const bool has_pid = pid.is_number_integer() && pid.get<long long>() > 0;
      const auto uptime = i.value("uptime_s", nlohmann::json{});
      const auto mem = i.value("memory_bytes", nlohmann::json{});
      const auto cpu = i.value("cpu_seconds", nlohmann::json{});
      char cpu_text[32] = "-";
      if (cpu.is_number()) std::snprintf(cpu_text, sizeof cpu_text, "%.2fs", cpu.get<double>());
      rows.push_back({shown, cell(i.value("state", nlohmann::json{})), has_pid ? cell(pid) : "-",
                      has_pid && uptime.is_number() ? format_uptime(uptime.get<double>()) : "-",
                      cell(i.value("restarts", nlohmann::json(0))),
                      mem.is_number() ? format_bytes(mem.get<double>()) : "-", cpu_text,
                      last_exit_text(i.value("last_exit", nlohmann::json{}))});
    }
  }
  // Services (docs/services.md): HEALTH and STATUS (sd_notify STATUS=) columns, only when some
  // instance has a health check or a status text.
  add_service_columns(instances, header, rows);
  std::vector<std::size_t> width(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& r : rows) width[c] = std::max(width[c], r[c].size());
  }
  auto line = [&](const std::vector<std::string>& r) {
    std::string out;
    for (std::size_t c = 0; c < r.size(); ++c) {
      out += r[c];
      if (c + 1 < r.size()) out += std::string(width[c] - r[c].size() + 2, ' ');
    }
    return out + "\n";
  };
  std::string out = line(header);
  for (const auto& r : rows) out += line(r);
  return out;
}

}  // namespace procsup::daemon
