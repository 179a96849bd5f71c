// procsup_echo_worker: an exec'd worker binary that links the worker runtime (worker::main) and
// speaks the channel, for the supervisor tests. Its handle() mirrors the forked test behavior:
//   "boom" throws std::runtime_error("boom"); "segv" dies by SIGSEGV; "pid" answers its pid;
//   "start-info" answers what init(start_info) saw; anything else answers "ok:" + the text.
#include <signal.h>
#include <unistd.h>

#include <stdexcept>
#include <string>

#include "procsup/worker/main.hpp"

namespace {
struct echo {
  procsup::start_info info;
  void init(const procsup::start_info& i) { info = i; }

  std::string handle(const std::string& s) {
    if (s == "start-info")
      return "instance=" + std::to_string(info.instance) + " restarts=" + std::to_string(info.restart_count) +
             " last_error=" + info.last_error;
    if (s == "boom") throw std::runtime_error("boom");
    if (s == "segv") {
      // An ASan build of this binary installs its own SIGSEGV handler at startup (exit code 1):
      // die by the signal itself, as an uninstrumented worker would.
      ::signal(SIGSEGV, SIG_DFL);
      ::raise(SIGSEGV);
    }
    if (s == "pid") return std::to_string(::getpid());
    return "ok:" + s;
  }
};
}  // namespace

int main() { return procsup::worker::main(echo{}); }
