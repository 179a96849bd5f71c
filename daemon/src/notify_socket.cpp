// The per-instance sd_notify receiver (notify_socket.hpp): socket setup, recvmsg with
// credentials and passed fds, and the datagram's NAME=value lines.
#include "procsup/daemon/notify_socket.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <system_error>

namespace procsup::daemon {

notify_socket::notify_socket() {
  static std::atomic<unsigned> counter{0};
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "notify socket");
  const std::string name = "procsup/" + std::to_string(::getpid()) + "/" + std::to_string(counter++);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  addr.sun_path[0] = '\0';  // abstract
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  const int one = 1;
  if (::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), len) != 0 ||
      ::setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0) {
    const int e = errno;
    ::close(fd_);
    fd_ = -1;
    throw std::system_error(e, std::generic_category(), "notify socket @" + name);
  }
  // Big enough for a burst of STATUS= lines while the loop is busy.
  const int buf = 256 * 1024;
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  address_ = "@" + name;
}

notify_socket::~notify_socket() {
  if (fd_ >= 0) ::close(fd_);
}

notify_message notify_socket::parse(const char* data, std::size_t size) {
  notify_message m;
  std::size_t pos = 0;
  while (pos < size) {
    std::size_t end = pos;
    while (end < size && data[end] != '\n') ++end;
    const std::string line(data + pos, end - pos);
    const auto eq = line.find('=');
    if (eq != std::string::npos && eq > 0) m.fields[line.substr(0, eq)] = line.substr(eq + 1);
    pos = end + 1;
  }
  return m;
}

void notify_socket::drain(const std::function<void(const notify_message&)>& fn) {
  // systemd's limit for one message is 4 KiB of text; room for a few fds and the credentials.
  char data[4096 + 1];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * 16)];
  for (;;) {
    iovec iov{data, sizeof data - 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd_, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN: all read
    }
    pid_t sender = 0;
    uid_t uid = static_cast<uid_t>(-1);
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET) continue;
      if (c->cmsg_type == SCM_RIGHTS) {
        const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
          int fd;
          std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
          ::close(fd);  // BARRIER=1's pipe: closing it answers the barrier
        }
      } else if (c->cmsg_type == SCM_CREDENTIALS) {
        ucred cred{};
        std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
        sender = cred.pid;
        uid = cred.uid;
      }
    }
    // A truncated datagram (over 4 KiB) is dropped, as systemd does: its fields may be cut.
    if ((msg.msg_flags & MSG_TRUNC) != 0 || static_cast<std::size_t>(n) >= sizeof data) continue;
    notify_message m = parse(data, static_cast<std::size_t>(n));
    m.sender = sender;
    m.uid = uid;
    fn(m);
  }
}

}  // namespace procsup::daemon
