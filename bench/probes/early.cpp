// The bare respawn loop (bench/peers/bare.c), but starting the replacement on the kernel's
// taskstats exit notice, which comes ~0.23 ms before the dead child's pidfd is readable
// (deathnotice.cpp): the replacement is cloned at once and waits in poll() on the old pidfd
// before its execve, so it never runs while the old instance still holds its resources. A
// prototype (no signal reset, no error handling) to see whether that lowers the restart floor:
//   g++ -O2 -o /tmp/early bench/probes/early.cpp
//   /tmp/probe 100 100 /tmp/early 100 -- /tmp/peerchild /tmp/procsup-probe.sock long x
// against the same with bench/peers/bare.c. Needs CAP_NET_ADMIN (the taskstats listener).
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/taskstats.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/signalfd.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <vector>
extern char** environ;
struct req { nlmsghdr n; genlmsghdr g; char buf[256]; };
static void add_attr(req& r, int type, const void* data, int len) {
  nlattr* a = (nlattr*)((char*)&r + NLMSG_ALIGN(r.n.nlmsg_len));
  a->nla_type = type; a->nla_len = NLA_HDRLEN + len; memcpy((char*)a + NLA_HDRLEN, data, len);
  r.n.nlmsg_len = NLMSG_ALIGN(r.n.nlmsg_len) + NLA_ALIGN(a->nla_len);
}
static int family(int s) {
  req r{}; r.n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN); r.n.nlmsg_type = GENL_ID_CTRL; r.n.nlmsg_flags = NLM_F_REQUEST;
  r.g.cmd = CTRL_CMD_GETFAMILY; r.g.version = 1; add_attr(r, CTRL_ATTR_FAMILY_NAME, TASKSTATS_GENL_NAME, sizeof TASKSTATS_GENL_NAME);
  send(s, &r, r.n.nlmsg_len, 0); char b[4096]; (void)recv(s, b, sizeof b, 0);
  nlmsghdr* h = (nlmsghdr*)b; if (h->nlmsg_type == NLMSG_ERROR) return -1;
  nlattr* a = (nlattr*)((char*)NLMSG_DATA(h) + GENL_HDRLEN); int left = h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
  while (left > 0) { if (a->nla_type == CTRL_ATTR_FAMILY_ID) return *(uint16_t*)((char*)a + NLA_HDRLEN); left -= NLA_ALIGN(a->nla_len); a = (nlattr*)((char*)a + NLA_ALIGN(a->nla_len)); }
  return -1;
}
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
  int n = atoi(argv[1]); cmd = argv + 3;
  sigset_t m; sigemptyset(&m); sigaddset(&m, SIGCHLD); sigaddset(&m, SIGTERM); sigprocmask(SIG_BLOCK, &m, nullptr);
  int sfd = signalfd(-1, &m, SFD_CLOEXEC | SFD_NONBLOCK);
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC); sockaddr_nl sa{}; sa.nl_family = AF_NETLINK; bind(s, (sockaddr*)&sa, sizeof sa);
  int fam = family(s);
  req r{}; r.n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN); r.n.nlmsg_type = fam; r.n.nlmsg_flags = NLM_F_REQUEST;
  r.g.cmd = TASKSTATS_CMD_GET; r.g.version = TASKSTATS_GENL_VERSION; const char mask[] = "0-1"; add_attr(r, TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, mask, sizeof mask);
  send(s, &r, r.n.nlmsg_len, 0);
  std::vector<pid_t> pids(n); std::vector<int> pfds(n);
  for (int i = 0; i < n; i++) { pids[i] = spawn(-1); pfds[i] = syscall(SYS_pidfd_open, pids[i], 0); }
  static char b[65536];
  for (;;) {
    pollfd p[2] = {{s, POLLIN, 0}, {sfd, POLLIN, 0}}; poll(p, 2, -1);
    if (p[0].revents) {
      int k; while ((k = recv(s, b, sizeof b, MSG_DONTWAIT)) > 0) {
        for (nlmsghdr* h = (nlmsghdr*)b; NLMSG_OK(h, (unsigned)k); h = NLMSG_NEXT(h, k)) {
          if (h->nlmsg_type != fam) continue;
          nlattr* a = (nlattr*)((char*)NLMSG_DATA(h) + GENL_HDRLEN); int left = h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
          while (left > 0) {
            if (a->nla_type == TASKSTATS_TYPE_AGGR_PID) { nlattr* in = (nlattr*)((char*)a + NLA_HDRLEN); int l2 = a->nla_len - NLA_HDRLEN;
              while (l2 > 0) { if (in->nla_type == TASKSTATS_TYPE_PID) { pid_t dead = *(uint32_t*)((char*)in + NLA_HDRLEN);
                  for (int i = 0; i < n; i++) if (pids[i] == dead) { int old = pfds[i]; pids[i] = spawn(old); close(old); pfds[i] = syscall(SYS_pidfd_open, pids[i], 0); }
                } l2 -= NLA_ALIGN(in->nla_len); in = (nlattr*)((char*)in + NLA_ALIGN(in->nla_len)); } }
            left -= NLA_ALIGN(a->nla_len); a = (nlattr*)((char*)a + NLA_ALIGN(a->nla_len)); } } }
    }
    if (p[1].revents) { signalfd_siginfo si; bool term = false; while (read(sfd, &si, sizeof si) == sizeof si) if (si.ssi_signo == SIGTERM) term = true;
      while (waitpid(-1, nullptr, WNOHANG) > 0) {}
      if (term) { for (pid_t q : pids) kill(q, SIGTERM); while (wait(nullptr) > 0) {} return 0; } }
  }
}
