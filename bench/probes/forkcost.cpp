// fork cost against the number of mappings and fds in the parent: fork + child _exit + waitpid,
// with N memfd mappings (MADV_DONTFORK when DF is set in the environment) or 2N open fds, and
// optionally close_range in the child. Showed ~1.4 us per mapping per fork, don't-fork or not.
//   g++ -O2 -o /tmp/forkcost bench/probes/forkcost.cpp
//   /tmp/forkcost N MAPS(0|1) FDS(0|1) CLOSE(0|1); DF=1 /tmp/forkcost 1000 1 0 0
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <linux/close_range.h>
#include <sys/syscall.h>
using clk = std::chrono::steady_clock;
int main(int argc, char** argv) {
  int n = atoi(argv[1]); bool maps = atoi(argv[2]); bool fds = atoi(argv[3]); bool closeall = atoi(argv[4]);
  for (int i = 0; i < n; ++i) {
    if (maps) {
      int fd = memfd_create("x", MFD_CLOEXEC); ftruncate(fd, 1<<17);
      void* p = mmap(nullptr, 1<<17, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0);
      ((char*)p)[0]=1; if (getenv("DF")) madvise(p, 1<<17, MADV_DONTFORK); close(fd);
    }
    if (fds) { eventfd(0, EFD_CLOEXEC); eventfd(0, EFD_CLOEXEC); }
  }
  int iters = 300; auto t0 = clk::now();
  for (int i = 0; i < iters; ++i) {
    pid_t p = fork();
    if (p == 0) { if (closeall) syscall(SYS_close_range, 3, ~0U, 0); _exit(0); }
    waitpid(p, nullptr, 0);
  }
  double us = std::chrono::duration<double, std::micro>(clk::now() - t0).count() / iters;
  printf("n=%d maps=%d fds=%d close=%d: %.1f us per fork+exit+wait\n", n, maps, fds, closeall, us);
}
