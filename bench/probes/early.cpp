// The bare respawn loop (bench/peers/bare.c), but starting the replacement on the kernel's
// taskstats exit notice, which comes ~0.23 ms before the dead child's pidfd is readable
// (deathnotice.cpp): the replacement is cloned at once and waits in poll() on the old pidfd
// before its execve, so it never runs while the old instance still holds its resources. A
// prototype (no signal reset, no error handling) to see whether that lowers the restart floor:
//   g++ -O2 -o /tmp/early bench/probes/early.cpp
//   /tmp/probe 100 100 /tmp/early 100 -- /tmp/peerchild /tmp/procsup-probe.sock long x
// against the same with bench/peers/bare.c. Needs CAP_NET_ADMIN (the taskstats listener).
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/signalfd.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include "taskstats.hpp"
extern char** environ;
static char** cmd; static int waitfd = -1;
static char stack[256 * 1024];
static int child(void*) {
  sigset_t none; sigemptyset(&none);
  if (waitfd >= 0) { pollfd p{waitfd, POLLIN, 0}; poll(&p, 1, 1000); }
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execve(cmd[0], cmd, environ); _exit(127);
}
static pid_t spawn(int wait_on) {
  waitfd = wait_on; return clone(child, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, nullptr);
}
int main(int argc, char** argv) {
  if (argc < 4) { fprintf(stderr, "usage: early N -- cmd [args...]\n"); return 2; }
  int n = atoi(argv[1]); cmd = argv + 3;
  sigset_t m; sigemptyset(&m); sigaddset(&m, SIGCHLD); sigaddset(&m, SIGTERM); sigprocmask(SIG_BLOCK, &m, nullptr);
  int sfd = signalfd(-1, &m, SFD_CLOEXEC | SFD_NONBLOCK);
  int fam = -1;
  const int s = taskstats_probe::open_listener(fam);
  if (s < 0) { perror("early: taskstats listener"); return 1; }
  std::vector<pid_t> pids(n); std::vector<int> pfds(n);
  for (int i = 0; i < n; i++) { pids[i] = spawn(-1); pfds[i] = syscall(SYS_pidfd_open, pids[i], 0); }
  static char b[65536];
  for (;;) {
    pollfd p[2] = {{s, POLLIN, 0}, {sfd, POLLIN, 0}}; poll(p, 2, -1);
    if (p[0].revents) {
      int k; while ((k = recv(s, b, sizeof b, MSG_DONTWAIT)) > 0) {
        taskstats_probe::for_each_exit(b, k, fam, [&](pid_t dead, const taskstats*) {
          for (int i = 0; i < n; i++)
            if (pids[i] == dead) { int old = pfds[i]; pids[i] = spawn(old); close(old); pfds[i] = syscall(SYS_pidfd_open, pids[i], 0); }
        });
      }
    }
    if (p[1].revents) { signalfd_siginfo si; bool term = false; while (read(sfd, &si, sizeof si) == sizeof si) if (si.ssi_signo == SIGTERM) term = true;
      while (waitpid(-1, nullptr, WNOHANG) > 0) {}
      if (term) { for (pid_t q : pids) kill(q, SIGTERM); while (wait(nullptr) > 0) {} return 0; } }
  }
}
