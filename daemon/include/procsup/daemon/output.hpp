// Where the programs' stdout and stderr go: procsup's log (through a pipe the event loop reads),
// procsup's own fds (inherit), or a file. One output_router per procsup run.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "procsup/daemon/config.hpp"
#include "procsup/supervisor/event_loop.hpp"
#include "procsup/supervisor/launcher.hpp"

namespace procsup::daemon {

class output_router {
 public:
  explicit output_router(event_loop& loop) : loop_(loop) {}
  ~output_router();
  output_router(const output_router&) = delete;
  output_router& operator=(const output_router&) = delete;

  // Before each launch of instance `id` of program `p` (loop thread): adds stdin (/dev/null),
  // stdout and stderr to `setup.fds` and returns the fds to close in the parent after the fork.
  std::vector<int> prepare(const program_config& p, const std::string& id, child_setup& setup);

  // Logs what is left in the pipes and closes them (at shutdown).
  void flush_all();

 private:
  struct pipe_state {
    std::string id;
    const char* stream;
    std::string partial;
  };
  void watch(int fd, const std::string& id, const char* stream);
  void read_some(int fd);
  void log_line(const pipe_state& p, std::string_view line);

  event_loop& loop_;
  std::map<int, pipe_state> pipes_;
};

}  // namespace procsup::daemon
