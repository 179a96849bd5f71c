// The control socket's client (what `procsup ctl` uses) and the human status table.
#include "procsup/daemon/control.hpp"

#include "control_detail.hpp"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <utility>

namespace procsup::daemon {
namespace {

using detail::dump_line;
using detail::errno_text;
using detail::make_address;

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
    // The hint names the likely cause: a socket that is there but owner-only (0600) is not a
    // procsup that is down.
    const char* hint = e == EACCES || e == EPERM
                           ? " \u2014 the control socket is owner-only: run as root or as the user procsup runs as"
                           : " \u2014 is procsup running?";
    return control_error{e, "cannot connect to " + path + ": " + errno_text(e) + hint};
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

// One recv() appended to `into`: how many bytes came (0: procsup closed the connection), or
// why none can (a timeout names it).
std::variant<std::size_t, control_error> receive(int fd, std::string& into, const std::string& path,
                                                 std::chrono::milliseconds timeout) {
  char buf[16384];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return control_error{ETIMEDOUT, path + ": no reply within " + std::to_string(timeout.count()) + " ms"};
    if (n < 0) return control_error{errno, path + ": reading the reply: " + errno_text(errno)};
    into.append(buf, static_cast<std::size_t>(n));
    return static_cast<std::size_t>(n);
  }
}

}  // namespace

std::variant<nlohmann::json, control_error> control_request(const std::string& path, const nlohmann::json& request,
                                                            std::chrono::milliseconds timeout) {
  auto connected = connect_and_send(path, request, timeout);
  if (auto* err = std::get_if<control_error>(&connected)) return std::move(*err);
  const int fd = std::get<int>(connected);
  fd_closer guard{fd};

  std::string reply;
  for (;;) {
    const auto newline = reply.find('\n');
    if (newline != std::string::npos) {
      reply.resize(newline);
      break;
    }
    auto got = receive(fd, reply, path, timeout);
    if (auto* err = std::get_if<control_error>(&got)) return std::move(*err);
    if (std::get<std::size_t>(got) == 0) {
      if (reply.empty()) return control_error{ECONNRESET, path + ": procsup closed the connection without a reply"};
      break;
    }
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
    auto got = receive(fd, pending, path, timeout);
    if (auto* err = std::get_if<control_error>(&got)) return std::move(*err);
    if (std::get<std::size_t>(got) == 0) {
      if (first) return control_error{ECONNRESET, path + ": procsup closed the connection without a reply"};
      return std::nullopt;
    }
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
