// Where the programs' stdout and stderr go, and what procsup remembers of them. Targets "log"
// (procsup's log) and file paths both go through a pipe that the event loop reads: lines for
// the log, raw bytes for a size-rotated file (log_file.hpp) that procsup writes itself. Every
// line of either also lands in a bounded in-memory tail per instance, read back by
// `procsup ctl logs NAME [-n N] [-f]`. "inherit" hands the child procsup's own fds (no tail).
// One output_router per procsup run; loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "procsup/daemon/config.hpp"
#include "procsup/daemon/log_file.hpp"
#include "procsup/supervisor/event_loop.hpp"
#include "procsup/supervisor/launcher.hpp"

namespace procsup::daemon {

// One line of a program instance's output (without its newline).
struct output_line {
  std::uint64_t seq = 0;    // procsup-wide arrival order: merges several instances' tails
  std::string program;      // the program's name ("api")
  std::string id;           // the instance: "api", or "api:1" when it has several
  const char* stream = "";  // "stdout" | "stderr"
  std::string text;
};

// {"line":"...","program":"api","id":"api:1","stream":"stdout"}: one line of `ctl logs`.
nlohmann::json to_json(const output_line& line);

// The last lines of one instance: at most max_lines lines and max_bytes bytes of text, whichever
// bound is hit first (the oldest lines go).
class output_tail {
 public:
  static constexpr std::size_t default_max_lines = 1000;
  static constexpr std::size_t default_max_bytes = 256 << 10;

  explicit output_tail(std::size_t max_lines = default_max_lines, std::size_t max_bytes = default_max_bytes)
      : max_lines_(max_lines), max_bytes_(max_bytes) {}

  void push(output_line line);
  // The last n lines (all when n >= size()), oldest first.
  std::vector<output_line> last(std::size_t n) const;
  std::size_t size() const noexcept { return lines_.size(); }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  std::size_t max_lines_;
  std::size_t max_bytes_;
  std::deque<output_line> lines_;
  std::size_t bytes_ = 0;
};

class output_router {
 public:
  // Reads per wake-up of one pipe: a child that floods its output cannot starve the loop (epoll
  // is level-triggered and comes back); when procsup falls behind, the child blocks on its own
  // full pipe, nobody else does.
  static constexpr std::size_t read_chunk = 64 << 10;
  // A line without a newline is cut (and logged / kept) in pieces of this size.
  static constexpr std::size_t max_line = 4096;

  explicit output_router(event_loop& loop) : loop_(loop) {}
  ~output_router();
  output_router(const output_router&) = delete;
  output_router& operator=(const output_router&) = delete;

  // Before each launch of instance `id` of program `p` (loop thread): adds stdin (/dev/null),
  // stdout and stderr to `setup.fds` and returns the fds to close in the parent after the fork
  // (none: see below). A file target whose file cannot be opened falls back to procsup's log
  // (with an error logged).
  //
  // An instance's stdout and stderr pipes outlive its runs, as with runit: procsup holds the
  // write ends too, and a restart hands the same pipes to the next run. So an exit is not also an
  // EOF on two pipes (two wake-ups of procsup while the child is still exiting, ~0.2 ms of a
  // restart), a restart creates no pipes, and what an orphaned grandchild writes later still
  // reaches the instance's log. At the exit (run_ended) and again before reuse, what the run left
  // is read and its unfinished last line is ended. A changed target (reload) gets new pipes.
  std::vector<int> prepare(const program_config& p, const std::string& id, child_setup& setup);
  // A run of instance `id` ended (its process exited): what it left in its pipes is read and
  // logged, and an unfinished last line is ended, as an EOF would have done.
  void run_ended(const std::string& id);
  // Instance `id` is gone for good (reload removed or changed its program): its pipes' write ends
  // are closed, and their read ends close at EOF once nothing else writes to them.
  void release(const std::string& id);

  // Reads what is left in the pipes (bounded), writes / logs it and closes them (at shutdown).
  void flush_all();

  // The last n lines of the instances `ids`, merged in arrival order, oldest first.
  std::vector<output_line> tail(const std::vector<std::string>& ids, std::size_t n) const;

  // Calls sink with every new line of the instances `ids` until unfollow(key) or until sink
  // returns false. One follower per key (the daemon uses the control connection's fd).
  using line_sink = std::function<bool(const output_line&)>;
  void follow(int key, std::vector<std::string> ids, line_sink sink);
  void unfollow(int key);  // no-op for an unknown key; safe from inside a sink

  // The `logs` control command for the instances `ids` (the request's "name" already matched):
  // {"ok":true,"instances":[ids],"lines":[to_json...]} with the last request["lines"] (default
  // 50) lines; with request["follow"] == true the connection `connection` then gets every new
  // line through push(connection, to_json(line)) until it closes (see unfollow).
  nlohmann::json logs_command(const nlohmann::json& request, const std::vector<std::string>& ids, int connection,
                              std::function<bool(int, const nlohmann::json&)> push);

 private:
  struct file_state {
    std::unique_ptr<log_file> file;
    bool failing = false;  // an error was logged; the next one is not, until a write succeeds
  };
  struct pipe_state {
    std::string program;
    int instance = 0;
    std::string id;
    const char* stream;
    file_state* file = nullptr;  // null: lines go to procsup's log
    std::string partial;
  };
  struct follower {
    std::set<std::string> ids;
    line_sink sink;
    bool dead = false;
  };

  file_state* file_for(const program_config& p, const output_target& target, const std::string& id);
  void watch(int fd, pipe_state state);
  void read_some(int fd);
  void consume(pipe_state& p, std::string_view data);
  void emit_line(const pipe_state& p, std::string_view line);
  void close_pipe(int fd, pipe_state& p);
  // Reads and consumes at most `rounds` chunks of what is in the pipe now.
  void drain(int fd, pipe_state& p, int rounds);
  void end_run(int fd, pipe_state& p);
  struct held_pipe {
    int read_fd = -1;
    int write_fd = -1;
  };
  void retire(std::map<std::pair<std::string, int>, held_pipe>::iterator held);

  event_loop& loop_;
  std::map<int, pipe_state> pipes_;                     // by read end
  std::map<std::pair<std::string, int>, held_pipe> held_;  // by {instance id, 1|2}: reused pipes
  int devnull_ = -1;                                      // every instance's stdin
  std::map<std::string, file_state> files_;  // by path: instances and streams sharing a file share one
  std::map<std::string, output_tail> tails_;  // by instance id; kept across restarts
  std::map<int, follower> followers_;
  bool dispatching_ = false;
  std::uint64_t next_seq_ = 1;
};

}  // namespace procsup::daemon
