// procsup::program: the handle of a supervised plain program (supervisor::spawn_program), for
// its owner (the procsup daemon): its state, signals, readiness from outside (sd_notify,
// probes), health kills and requests to a protocol worker. A copyable handle on the child the
// supervisor keeps; empty (false) when default-constructed. Loop-thread calls unless noted.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "procsup/supervisor/cgroup.hpp"
#include "procsup/supervisor/types.hpp"

namespace procsup {

namespace detail { class unit; }

class program {
 public:
  program() = default;
  explicit operator bool() const noexcept { return unit_ != nullptr; }

  const std::string& id() const noexcept;
  process_info info() const;   // any thread
  process_sample sample() const;  // any thread: info() without its strings
  process_state state() const; // any thread
  // The cgroup its instances run in (null: its process group only).
  const std::shared_ptr<procsup::cgroup>& cgroup() const noexcept;

  void signal(int sig);  // to the running instance's process group
  // Ready later than exec (program_options::ready_later): `pid` is the instance that is ready
  // (a stale one is ignored), `how` says by what rule.
  void mark_ready(pid_t pid, std::string how);
  void extend_start_timeout(std::chrono::milliseconds more);
  // SIGKILL the instance, reporting `cause` as how it failed (watchdog, health check).
  void kill_with_cause(std::string cause);

  // Protocol workers: one request; `done` runs on the loop thread with the reply body or why not.
  using reply_done = std::function<void(bool ok, std::string body_or_error)>;
  void send_bytes_async(std::vector<std::byte> body, reply_done done);

 private:
  friend class supervisor;
  explicit program(std::shared_ptr<detail::unit> u) : unit_(std::move(u)) {}
  std::shared_ptr<detail::unit> unit_;
};

}  // namespace procsup
