// The receiving end of the systemd notify protocol for one program instance (ready =
// "notify"): a private abstract unix datagram socket named by the instance's NOTIFY_SOCKET.
// One socket per instance, so a datagram belongs to that instance whoever sent it (the sender
// is usually a child such as systemd-notify: the datagram's credentials carry that child's pid,
// not the main pid, and it may have exited by the time the datagram is read).
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace procsup::daemon {

// One datagram: its NAME=value lines, and the sender's pid and uid (SCM_CREDENTIALS; 0 / -1 if
// none came).
struct notify_message {
  std::map<std::string, std::string> fields;
  pid_t sender = 0;
  uid_t uid = static_cast<uid_t>(-1);
  bool has(const std::string& k) const { return fields.count(k) != 0; }
  std::string get(const std::string& k) const {
    auto it = fields.find(k);
    return it == fields.end() ? std::string() : it->second;
  }
};

class notify_socket {
 public:
  // Binds "@procsup/<procsup pid>/<n>" (abstract: no file to clean up, gone with procsup);
  // throws std::system_error naming the address if it cannot.
  notify_socket();
  ~notify_socket();
  notify_socket(const notify_socket&) = delete;
  notify_socket& operator=(const notify_socket&) = delete;

  int fd() const noexcept { return fd_; }
  // The value of NOTIFY_SOCKET for the child ("@..." for an abstract address).
  const std::string& address() const noexcept { return address_; }
  // Reads every datagram queued now (non-blocking) and calls `fn` for each. Every fd that came
  // with one (SCM_RIGHTS) is closed before `fn` runs: BARRIER=1's pipe, whose close is the
  // answer systemd-notify waits for, and anything else a program sends (never kept).
  void drain(const std::function<void(const notify_message&)>& fn);

  // Parses "A=1\nB=two\n" (lines without '=' are ignored, like systemd does).
  static notify_message parse(const char* data, std::size_t size);

 private:
  int fd_ = -1;
  std::string address_;
};

}  // namespace procsup::daemon
