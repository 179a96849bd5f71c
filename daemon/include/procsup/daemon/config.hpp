// The procsup program's TOML config (issues 4 and 5) parsed into plain structs. Every error
// names file:line:col and the key; all errors of a file are collected, not just the first.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "procsup/supervisor/launcher.hpp"
#include "procsup/supervisor/types.hpp"

namespace procsup::daemon {

// [supervisor] policy and a program's strategy are the library's own restart_policy and
// strategy (types.hpp): same names in the config file as in to_string.
// When an instance counts as up: at exec (none), by the worker protocol, or by a rule for
// unmodified programs (docs/services.md): sd_notify READY=1, a newline on an fd, or a probe.
enum class readiness { none, protocol, notify, fd, tcp, http, exec };
enum class exit_rule { never, all_done };         // [supervisor] exit_when

// Where a child's stdout / stderr go: procsup's log (default), procsup's own fd, or a file.
struct output_target {
  enum class kind { log, inherit, file };
  kind where = kind::log;
  std::string path;  // kind::file: absolute (relative paths are taken from the config's directory)
  bool operator==(const output_target&) const = default;
};

struct supervisor_config {
  // Kernel containment: a cgroup per instance when procsup can make them (false: process
  // groups only). pid_namespace: run as PID 1 of a new PID namespace (procsup run --pid-namespace).
  bool cgroups = true;
  bool pid_namespace = false;
  restart_policy policy = restart_policy::one_for_one;
  int intensity = 5;                           // at most this many restarts ...
  std::chrono::milliseconds period{60'000};    // ... within this window, else give up
  std::string socket = "/run/procsup.sock";    // control socket
  exit_rule exit_when = exit_rule::never;      // all_done: exit 0 once every program has ended for good
  // Read-only HTTP endpoints (/metrics, /healthz, /readyz, /status): "host:port" or
  // "unix:/path"; empty: off (see docs/observability.md).
  std::string http;
};

// Limits the kernel enforces per instance through its cgroup (v2 controllers memory, cpu,
// pids, io). `line` is where the limits table is, for errors about the host.
struct cgroup_limits {
  std::optional<std::uint64_t> memory_max;   // memory.max, bytes
  std::optional<std::uint64_t> memory_high;  // memory.high, bytes
  std::optional<int> cpu_percent;            // cpu.max: "150%" = 1.5 CPUs
  std::optional<std::uint64_t> pids_max;     // pids.max
  std::optional<int> io_weight;              // io.weight, 1-10000
  int line = 0;
  int column = 0;
  bool any() const { return memory_max || memory_high || cpu_percent || pids_max || io_weight; }
  bool operator==(const cgroup_limits& o) const {  // where it is written does not count
    return memory_max == o.memory_max && memory_high == o.memory_high && cpu_percent == o.cpu_percent &&
           pids_max == o.pids_max && io_weight == o.io_weight;
  }
};

// health = { http | tcp | exec = ..., interval, timeout, failures, start_after } (docs/services.md).
struct health_config {
  readiness kind = readiness::none;  // tcp, http or exec: which probe
  std::string address;               // tcp / http
  std::vector<std::string> command;  // exec
  std::chrono::milliseconds interval{10'000};
  std::chrono::milliseconds timeout{2'000};
  int failures = 3;                  // consecutive failed checks that kill the instance
  std::chrono::milliseconds start_after{0};  // first check this long after the instance is ready
  bool operator==(const health_config&) const = default;
};

// Owner of the unix socket files (`socket_owner = "user:group"`); -1 leaves that id as created
// (procsup's own).
struct socket_file_owner {
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  bool operator==(const socket_file_owner&) const = default;
};

struct program_config {
  std::string name;
  std::vector<std::string> command;  // argv; command[0] is resolved at run time (resolve_executable)
  procsup::strategy strategy = procsup::strategy::restart;
  bool restart_on_exit = false;      // also restart after a clean exit (code in success_codes)
  std::vector<int> success_codes{0};
  int instances = 1;
  std::vector<std::pair<std::string, std::string>> env;  // added to procsup's environment, file order
  std::string cwd;
  std::optional<std::string> user;  // resolved at check time:
  std::optional<uid_t> uid;         //   getpwnam's uid / gid
  std::optional<gid_t> gid;
  std::vector<gid_t> groups;        //   and the user's supplementary groups (getgrouplist)
  std::string home;                 //   pw_dir and pw_shell: HOME and SHELL after the drop
  std::string shell;
  int stop_signal = 15;             // SIGTERM
  std::chrono::milliseconds stop_timeout{10'000};  // then SIGKILL to the whole process group
  backoff_policy backoff;  // the config sets initial and max; the library has the defaults
  std::vector<rlimit_setting> limits;  // soft == hard; keys nofile, nproc, as, data, stack, core, fsize, cpu
  cgroup_limits resources;             // limits.memory, memory_high, cpu = "150%", pids, io_weight
  output_target stdout_target;
  output_target stderr_target;
  std::uint64_t log_max_size = 10ULL << 20;  // rotate a file target at this size
  int log_keep = 5;                          // rotated files kept
  readiness ready = readiness::none;
  std::chrono::milliseconds ready_timeout{10'000};
  int ready_fd = 0;                        // ready = { fd = N }: the child's fd N (>= 3)
  std::string ready_address;               // ready = { tcp = "host:port" } / { http = "http://..." }
  std::vector<std::string> ready_command;  // ready = { exec = [...] }
  std::chrono::milliseconds ready_interval{100};  // how often a probe runs until ready
  std::chrono::milliseconds watchdog{0};   // ready = "notify": WATCHDOG=1 at least this often (0: off)
  std::optional<health_config> health;     // liveness checks while running
  // Start order: started once every instance of each of these programs is ready; stopped before them.
  std::vector<std::string> depends_on;
  bool restart_with_dependency = false;    // on_dependency_restart = "restart" (default "ignore")
  std::vector<std::string> sockets;        // held listening sockets: "tcp://host:port", "unix:///path"
  unsigned socket_mode = 0666;             // unix sockets' file mode
  socket_file_owner socket_owner;          // unix sockets' owner (socket_owner = "user:group")
  int depends_line = 0, depends_column = 0;  // where depends_on is written (cycle messages)
  std::chrono::milliseconds hang_timeout{0};  // 0 = no hang detection
  // Issue 20 (failure budget, container exit, environment); see docs/config.md.
  std::optional<int> max_restarts;                        // own budget; unset: [supervisor] intensity
  std::optional<std::chrono::milliseconds> restart_period;  //   and period
  bool essential = false;            // its end for good (fatal; strategy stop: any exit) ends procsup
  std::optional<int> exit_code;      // procsup's exit code then; nullopt = "propagate"
  std::vector<std::string> env_files;  // absolute paths, in order ("-" prefix kept: optional file)
  std::vector<std::pair<std::string, std::string>> file_env;  // their entries, read at load
  bool autostart = true;             // false: started only by `ctl start`
  int line = 0;                               // where the [[program]] table starts (for messages)
};

struct config {
  std::string path;  // the file it came from ("" for text parsed without a file)
  supervisor_config supervisor;
  std::vector<program_config> programs;
};

struct config_error {
  std::string file;
  int line = 0;
  int column = 0;
  std::string key;  // dotted path, e.g. "program[1].stop_timeout"; "" for syntax errors
  std::string message;
  std::string to_string() const;  // "file:line:col: key: message"
};

using config_result = std::variant<config, std::vector<config_error>>;

// Parses TOML text; `file` names it in messages and anchors relative output paths.
config_result parse_config(std::string_view text, const std::string& file);
// Reads and parses a file; an unreadable file is one error naming it.
config_result load_config(const std::string& file);

// Problems that are not errors, for `procsup check`: e.g. a command[0] that does not resolve
// now (at run time it is reported and handled by the program's strategy). "file:line: key: msg".
std::vector<std::string> config_warnings(const config& cfg);

// Units, exposed for tests and the CLI. Durations: "<int>ms|s|m|h". Sizes: "<int>" or
// "<int>B|KiB|MiB|GiB". Signals: "TERM", "SIGTERM" or a number. nullopt when malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
std::optional<std::uint64_t> parse_size(std::string_view text);
std::optional<int> parse_signal(std::string_view text);
std::string signal_name(int sig);  // "SIGTERM"; "SIG42" when unnamed

std::string_view to_string(readiness r);
std::string_view to_string(exit_rule r);

}  // namespace procsup::daemon
