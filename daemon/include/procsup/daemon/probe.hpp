// One check of a service from the outside (readiness probes and health checks,
// docs/services.md): a TCP connect, an HTTP GET, or a command's exit code. A check never blocks
// the event loop: TCP is a non-blocking connect watched on the loop, a command is a child
// watched by its pidfd, HTTP runs on a worker thread that posts its result back. Every check is
// bounded by its timeout.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "procsup/supervisor/event_loop.hpp"

namespace procsup::daemon {

struct probe_spec {
  enum class kind { tcp, http, exec } type = kind::tcp;
  std::string target;                // "host:port" or "http://host:port/path"
  std::vector<std::string> command;  // exec
  std::vector<std::string> env;      // exec: the command's environment
  std::chrono::milliseconds timeout{2'000};
  std::string describe() const;  // "GET /healthz", "tcp 127.0.0.1:6379", "exec pg_isready"
};

class http_worker;

// Runs checks of one spec, one at a time. The owner keeps it alive while a check runs;
// destroying it (or cancel()) drops the result of a check under way (a child is killed).
class probe {
 public:
  // ok, and what failed ("connection refused", "503", "exit 1", "timed out after 2000 ms").
  using done_fn = std::function<void(bool ok, const std::string& detail)>;
  probe(event_loop& loop, probe_spec spec, std::shared_ptr<http_worker> http);
  ~probe();
  probe(const probe&) = delete;
  probe& operator=(const probe&) = delete;

  void run(done_fn done);  // at most one at a time: a run while one is under way is ignored
  void cancel();
  bool busy() const noexcept { return busy_; }
  const probe_spec& spec() const noexcept { return spec_; }

 private:
  void finish(bool ok, const std::string& detail);
  void run_tcp();
  void run_exec();
  void run_http();
  void clear();

  event_loop& loop_;
  probe_spec spec_;
  std::shared_ptr<http_worker> http_;
  done_fn done_;
  bool busy_ = false;
  int fd_ = -1;                // tcp: the connecting socket
  pid_t child_ = 0;            // exec: the running command
  event_loop::timer_id timer_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // http: results after cancel are dropped
  std::uint64_t generation_ = 0;
};

// The thread HTTP checks run on (one for the daemon, started at the first HTTP check); it only
// posts results back to the loop.
std::shared_ptr<http_worker> make_http_worker(event_loop& loop);

}  // namespace procsup::daemon
