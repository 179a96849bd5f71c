// sd_notify spoken directly: one SOCK_DGRAM datagram per state change to $NOTIFY_SOCKET
// ('@' = abstract namespace); no libsystemd (the datagram protocol is systemd's stable API).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace procsup::daemon {

class notifier {
 public:
  // From $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID. Disabled (every send a no-op that
  // succeeds) when NOTIFY_SOCKET is unset: procsup is not running under systemd.
  static notifier from_env();
  notifier() = default;  // disabled
  // Explicit socket path ("@name" = abstract) and watchdog timeout, for tests.
  explicit notifier(std::string socket_path, std::optional<std::chrono::microseconds> watchdog_timeout = std::nullopt);
  notifier(notifier&& other) noexcept;
  notifier& operator=(notifier&& other) noexcept;
  notifier(const notifier&) = delete;
  notifier& operator=(const notifier&) = delete;
  ~notifier();

  bool enabled() const noexcept { return !path_.empty(); }
  const std::string& socket_path() const noexcept { return path_; }

  // Sends one datagram ("READY=1\nSTATUS=..."). Returns 0 or an errno; never blocks (a full
  // receiver queue gives EAGAIN: the message is dropped, systemd will hear the next one).
  int send(std::string_view state);
  int ready() { return send("READY=1"); }
  int stopping() { return send("STOPPING=1"); }
  int status(std::string_view text);    // STATUS=text (newlines replaced by spaces)
  int reloading();                      // RELOADING=1 + MONOTONIC_USEC=now (CLOCK_MONOTONIC)
  int watchdog() { return send("WATCHDOG=1"); }

  // The WatchdogSec systemd gave us (WATCHDOG_USEC), if it is meant for this process
  // (WATCHDOG_PID unset or our pid); nullopt when no watchdog is enabled.
  std::optional<std::chrono::microseconds> watchdog_timeout() const noexcept { return watchdog_; }
  // How often to send WATCHDOG=1: half the timeout (as sd_watchdog_enabled(3) advises).
  std::optional<std::chrono::microseconds> watchdog_interval() const noexcept;

 private:
  std::string path_;
  std::optional<std::chrono::microseconds> watchdog_;
  int fd_ = -1;  // created on first send
};

// A child's environment without systemd's per-service variables (NOTIFY_SOCKET, WATCHDOG_*,
// LISTEN_*), so workers cannot talk to systemd on procsup's behalf.
std::vector<std::string> strip_notify_environment(std::vector<std::string> env);

}  // namespace procsup::daemon
