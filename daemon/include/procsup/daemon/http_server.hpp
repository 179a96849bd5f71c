// `[supervisor] http`: read-only HTTP endpoints for orchestrators (GET /metrics, /healthz,
// /readyz, /status) on a thread of their own (Boost.Beast over one Asio io_context). The thread
// never touches supervisor state: every answer is computed on the supervisor's event loop
// through `post`, with a timeout, and only rendered on the HTTP thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "procsup/daemon/metrics.hpp"

namespace procsup::daemon {

// Why `address` is not a valid `http` setting ("" when off is fine: nullopt); for config checks.
// Valid: "IPv4:port", "[IPv6]:port", "localhost:port", "unix:/absolute/path".
std::optional<std::string> http_address_error(const std::string& address);

struct http_limits {
  std::size_t max_connections = 64;      // the oldest idle one makes room for a new one
  std::size_t max_request_bytes = 8192;  // request line + headers; a request has no body
  std::chrono::milliseconds idle_timeout{10'000};    // to receive a request / send a response
  std::chrono::milliseconds loop_timeout{2'000};     // for the event loop's answer (/metrics ...)
  std::chrono::milliseconds health_timeout{1'000};   // /healthz: 503 when the loop is slower
};

// What the endpoints show. Called on the event loop thread only (through `post`).
class http_source {
 public:
  virtual ~http_source() = default;
  virtual nlohmann::json status() = 0;  // the array `ctl status --json` prints
  virtual metrics_snapshot metrics() = 0;
};

class http_server {
 public:
  // Queues a task on the event loop. Any thread.
  using poster = std::function<void(std::function<void()>)>;

  // Binds and listens now (so that a bad address is a start error naming it), serves from a
  // new thread. `source` and `post` must outlive the server.
  static std::variant<std::unique_ptr<http_server>, std::string> open(const std::string& address, http_source& source,
                                                                      poster post, http_limits limits = {});
  // Closes every connection and joins the thread. Not from the HTTP thread.
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  // What it listens on, with the port the kernel chose for ":0".
  const std::string& address() const noexcept;

  struct impl;

 private:
  explicit http_server(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace procsup::daemon
