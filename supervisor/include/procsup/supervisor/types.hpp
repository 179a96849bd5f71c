// The vocabulary of supervision: states, strategies, policies, lifecycle events, process info.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>

namespace procsup {

// fatal: a program over its own restart budget (max_restarts / restart_period); it stays down
// until started again by hand, while its siblings keep running.
enum class process_state { starting, running, stopping, stopped, failed, fatal };
const char* to_string(process_state s) noexcept;

// What a supervisor does when one of its children fails.
enum class strategy {
  restart,   // start a new instance (subject to the restart policy, intensity and backoff)
  stop,      // leave it stopped
  escalate,  // the supervisor itself fails: its parent (or owner) decides
};
const char* to_string(strategy s) noexcept;

// Which siblings are restarted with a failed child (Erlang/OTP's restart strategies).
enum class restart_policy {
  one_for_one,   // only the failed child
  one_for_all,   // all children: stopped in reverse start order, started again in order
  rest_for_one,  // the failed child and those started after it
};
const char* to_string(restart_policy p) noexcept;

enum class event_kind {
  spawned,       // a child process was forked / exec'd (pid set)
  ready,         // it finished init() (or exec'd, for plain programs) and serves
  exited,        // it exited cleanly (an expected stop, or a success code)
  crashed,       // it failed: signal, non-success exit, exception in handle(), hang, bad channel
  restarting,    // a new instance will start after `delay`
  stopped,       // it is stopped and will not be restarted
  escalated,     // its failure is handed to the parent supervisor / the owner
  gave_up,       // restart intensity exceeded: the supervisor stops its children and escalates
  spawn_failed,  // fork/exec failed (EAGAIN, missing binary...): retried with backoff or strategy
  fatal,         // the child exceeded its own restart budget: left down (state fatal), siblings unaffected
};
const char* to_string(event_kind k) noexcept;

struct lifecycle_event {
  event_kind kind{};
  std::string process_id;  // the child's id (or the supervisor's name for gave_up)
  pid_t pid = 0;
  std::chrono::system_clock::time_point time;
  std::string cause;       // how it died, why it restarts, ...
  int restarts = 0;        // restart count of that child so far
  std::chrono::milliseconds delay{0};  // restarting: the backoff delay
  int wait_status = -1;    // exited / crashed: the raw wait status (-1: none)
};

using event_sink = std::function<void(const lifecycle_event&)>;

// What a scrape of 1,000 instances needs of each, without process_info's strings
// (program::sample()).
struct process_sample {
  process_state state = process_state::stopped;
  pid_t pid = 0;
  int restart_count = 0;
  std::chrono::system_clock::time_point started_at{};
};

struct process_info {
  std::string id;
  process_state state = process_state::stopped;
  // The unit's detailed state (detail/unit_phase.hpp): "running", "stop_sigterm", "stop_sigkill",
  // "restarting", ... ("" for a nested supervisor).
  std::string phase;
  pid_t pid = 0;  // 0 when not running
  std::chrono::system_clock::time_point started_at{};
  int restart_count = 0;
  std::string last_error;   // how the last instance failed ("" if never)
  int last_exit_status = -1;  // raw wait status of the last instance (-1: none yet)
  strategy on_failure = strategy::restart;  // as supervisor::children() tells (its owner's)
};

// The error a send, start or stop fails with. what() names the process and the cause.
class process_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "exited with code 3", "killed by SIGSEGV (core dumped)".
std::string describe_wait_status(int status);
// "SIGSEGV" for 11; "SIG42" when unnamed. sys::signal_name (procsup/sys/signal.hpp), kept here
// for the library's users.
std::string signal_name(int sig);

// Restart backoff: the first restart after a stable run is delayed by `initial` (0: immediate);
// each further consecutive failure doubles the delay (starting from max(initial, step)) up to
// `max`. A child that stayed up `reset_after` counts as stable again. These defaults are the only
// ones: supervisor_options, program_options and the procsup program's config all start from them.
struct backoff_policy {
  std::chrono::milliseconds initial{0};
  std::chrono::milliseconds step{100};
  std::chrono::milliseconds max{30'000};
  std::chrono::milliseconds reset_after{10'000};
  // The delay before the restart after `consecutive_failures` failures in a row (1: the first).
  std::chrono::milliseconds delay(int consecutive_failures) const;
  bool operator==(const backoff_policy&) const = default;
};

}  // namespace procsup
