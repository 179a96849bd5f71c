// The control socket: a Unix stream socket, owner-only (0600), one JSON request per line ->
// one JSON reply per line. The server is driven by the daemon's epoll loop (no thread of its
// own); the client is what `procsup ctl` uses.
//
// Requests: {"cmd":"status"}, {"cmd":"start","name":"api"}, {"cmd":"stop",...},
// {"cmd":"restart",...}, {"cmd":"signal","name":"api","signal":"HUP"}, {"cmd":"shutdown"},
// {"cmd":"logs","name":"api","lines":50,"follow":false}, later "reload", "send". Replies:
// {"ok":true,...} or {"ok":false,"error":"..."}; a followed `logs` then streams one JSON object
// per output line on the same connection until the client closes it. start / stop / restart
// are answered once done: {"ok":..,"instances":[..],"results":[{"id","ok","pid","state",
// "message"|"error"}],"message":"api: restarted (pid 123)"} (docs/cli.md).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace procsup::daemon {

struct control_error {
  int error = 0;        // errno
  std::string message;  // names the socket path
};

// How the server tells the event loop which fds to watch. All optional.
struct control_fd_hooks {
  std::function<void(int fd)> added;                  // watch fd for readability (EPOLLIN)
  std::function<void(int fd, bool writable)> output;  // also (true) / no longer (false) EPOLLOUT
  std::function<void(int fd)> removed;                // called just before fd is closed
};

class control_server {
 public:
  using handler = std::function<nlohmann::json(const nlohmann::json& request)>;

  // Creates, binds (umask 0177: mode 0600 from the start) and listens on `path`. A stale socket
  // (nobody accepting) is replaced; a live one (another procsup) or a non-socket file at `path`
  // is an error. The socket file is removed again by the destructor.
  static std::variant<std::unique_ptr<control_server>, control_error> open(const std::string& path, handler h,
                                                                           control_fd_hooks hooks = {});
  ~control_server();
  control_server(const control_server&) = delete;
  control_server& operator=(const control_server&) = delete;

  int listen_fd() const noexcept { return listen_fd_; }
  std::vector<int> connection_fds() const;
  bool owns(int fd) const noexcept { return fd == listen_fd_ || connections_.count(fd) != 0; }
  const std::string& path() const noexcept { return path_; }

  // The loop calls this when fd (the listening fd or a connection) is readable or hung up:
  // accepts new peers (checking SO_PEERCRED: root or the socket owner's uid only), or reads,
  // answers every complete line through the handler and closes on EOF or error. Never throws;
  // a handler that throws becomes {"ok":false,"error":what}.
  void on_readable(int fd);
  // The loop calls this when a connection with pending output (see hooks.output) is writable.
  void on_writable(int fd);

  // A handler that cannot answer at once (`send` waits for a worker's reply on the loop) calls
  // defer() during the call and complete() later with the reply; its return value is then
  // ignored. Later requests on that connection wait for it, so replies stay in request order.
  // complete() for a connection that has gone meanwhile does nothing. Loop thread only.
  struct deferred {
    int fd = -1;
    std::uint64_t serial = 0;
  };
  deferred defer();
  void complete(const deferred& d, const nlohmann::json& reply);

  // While the handler runs: the fd of the connection whose request it handles; -1 otherwise.
  // With push(), a handler can keep streaming to its peer (`ctl logs -f`); hooks.removed tells
  // when that connection is gone (before its fd can be reused).
  int current_connection() const noexcept { return serving_fd_; }
  // Queues `message` as one unsolicited JSON line on connection `fd` and sends what the socket
  // takes now (the rest when it is writable, as for replies). Loop thread. Returns false when fd
  // is not an open connection, its peer has closed, or it was closed now because more than
  // max_pending_push bytes were waiting (a follower that does not read is dropped, it never
  // grows procsup's memory). Never throws.
  bool push(int fd, const nlohmann::json& message) noexcept;

  static constexpr std::size_t max_line = 1 << 20;        // longer requests: error + close
  static constexpr std::size_t max_connections = 64;      // more peers: error + close
  static constexpr std::size_t max_pending_output = 64 << 20;  // a peer that never reads: close
  static constexpr std::size_t max_pending_push = 4 << 20;     // push() to a slow peer: close

 private:
  struct connection {
    std::string in;           // bytes received, not yet a complete line
    std::string out;          // replies not yet written
    bool eof = false;         // peer closed its side (or we refused it): close once out is sent
    bool want_write = false;  // hooks.output(fd, true) was called
    std::uint64_t waiting = 0;  // serial of a deferred reply not yet completed (0: none)
  };
  control_server(std::string path, handler h, control_fd_hooks hooks);
  void accept_all();
  bool refuse_one_out_of_fds(int error);
  void serve(int fd, connection& c);
  void flush(int fd, connection& c);
  void close_connection(int fd);

  std::string path_;
  handler handler_;
  control_fd_hooks hooks_;
  int listen_fd_ = -1;
  // Held so that, out of fds (EMFILE), a waiting connection can still be taken off the listen
  // queue and told why: else the listening socket stays readable and the loop spins on it.
  int spare_fd_ = -1;
  uid_t owner_uid_ = 0;
  dev_t dev_ = 0;  // identity of the socket file we created, so we never unlink someone else's
  ino_t ino_ = 0;
  std::map<int, connection> connections_;
  int serving_fd_ = -1;          // the connection whose request the handler is answering
  bool deferred_now_ = false;    // the handler called defer()
  std::uint64_t next_serial_ = 0;
};

// Client: connect to `path`, send `request` as one line, return the parsed reply line.
// Errors name the path, e.g. "cannot connect to /run/procsup.sock: No such file or directory
// — is procsup running?" (EACCES / EPERM: a hint about the socket's permissions instead).
std::variant<nlohmann::json, control_error> control_request(const std::string& path, const nlohmann::json& request,
                                                            std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Client of a streaming command (`logs` with "follow"): sends `request`, then calls on_line with
// each reply line as it arrives (the first is the command's reply, within `timeout`; later ones
// may take as long as they take) until on_line returns false, the server closes the connection
// (nullopt), or an error (returned).
std::optional<control_error> control_stream(const std::string& path, const nlohmann::json& request,
                                            const std::function<bool(const nlohmann::json&)>& on_line,
                                            std::chrono::milliseconds timeout = std::chrono::seconds(30));

// The human `ctl status` table (like supervisorctl's) from the status reply's array of
// {name, instance, pid, state, restarts, uptime_s, memory_bytes, cpu_seconds, last_exit}.
// Columns: NAME STATE PID UPTIME RESTARTS MEM CPU LAST EXIT; NAME is "name:instance" when a name
// has several instances.
std::string format_status_table(const nlohmann::json& instances);
// "0:00:05", "3:02:01", "2d 04:00:00"
std::string format_uptime(double seconds);

}  // namespace procsup::daemon
