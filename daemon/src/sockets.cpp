// Held listening sockets (sockets.hpp): address forms, bind + listen, unix socket files.
#include "procsup/daemon/sockets.hpp"

#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace procsup::daemon {

namespace {

struct parsed {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string unix_path;  // non-empty for unix://
};

// tcp://HOST:PORT (numeric IPv4, [IPv6] or localhost) or unix:///absolute/path.
std::string parse(const std::string& address, parsed& out) {
  if (address.rfind("unix://", 0) == 0) {
    out.unix_path = address.substr(7);
    if (out.unix_path.empty() || out.unix_path.front() != '/') return "a unix socket needs an absolute path (unix:///run/x.sock)";
    if (out.unix_path.size() >= sizeof(sockaddr_un::sun_path)) return "the path is too long for a unix socket";
    auto* un = reinterpret_cast<sockaddr_un*>(&out.addr);
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, out.unix_path.c_str(), out.unix_path.size() + 1);
    out.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + out.unix_path.size() + 1);
    return {};
  }
  if (address.rfind("tcp://", 0) != 0) return "expected tcp://HOST:PORT or unix:///PATH";
  const std::string rest = address.substr(6);
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon + 1 == rest.size()) return "expected tcp://HOST:PORT";
  std::string host = rest.substr(0, colon);
  const std::string port_text = rest.substr(colon + 1);
  if (port_text.find_first_not_of("0123456789") != std::string::npos || port_text.size() > 5) return "bad port \"" + port_text + "\"";
  const int port = std::stoi(port_text);
  if (port > 65535) return "bad port \"" + port_text + "\"";
  if (host == "localhost") host = "127.0.0.1";
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.addr);
    if (::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &v6->sin6_addr) != 1) return "bad IPv6 address " + host;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(port));
    out.len = sizeof(sockaddr_in6);
    return {};
  }
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.addr);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) != 1) return "bad address \"" + host + "\" (a numeric IPv4, [IPv6] or localhost)";
  v4->sin_family = AF_INET;
  v4->sin_port = htons(static_cast<std::uint16_t>(port));
  out.len = sizeof(sockaddr_in);
  return {};
}

// LISTEN_FDNAMES entries may not contain ':' (the separator).
std::string fd_name(const std::string& address) {
  std::string name = address;
  for (char& c : name)
    if (c == ':' || c == '/') c = '_';
  while (name.find("___") != std::string::npos) name.replace(name.find("___"), 3, "_");
  return name;
}

}  // namespace

std::string check_socket_address(const std::string& address) {
  parsed p;
  return parse(address, p);
}

std::string_view unix_socket_path(std::string_view address) noexcept {
  return address.substr(0, 7) == "unix://" ? address.substr(7) : std::string_view();
}

socket_set::~socket_set() {
  for (auto& s : sockets_) {
    if (s.fd >= 0) ::close(s.fd);
    if (const auto path = unix_socket_path(s.address); !path.empty()) ::unlink(std::string(path).c_str());
  }
}

bool socket_set::same_addresses(const std::vector<std::string>& addresses) const {
  if (addresses.size() != sockets_.size()) return false;
  for (std::size_t i = 0; i < addresses.size(); ++i)
    if (addresses[i] != sockets_[i].address) return false;
  return true;
}

void socket_set::add_to_launch(program_options& o) const {
  if (sockets_.empty()) return;
  std::string names;
  for (std::size_t i = 0; i < sockets_.size(); ++i) {
    o.exec.setup.fds.emplace_back(sockets_[i].fd, 3 + static_cast<int>(i));
    names += (i ? ":" : "") + sockets_[i].name;
  }
  o.exec.env.push_back("LISTEN_FDS=" + std::to_string(sockets_.size()));
  o.exec.env.push_back("LISTEN_FDNAMES=" + names);
  o.exec.setup.pid_env.push_back("LISTEN_PID");
}

namespace {

// A user or group: a name (looked up with getpwnam_r / getgrnam_r), or a decimal id; false if
// neither.
template <class Entry, class Id>
bool lookup_id(const std::string& name, int (*lookup)(const char*, Entry*, char*, std::size_t, Entry**),
               Id Entry::*field, Id& id) {
  char* end = nullptr;
  const unsigned long n = std::strtoul(name.c_str(), &end, 10);
  if (!name.empty() && *end == '\0') {
    id = static_cast<Id>(n);
    return true;
  }
  std::vector<char> buf(16384);
  Entry e{};
  Entry* found = nullptr;
  lookup(name.c_str(), &e, buf.data(), buf.size(), &found);
  if (found == nullptr) return false;
  id = e.*field;
  return true;
}

std::string apply_access(const std::string& address, const std::string& path, mode_t mode, socket_file_owner owner) {
  if ((owner.uid != static_cast<uid_t>(-1) || owner.gid != static_cast<gid_t>(-1)) &&
      ::lchown(path.c_str(), owner.uid, owner.gid) != 0)
    return address + ": chown: " + std::strerror(errno);
  if (::chmod(path.c_str(), mode) != 0) return address + ": chmod: " + std::strerror(errno);
  return {};
}

}  // namespace

std::variant<socket_file_owner, std::string> parse_socket_owner(const std::string& text) {
  socket_file_owner o;
  const auto colon = text.find(':');
  const std::string user = text.substr(0, colon);
  const std::string grp = colon == std::string::npos ? std::string() : text.substr(colon + 1);
  if (user.empty() && grp.empty()) return std::string("expected \"user\", \"user:group\" or \":group\"");
  if (!user.empty() && !lookup_id(user, ::getpwnam_r, &passwd::pw_uid, o.uid)) return "unknown user \"" + user + "\"";
  if (!grp.empty() && !lookup_id(grp, ::getgrnam_r, &group::gr_gid, o.gid)) return "unknown group \"" + grp + "\"";
  return o;
}

std::string socket_set::set_file_access(mode_t mode, socket_file_owner owner) const {
  for (const auto& s : sockets_)
    if (const auto path = unix_socket_path(s.address); !path.empty())
      if (auto err = apply_access(s.address, std::string(path), mode, owner); !err.empty()) return err;
  return {};
}

std::variant<socket_set, std::string> socket_set::open(const std::vector<std::string>& addresses, mode_t mode,
                                                       socket_file_owner owner) {
  socket_set set;
  for (const auto& address : addresses) {
    parsed p;
    if (auto err = parse(address, p); !err.empty()) return address + ": " + err;
    const int fd = ::socket(p.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return address + ": socket: " + std::strerror(errno);
    auto fail = [&](const char* step) {
      const std::string msg = address + ": " + step + ": " + std::strerror(errno);
      ::close(fd);
      return msg;
    };
    const int one = 1;
    if (p.unix_path.empty()) {
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      // [::] next to 0.0.0.0 on the same port: each family its own socket.
      if (p.addr.ss_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    } else {
      struct stat st {};
      if (::lstat(p.unix_path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
          ::close(fd);
          return address + ": " + p.unix_path + " exists and is not a socket";
        }
        ::unlink(p.unix_path.c_str());  // stale: a previous run's
      }
    }
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&p.addr), p.len) != 0) return fail("bind");
    if (!p.unix_path.empty()) {
      if (auto err = apply_access(address, p.unix_path, mode, owner); !err.empty()) {
        ::close(fd);
        return err;
      }
    }
    if (::listen(fd, SOMAXCONN) != 0) return fail("listen");
    set.sockets_.push_back({address, fd_name(address), fd});
  }
  return set;
}

}  // namespace procsup::daemon
