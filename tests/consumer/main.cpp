// Uses the installed library: a supervised forked counter, and a restart seen through
// init(start_info). Exits 0 when the replies are right.
#include <procsup/procsup.hpp>

#include <csignal>
#include <cstdio>

struct counter {
  int n = 0;
  int restarts = 0;
  void init(const procsup::start_info& info) { restarts = info.restart_count; }
  int handle(int by) {
    if (by < 0) std::raise(SIGSEGV);  // a poison request
    return by == 0 ? restarts : n += by;
  }
};

int main() {
  procsup::supervisor sup({.name = "consumer", .log = false});
  auto c = sup.spawn(counter{});
  c.send(2).get();
  const int v = c.send(3).get();
  std::printf("consumer: counter = %d\n", v);
  auto poison = c.send(-1);
  auto behind = c.send(0);  // answered by the restarted instance
  bool failed = false;
  try {
    poison.get();
  } catch (const procsup::process_error&) {
    failed = true;
  }
  const int restarts = behind.get();
  std::printf("consumer: poison failed = %d, restarts seen by the next instance = %d\n", failed, restarts);
  sup.stop();
  return v == 5 && failed && restarts == 1 ? 0 : 1;
}
