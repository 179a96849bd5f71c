// Restart latency of any supervisor: runs it (argv after KILLS), waits for N children to report
// their start (bench/peers/child.c sending to /tmp/procsup-probe.sock), then SIGKILLs them round-robin
// and prints kill -> new instance's own start timestamp. Used to split procsup's cost (toggle
// --log-level off, stdout = "inherit") against bench/peers/bare.c in the same conditions.
//   g++ -O2 -o /tmp/probe bench/probes/probe.cpp
//   /tmp/probe 100 80 build/release/daemon/procsup run CONFIG   (CONFIG: 100 programs running
//   ["/tmp/peerchild", "/tmp/procsup-probe.sock", "long", "x"])
// probe N KILLS cmd...: runs cmd (a supervisor) whose children send "S pid ppid ts id" datagrams to /tmp/procsup-probe.sock;
// waits for N starts, then SIGKILLs children round-robin and reports kill->new-start latency.
// PROBE_GAP_US: pause between kills (default 50000). PROBE_TRACE=1: writes "KILL pid" into
// ftrace's trace_marker just before each kill, to read one restart's path in a trace:
//   cd /sys/kernel/tracing && echo 1 > events/sched/enable && echo 1 > events/syscalls/enable
//   echo 1 > tracing_on; PROBE_TRACE=1 /tmp/probe 100 20 ...; echo 0 > tracing_on; less trace
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <signal.h>
#include <fcntl.h>
#include <unistd.h>
#include <time.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <algorithm>
static long long now() { timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec*1000000000LL+ts.tv_nsec; }
int main(int argc, char** argv) {
  int n = atoi(argv[1]), kills = atoi(argv[2]);
  const char* sp = "/tmp/procsup-probe.sock"; unlink(sp);
  int s = socket(AF_UNIX, SOCK_DGRAM, 0); sockaddr_un a{}; a.sun_family = AF_UNIX; strcpy(a.sun_path, sp);
  bind(s, (sockaddr*)&a, sizeof a);
  pid_t sup = fork();
  if (sup == 0) { int fd = open("/dev/null", 1); dup2(fd, 1); dup2(fd, 2); execv(argv[3], argv + 3); _exit(127); }
  std::vector<int> pids; char buf[256];
  while ((int)pids.size() < n) { ssize_t k = recv(s, buf, sizeof buf - 1, 0); buf[k] = 0; int p; sscanf(buf, "S %d", &p); pids.push_back(p); }
  usleep(1500000);
  std::vector<long long> lat;
  const char* gap = getenv("PROBE_GAP_US");
  const int marker = getenv("PROBE_TRACE") ? open("/sys/kernel/tracing/trace_marker", O_WRONLY | O_CLOEXEC) : -1;
  for (int i = 0; i < kills; ++i) {
    int idx = i % n;
    if (marker >= 0) { char mk[32]; int ml = snprintf(mk, sizeof mk, "KILL %d", pids[idx]); (void)!write(marker, mk, ml); }
    long long t0 = now(); kill(pids[idx], SIGKILL);
    ssize_t k = recv(s, buf, sizeof buf - 1, 0); buf[k] = 0; int p, pp; long long ts; sscanf(buf, "S %d %d %lld", &p, &pp, &ts);
    pids[idx] = p; lat.push_back(ts - t0); usleep(gap ? atoi(gap) : 50000);
  }
  kill(sup, SIGTERM); waitpid(sup, nullptr, 0);
  std::sort(lat.begin(), lat.end());
  printf("median %.3f ms p90 %.3f ms min %.3f\n", lat[lat.size()/2]/1e6, lat[lat.size()*9/10]/1e6, lat[0]/1e6);
}
