// The procsup program's kernel containment: one cgroup v2 per program instance, under a
// subtree of procsup's own cgroup named after its control socket (so that a restarted procsup
// finds, kills and removes what a SIGKILLed predecessor left). Falls back to process groups,
// saying once what that cannot contain.
//
//   <procsup's cgroup>/procsup-<hash of the socket path>/
//       supervisor/    procsup itself, only when controllers must be enabled below
//       p.api          one per instance ("p." + instance id)
//       p.web:0
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "procsup/daemon/config.hpp"
#include "procsup/supervisor/cgroup.hpp"

namespace procsup::daemon {

// Limits this host cannot enforce, as config errors ("memory limit needs the cgroup v2 memory
// controller; this host has it on cgroup v1"). For `check` and `run`.
std::vector<config_error> containment_errors(const config& cfg);

class containment {
 public:
  // Decides at start (after the control socket is ours: the socket is the lock that makes the
  // subtree ours too). Sweeps a predecessor's leftovers first.
  containment(const config& cfg);
  containment(const containment&) = delete;
  containment& operator=(const containment&) = delete;

  bool active() const noexcept { return !root_.empty(); }
  // Why not active ("" when active), e.g. "no cgroup2 filesystem is mounted".
  const std::string& reason() const noexcept { return reason_; }
  const std::string& root() const noexcept { return root_; }
  // Why the limits of the config cannot be applied ("" when they can, or there are none).
  const std::string& limit_error() const noexcept { return limit_error_; }
  // What the sweep at start found and killed (pids), and where.
  const std::vector<pid_t>& swept() const noexcept { return swept_; }

  // The cgroup of instance `id` (created now, limits written), or null with `error` set when it
  // cannot be had (the instance then runs with its process group only).
  std::shared_ptr<procsup::cgroup> instance(const std::string& id, const cgroup_limits& limits, std::string& error);
  std::shared_ptr<procsup::cgroup> find(const std::string& id) const;
  // The instance is gone for good (reload removed it): kill what is left, remove its cgroup.
  void release(const std::string& id);
  // At exit: kill every instance cgroup, wait (up to `wait_ms`) for them to empty, remove the
  // subtree. Returns the pids that were still there.
  std::vector<pid_t> finish(int wait_ms);

 private:
  std::string root_;    // the subtree's directory ("" when inactive)
  std::string reason_;
  std::string limit_error_;  // controllers for the limits could not be enabled
  std::vector<pid_t> swept_;
  std::map<std::string, std::shared_ptr<procsup::cgroup>> instances_;
};

}  // namespace procsup::daemon
