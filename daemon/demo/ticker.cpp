// procsup-demo-ticker: the built-in demo's well-behaved program: a line every two seconds, and a
// clean exit on SIGTERM (what procsup sends when it stops it).
#include <signal.h>
#include <unistd.h>

#include <cstdio>

namespace {
volatile sig_atomic_t stop = 0;
void on_term(int) { stop = 1; }
}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  struct sigaction sa {};
  sa.sa_handler = on_term;
  ::sigaction(SIGTERM, &sa, nullptr);
  for (unsigned n = 1; !stop; ++n) {
    std::printf("tick %u (pid %d, unaffected by the decoder's crashes)\n", n, static_cast<int>(::getpid()));
    ::sleep(2);
  }
  std::printf("ticker %d: SIGTERM received, exiting cleanly\n", static_cast<int>(::getpid()));
  return 0;
}
