// The restart floor of one child: SIGKILL it, wait on its pidfd, spawn it again (fork+execve, or
// posix_spawn), until the new instance reports its start (bench/peers/child.c, over a datagram).
//   gcc -O2 -static -o /tmp/peerchild bench/peers/child.c; g++ -O2 -o /tmp/floor bench/probes/floor.cpp
//   /tmp/floor 0|1 /tmp/peerchild      (0 fork+execve, 1 posix_spawn)
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <sys/epoll.h>
#include <spawn.h>
#include <signal.h>
#include <unistd.h>
#include <time.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <algorithm>
static long long now() { timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec*1000000000LL+ts.tv_nsec; }
int main(int argc, char** argv) {
  int mode = atoi(argv[1]); const char* bin = argc > 2 ? argv[2] : "/tmp/peerchild";
  const char* sp = "/tmp/procsup-floor.sock"; unlink(sp);
  int s = socket(AF_UNIX, SOCK_DGRAM, 0); sockaddr_un a{}; a.sun_family = AF_UNIX; strcpy(a.sun_path, sp);
  bind(s, (sockaddr*)&a, sizeof a);
  char* args[] = {(char*)bin, (char*)sp, (char*)"long", (char*)"x", nullptr};
  char* envp[] = {(char*)"PATH=/usr/bin:/bin", nullptr};
  auto spawn = [&]() {
    pid_t p;
    if (mode == 1) { posix_spawn(&p, args[0], nullptr, nullptr, args, envp); return p; }
    p = fork();
    if (p == 0) { execve(args[0], args, envp); _exit(127); }
    return p;
  };
  std::vector<long long> lat, wake, forkd;
  pid_t pid = spawn(); char buf[256]; recv(s, buf, sizeof buf, 0);
  for (int i = 0; i < 60; ++i) {
    int pfd = syscall(SYS_pidfd_open, pid, 0);
    int ep = epoll_create1(0); epoll_event e{}; e.events = EPOLLIN; epoll_ctl(ep, EPOLL_CTL_ADD, pfd, &e);
    usleep(20000);
    long long t0 = now(); kill(pid, SIGKILL);
    epoll_wait(ep, &e, 1, -1); long long t1 = now(); siginfo_t si; waitid(P_PIDFD, pfd, &si, WEXITED); close(pfd); close(ep);
    pid = spawn(); long long t2 = now(); ssize_t n = recv(s, buf, sizeof buf - 1, 0); buf[n] = 0;
    long long ts; int cp, pp; sscanf(buf, "S %d %d %lld", &cp, &pp, &ts); lat.push_back(ts - t0); wake.push_back(t1-t0); forkd.push_back(t2-t1);
  }
  kill(pid, SIGKILL); waitpid(pid, nullptr, 0);
  std::sort(lat.begin(), lat.end()); std::sort(wake.begin(), wake.end()); std::sort(forkd.begin(), forkd.end());
  printf("mode=%d median %.3f ms p90 %.3f; kill->wake %.3f; spawn call %.3f\n", mode, lat[30]/1e6, lat[54]/1e6, wake[30]/1e6, forkd[30]/1e6);
}
