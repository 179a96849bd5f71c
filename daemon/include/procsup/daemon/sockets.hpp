// Listening sockets procsup holds for a program across its restarts (`sockets = [...]`, systemd
// socket activation): bound and listening once, before the program's first start, and passed to
// every instance as fd 3, 4, ... with LISTEN_FDS / LISTEN_FDNAMES / LISTEN_PID. While an instance
// is down, clients wait in the backlog instead of being refused.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "procsup/daemon/config.hpp"
#include "procsup/supervisor/supervisor.hpp"

namespace procsup::daemon {

// "user", "user:group", ":group" (names or numeric ids): the owner, or what is wrong with it
// ("unknown user \"nosuch\"").
std::variant<socket_file_owner, std::string> parse_socket_owner(const std::string& text);

struct held_socket {
  std::string address;  // as configured: "tcp://127.0.0.1:8080", "unix:///run/api.sock"
  std::string name;     // its LISTEN_FDNAMES entry
  int fd = -1;
};

class socket_set {
 public:
  socket_set() = default;
  ~socket_set();
  socket_set(socket_set&& o) noexcept : sockets_(std::move(o.sockets_)) { o.sockets_.clear(); }
  socket_set& operator=(socket_set&&) = delete;
  socket_set(const socket_set&) = delete;

  // Binds and listens on every address; the error names the address that failed ("tcp://
  // 127.0.0.1:80: bind: Permission denied"). A unix socket's stale file is replaced (only a
  // socket: any other file there is an error) and gets `owner` (lchown) and `mode`.
  static std::variant<socket_set, std::string> open(const std::vector<std::string>& addresses, mode_t mode,
                                                    socket_file_owner owner = {});
  // Applies `owner` and `mode` again to the unix socket files (a reload that changed only those
  // keeps the bound sockets and their backlog); "" or the error naming the address.
  std::string set_file_access(mode_t mode, socket_file_owner owner) const;

  const std::vector<held_socket>& sockets() const noexcept { return sockets_; }
  bool same_addresses(const std::vector<std::string>& addresses) const;
  // An instance's launch gets them as fd 3, 4, ... with LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID
  // (the child's own pid, set by the child: child_setup::pid_env).
  void add_to_launch(program_options& o) const;

 private:
  std::vector<held_socket> sockets_;
};

// The socket file of a "unix:///path" address ("/path"), or "" for any other address.
std::string_view unix_socket_path(std::string_view address) noexcept;

// "" if `address` is a form sockets = [...] accepts, else what is wrong with it (for `check`).
std::string check_socket_address(const std::string& address);

}  // namespace procsup::daemon
