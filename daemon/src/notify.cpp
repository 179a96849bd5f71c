// sd_notify over $NOTIFY_SOCKET without libsystemd: a non-blocking, close-on-exec datagram
// socket and one sendto() per message.
#include "procsup/daemon/notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <utility>

namespace procsup::daemon {

notifier notifier::from_env() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  if (socket == nullptr || *socket == '\0') return notifier{};
  std::optional<std::chrono::microseconds> watchdog;
  const char* usec = std::getenv("WATCHDOG_USEC");
  const char* pid = std::getenv("WATCHDOG_PID");
  // WATCHDOG_PID: the variables may have been inherited by a process they are not meant for.
  const bool for_us = pid == nullptr || std::strtoll(pid, nullptr, 10) == ::getpid();
  if (usec != nullptr && for_us) {
    char* end = nullptr;
    const long long v = std::strtoll(usec, &end, 10);
    if (end != usec && *end == '\0' && v > 0) watchdog = std::chrono::microseconds(v);
  }
  return notifier(socket, watchdog);
}

notifier::notifier(std::string socket_path, std::optional<std::chrono::microseconds> watchdog_timeout)
    : path_(std::move(socket_path)), watchdog_(watchdog_timeout) {}

notifier::notifier(notifier&& other) noexcept
    : path_(std::move(other.path_)), watchdog_(other.watchdog_), fd_(std::exchange(other.fd_, -1)) {
  other.path_.clear();
}

notifier& notifier::operator=(notifier&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    other.path_.clear();
    watchdog_ = other.watchdog_;
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

notifier::~notifier() {
  if (fd_ >= 0) ::close(fd_);
}

std::optional<std::chrono::microseconds> notifier::watchdog_interval() const noexcept {
  if (!watchdog_) return std::nullopt;
  return *watchdog_ / 2;
}

int notifier::send(std::string_view state) {
  if (!enabled()) return 0;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof addr.sun_path || (path_.front() != '/' && path_.front() != '@')) return EINVAL;
  std::memcpy(addr.sun_path, path_.data(), path_.size());
  if (path_.front() == '@') addr.sun_path[0] = '\0';  // abstract namespace: no trailing NUL counted
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path_.size());

  if (fd_ < 0) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) return errno;
  }
  for (;;) {
    const ssize_t n = ::sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr), len);
    if (n >= 0) return 0;
    if (errno != EINTR) return errno;
  }
}

int notifier::status(std::string_view text) {
  std::string msg = "STATUS=";
  msg += text;
  std::replace(msg.begin(), msg.end(), '\n', ' ');
  return send(msg);
}

int notifier::reloading() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const long long usec = static_cast<long long>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
  return send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

std::vector<std::string> strip_notify_environment(std::vector<std::string> env) {
  const auto systemd_only = [](const std::string& e) {
    return e.rfind("NOTIFY_SOCKET=", 0) == 0 || e.rfind("WATCHDOG_", 0) == 0 || e.rfind("LISTEN_", 0) == 0;
  };
  env.erase(std::remove_if(env.begin(), env.end(), systemd_only), env.end());
  return env;
}

}  // namespace procsup::daemon
