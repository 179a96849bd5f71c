// How much earlier than a pidfd (or waitpid) does the kernel's taskstats exit notice say that a
// child died? The notice (TASKSTATS_CMD_NEW, per-CPU listeners) is sent from do_exit() before the
// dying task tears down its memory and files; the pidfd becomes readable only at the end of
// do_exit (exit_notify). Forks a child that sleeps, SIGKILLs it, and times both from kill().
// Needs CAP_NET_ADMIN and the initial network namespace (the taskstats family lives there).
//   g++ -O2 -o /tmp/deathnotice bench/probes/deathnotice.cpp && /tmp/deathnotice 40
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>
#include "taskstats.hpp"
static long long now() { timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec*1000000000LL+ts.tv_nsec; }
int main(int argc, char** argv) {
  int fam = -1;
  const int s = taskstats_probe::open_listener(fam);
  if (s < 0) { perror("deathnotice: taskstats listener (family missing outside the initial network namespace?)"); return 1; }
  static char b[65536];
  int ep = epoll_create1(0); epoll_event e{}; e.events = EPOLLIN; e.data.fd = s; epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
  int rounds = argc > 1 ? atoi(argv[1]) : 20; std::vector<long long> dts, dpf;
  for (int i = 0; i < rounds; i++) {
    pid_t c = fork(); if (c == 0) { pause(); _exit(0); }
    int pfd = syscall(SYS_pidfd_open, c, 0); e.data.fd = pfd; epoll_ctl(ep, EPOLL_CTL_ADD, pfd, &e);
    usleep(20000);
    long long t0 = now(); kill(c, SIGKILL); long long tts = 0, tpf = 0; int code = -1;
    while (!tts || !tpf) {
      epoll_event ev[4]; int k = epoll_wait(ep, ev, 4, 1000);
      for (int j = 0; j < k; j++) {
        if (ev[j].data.fd == pfd) { if (!tpf) tpf = now(); epoll_ctl(ep, EPOLL_CTL_DEL, pfd, nullptr); }
        else { long long t = now(); int m = recv(s, b, sizeof b, MSG_DONTWAIT); if (m <= 0) continue;
          taskstats_probe::for_each_exit(b, m, fam, [&](pid_t p, const taskstats* st) {
            if (p == c && !tts) { tts = t; code = st ? (int)st->ac_exitcode : -2; }
          }); }
      }
      if (k == 0) break;
    }
    close(pfd); waitpid(c, nullptr, 0);
    dts.push_back(tts - t0); dpf.push_back(tpf - t0); if (i == 0) printf("exitcode %d\n", code);
  }
  std::sort(dts.begin(), dts.end()); std::sort(dpf.begin(), dpf.end());
  printf("taskstats median %.1f us, pidfd median %.1f us\n", dts[dts.size()/2]/1e3, dpf[dpf.size()/2]/1e3);
}
