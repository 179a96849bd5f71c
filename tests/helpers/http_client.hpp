// A minimal blocking HTTP/1.1 client for tests of procsup's [supervisor] http endpoints: one
// GET with "Connection: close", read to EOF, split status / headers / body. Test-side only (the
// product parses HTTP with Boost.Beast); every call is bounded by a receive timeout.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>

namespace procsup::testing {

struct http_reply {
  int status = 0;  // 0: no reply (connection failed, closed or timed out)
  std::string headers;
  std::string body;
};

// A connected socket to "host:port" (IPv4) or "unix:/path", or -1. The receive and send
// timeouts bound every later call.
inline int http_connect(const std::string& address, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  int fd;
  if (address.rfind("unix:", 0) == 0) {
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, address.c_str() + 5, sizeof sa.sun_path - 1);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      ::close(fd);
      return -1;
    }
  } else {
    const auto colon = address.rfind(':');
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1))));
    ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      ::close(fd);
      return -1;
    }
  }
  if (fd < 0) return -1;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

inline bool http_send_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads to EOF (or the timeout) and splits the first response.
inline http_reply http_read_reply(int fd) {
  std::string all;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    all.append(buf, static_cast<std::size_t>(n));
  }
  http_reply r;
  const auto end = all.find("\r\n\r\n");
  if (all.rfind("HTTP/1.", 0) != 0 || end == std::string::npos) return r;
  r.status = std::stoi(all.substr(9, 3));
  r.headers = all.substr(0, end);
  r.body = all.substr(end + 4);
  return r;
}

// Sends raw request bytes on a new connection and reads the reply.
inline http_reply http_raw(const std::string& address, const std::string& request) {
  const int fd = http_connect(address);
  if (fd < 0) return {};
  http_reply r;
  if (http_send_all(fd, request)) r = http_read_reply(fd);
  ::close(fd);
  return r;
}

inline http_reply http_get(const std::string& address, const std::string& target) {
  return http_raw(address, "GET " + target + " HTTP/1.1\r\nHost: procsup\r\nConnection: close\r\n\r\n");
}

}  // namespace procsup::testing
