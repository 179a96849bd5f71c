// What /metrics serves: the counters procsup keeps from lifecycle events (exits by cause, the
// restart latency histogram), the snapshot the event loop hands to the HTTP thread, and its
// rendering in the Prometheus text exposition format (version 0.0.4).
#pragma once

#include <sys/types.h>

#include <array>
#include <cmath>
#include <vector>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <memory>
#include <utility>

#include <nlohmann/json.hpp>

#include "procsup/supervisor/cgroup.hpp"
#include "procsup/sys/unique_fd.hpp"
#include "procsup/supervisor/types.hpp"

namespace procsup::daemon {

// The bounded set of exit causes of procsup_program_exits_total{cause}.
enum class exit_cause_kind { exit, signal, hang, unhealthy, oom };
const char* to_string(exit_cause_kind k) noexcept;
// Classifies the `cause` text of an exited / crashed lifecycle event.
exit_cause_kind classify_exit_cause(std::string_view cause) noexcept;

struct latency_histogram {
  // Upper bounds in seconds; a restart's latency includes its backoff delay (100 ms and up
  // after the first), hence the long tail.
  static constexpr std::array<double, 16> bounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                 0.25,   0.5,   1,      2.5,   5,     10,    30,    60};
  std::array<std::uint64_t, bounds.size()> buckets{};  // not cumulative
  std::uint64_t count = 0;
  double sum = 0;
  void observe(double seconds);
};

// CPU, memory and processes of an instance; NaN where not known.
struct usage_sample {
  double cpu_seconds = NAN;
  double memory_bytes = NAN;
  double pids = NAN;
};

// Reads `pid`'s CPU time and resident set from /proc/PID/stat with one read(2) (for instances
// without a cgroup). Any thread.
usage_sample read_proc_usage(pid_t pid);
// The same from an fd of /proc/PID/stat kept open (one pread at offset 0, no path walk). The fd
// stays bound to that process: once it is gone (even if its pid is reused), the read fails and
// the sample is all NaN. Any thread.
usage_sample read_proc_usage_fd(int stat_fd);

// What /metrics shows of one instance.
struct instance_sample {
  std::string program;
  int index = 0;
  std::string id;
  process_state state = process_state::stopped;
  bool up = false;                 // has a live process
  int restarts = 0;
  double start_time_seconds = NAN;  // of the running process, since the epoch
  pid_t pid = 0;                            // its live process, 0 if none
  std::shared_ptr<const procsup::cgroup> cgroup;  // its cgroup, if it has one
  usage_sample usage;                       // filled by usage_cache on the HTTP thread
};

// The instances' CPU, memory and pids, read at most every usage_max_age per instance (and at
// once for a new process): reading 1,000 cgroups' files costs tens of milliseconds, which a
// scrape every second must not pay each time, and which is read off the event loop (the
// cgroup's files and /proc; no supervisor state). One thread only (the HTTP thread).
class usage_cache {
 public:
  static constexpr std::chrono::seconds usage_max_age{10};
  void fill(std::vector<instance_sample>& instances, std::chrono::steady_clock::time_point now);

 private:
  struct entry {
    pid_t pid = 0;
    sys::unique_fd stat_fd;  // /proc/PID/stat of `pid` (no cgroup), opened once per process
    std::chrono::steady_clock::time_point at{};
    usage_sample sample;
    bool seen = false;  // in the last fill (others are dropped)
  };
  std::map<std::string, entry> entries_;
};

// Fed by every lifecycle event, on the loop thread (not thread-safe).
class metrics_recorder {
 public:

  void on_event(const lifecycle_event& e);
  void gave_up() noexcept { gave_up_ = true; }
  // Drops what is known of an instance that no longer exists (after a reload).
  void forget(const std::string& id);

  const std::map<std::string, std::array<std::uint64_t, 5>>& exits() const noexcept { return exits_; }
  const latency_histogram& restart_latency() const noexcept { return latency_; }
  bool has_given_up() const noexcept { return gave_up_; }

 private:
  std::map<std::string, std::array<std::uint64_t, 5>> exits_;  // instance id -> count by cause
  std::map<std::string, std::chrono::system_clock::time_point> died_;  // awaiting its next spawn
  latency_histogram latency_;
  bool gave_up_ = false;
};

// Everything /metrics shows of the supervisor, copied on the loop thread.
struct metrics_snapshot {
  std::vector<instance_sample> instances;
  std::map<std::string, std::array<std::uint64_t, 5>> exits;
  latency_histogram restart_latency;
  bool gave_up = false;
  bool shutting_down = false;
};

// procsup's own process metrics (process_*): getrusage, /proc/self/stat and statm through fds kept
// open, the boot time of /proc/stat once, the open fd count from stat(/proc/self/fd). Any thread.
struct process_metrics {
  double cpu_seconds = 0;
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double open_fds = 0;
  double max_fds = 0;
  double start_time_seconds = 0;
  int threads = 0;
  static process_metrics read_self();
};

// The exposition text (label values escaped). Any thread.
std::string render_metrics(const metrics_snapshot& s, const process_metrics& self);

// Escapes a label value for the text format: backslash, double quote and newline.
void append_label_value(std::string& out, std::string_view value);

}  // namespace procsup::daemon
