// The control socket: a Unix stream socket, owner-only (0600), one JSON request per line ->
// one JSON reply per line. The server is driven by the daemon's epoll loop (no thread of its
// own); the client is what `procsup ctl` uses.
//
// Requests are {"cmd":NAME,...}; replies {"ok":true,...} or {"ok":false,"error":"..."}. The
// commands (status, start, stop, restart, signal, logs, shutdown, reload, send), their fields
// and replies are one table, next to their handlers: daemon/src/commands.cpp, listed by
// control_commands() below (docs/cli.md). A followed `logs` streams one JSON object per output
// line on the same connection until the client closes it; start / stop / restart are answered
// once done. Limits (line size, connections, back-pressure, idle timeout):
// docs/control-socket.md.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace procsup::daemon {

// One command of the control grammar: its name, its request and its reply, as JSON sketches.
struct control_command {
  std::string_view name;
  std::string_view request;
  std::string_view reply;
};
// Every command the daemon's control socket takes, in the order of its table (commands.cpp).
std::vector<control_command> control_commands();

struct control_error {
  int error = 0;        // errno
  std::string message;  // names the socket path
};

// What one connection may hold and how long it may sit still. The defaults are what procsup
// uses (docs/control-socket.md); tests pass smaller ones.
struct control_limits {
  std::size_t max_line = 1 << 20;           // a longer request: error, then the connection closes
  std::size_t max_connections = 64;         // open connections of all uids together ...
  std::size_t root_reserve = 8;             // ... plus these, for root only
  std::size_t max_per_uid = 48;             // connections of one uid other than root
  std::size_t pause_output = 256 << 10;     // unsent replies over this: no request is read or parsed
  std::size_t max_pending_output = 64 << 20;  // unsent replies over this (one huge reply): close
  std::size_t max_pending_push = 4 << 20;   // push() to a follower that does not read: close
  std::size_t batch = 32;                   // requests answered per readiness of one connection
  // A connection that has sent no complete request and had none of its output taken for this
  // long is closed. Exempt: a connection waiting for a deferred reply, and a follower (`logs -f`)
  // with nothing left to read. 0: never.
  std::chrono::milliseconds idle_timeout{10'000};
};

// How the server tells the event loop which fds to watch and when to call it back. `added`,
// `interest` and `removed` are needed for a working server; without the timer hooks idle
// connections are never closed.
struct control_fd_hooks {
  std::function<void(int fd)> added;  // watch fd for readability (EPOLLIN)
  // What fd waits for from now on: input (EPOLLIN) and / or room to write (EPOLLOUT); neither
  // still reports EPOLLHUP / EPOLLERR. Called only when it changes.
  std::function<void(int fd, bool readable, bool writable)> interest;
  std::function<void(int fd)> removed;  // called just before fd is closed
  // A one-shot timer: call fn after `after` (on the loop). Returns an id for cancel_timer.
  std::function<std::uint64_t(std::chrono::milliseconds after, std::function<void()> fn)> add_timer;
  std::function<void(std::uint64_t id)> cancel_timer;
};

class control_server {
 public:
  using handler = std::function<nlohmann::json(const nlohmann::json& request)>;
  using clock = std::chrono::steady_clock;

  // Creates, binds (umask 0177: mode 0600 from the start) and listens on `path`. A stale socket
  // (nobody accepting) is replaced; a live one (another procsup) or a non-socket file at `path`
  // is an error. The socket file is removed again by the destructor.
  static std::variant<std::unique_ptr<control_server>, control_error> open(const std::string& path, handler h,
                                                                           control_fd_hooks hooks = {},
                                                                           control_limits limits = {});
  ~control_server();
  control_server(const control_server&) = delete;
  control_server& operator=(const control_server&) = delete;

  int listen_fd() const noexcept { return listen_fd_; }
  std::vector<int> connection_fds() const;
  bool owns(int fd) const noexcept { return fd == listen_fd_ || connections_.count(fd) != 0; }
  const std::string& path() const noexcept { return path_; }
  const control_limits& limits() const noexcept { return limits_; }
  // Whether the idle timer is armed (it is while any connection is open, and only then).
  bool timer_armed() const noexcept { return timer_ != 0; }

  // The loop calls this with the epoll events of fd (the listening fd or a connection). On the
  // listening fd: accepts new peers (SO_PEERCRED: root or the socket owner's uid only, within
  // the connection limits). On a connection: reads at most one chunk, answers at most `batch`
  // complete lines through the handler while the unsent output is under pause_output, sends;
  // EOF stops the reading for good; EPOLLHUP / EPOLLERR close it after that last pass. Never
  // throws; a handler that throws becomes {"ok":false,"error":what}.
  void on_event(int fd, std::uint32_t epoll_events);
  void on_readable(int fd);  // on_event(fd, EPOLLIN)
  void on_writable(int fd);  // on_event(fd, EPOLLOUT)

  // Whether a new connection of `uid` is let in while `open` connections are open, `of_uid` of
  // them of that uid: a uid other than root holds at most max_per_uid and all together at most
  // max_connections; root is not capped per uid and has root_reserve slots beyond the total.
  static bool admits(const control_limits& limits, uid_t uid, std::size_t open, std::size_t of_uid) noexcept;

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
  // when that connection is gone (before its fd can be reused). A reply {"ok":true,
  // "follow":true,...} marks the connection as a follower (see control_limits::idle_timeout).
  int current_connection() const noexcept { return serving_fd_; }
  // Queues `message` as one unsolicited JSON line on connection `fd` and sends what the socket
  // takes now (the rest when it is writable, as for replies). Loop thread. Returns false when fd
  // is not an open connection, its peer has closed, or it was closed now because more than
  // max_pending_push bytes were waiting (a follower that does not read is dropped, it never
  // grows procsup's memory). Never throws.
  bool push(int fd, const nlohmann::json& message) noexcept;

 private:
  struct connection {
    uid_t uid = 0;
    std::string in;             // bytes received, not yet answered
    std::string out;            // replies not yet written
    bool input_done = false;    // EOF read (or the input is refused): nothing more is read
    bool closing = false;       // close once `out` is sent, answer nothing more
    bool follower = false;      // a reply said "follow": true
    bool reading = true;        // the interest set as last told to the loop
    bool writing = false;
    std::uint64_t waiting = 0;  // serial of a deferred reply not yet completed (0: none)
    clock::time_point last_progress{};  // accepted, a request, output taken or queued
    bool reserved = false;      // took one of reserve_'s fds (procsup was out of fds)
  };
  control_server(std::string path, handler h, control_fd_hooks hooks, control_limits limits);
  void accept_all();
  bool refuse_one_out_of_fds(int error);
  // Answers buffered lines (at most `batch`) while nothing blocks them. False: the connection
  // was closed.
  bool serve(int fd, connection& c);
  bool has_request(const connection& c) const noexcept;
  bool can_serve(const connection& c) const noexcept;
  // Sends what the socket takes; false if the peer is gone (the connection was closed).
  bool flush(int fd, connection& c);
  // After every change: closes a connection that is done, else tells the loop what it waits for.
  void settle(int fd, connection& c);
  void append(connection& c, const std::string& line);
  void arm_timer();
  void on_timer();
  void close_connection(int fd);

  std::string path_;
  handler handler_;
  control_fd_hooks hooks_;
  control_limits limits_;
  int listen_fd_ = -1;
  // Held so that, out of fds (EMFILE), a waiting connection can still be taken off the listen
  // queue and told why: else the listening socket stays readable and the loop spins on it.
  int spare_fd_ = -1;
  // Out of fds, these few are given up one at a time to *serve* a connection (an operator's
  // `ctl status` works while every program's launch fails with EMFILE) and taken back when it
  // closes; spare_fd_ is the last one, for the refusal.
  static constexpr std::size_t reserved_fds = 4;
  std::vector<int> reserve_;
  int accept_from_reserve();
  uid_t owner_uid_ = 0;
  dev_t dev_ = 0;  // identity of the socket file we created, so we never unlink someone else's
  ino_t ino_ = 0;
  std::map<int, connection> connections_;
  std::map<uid_t, std::size_t> per_uid_;  // open connections per peer uid
  std::uint64_t timer_ = 0;               // the idle timer's id (0: not armed)
  int serving_fd_ = -1;                   // the connection whose request the handler is answering
  bool deferred_now_ = false;             // the handler called defer()
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
