// How much earlier than a pidfd (or waitpid) does the kernel's taskstats exit notice say that a
// child died? The notice (TASKSTATS_CMD_NEW, per-CPU listeners) is sent from do_exit() before the
// dying task tears down its memory and files; the pidfd becomes readable only at the end of
// do_exit (exit_notify). Forks a child that sleeps, SIGKILLs it, and times both from kill().
// Needs CAP_NET_ADMIN and the initial network namespace (the taskstats family lives there).
//   g++ -O2 -o /tmp/deathnotice bench/probes/deathnotice.cpp && /tmp/deathnotice 40
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/taskstats.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>
#include <cstring>
#include <cstdio>
#include <ctime>
#include <vector>
#include <algorithm>
static long long now() { timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec*1000000000LL+ts.tv_nsec; }
struct req { nlmsghdr n; genlmsghdr g; char buf[256]; };
static void add_attr(req& r, int type, const void* data, int len) {
  nlattr* a = (nlattr*)((char*)&r + NLMSG_ALIGN(r.n.nlmsg_len));
  a->nla_type = type; a->nla_len = NLA_HDRLEN + len; memcpy((char*)a + NLA_HDRLEN, data, len);
  r.n.nlmsg_len = NLMSG_ALIGN(r.n.nlmsg_len) + NLA_ALIGN(a->nla_len);
}
int family(int s) {
  req r{}; r.n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN); r.n.nlmsg_type = GENL_ID_CTRL; r.n.nlmsg_flags = NLM_F_REQUEST;
  r.g.cmd = CTRL_CMD_GETFAMILY; r.g.version = 1; add_attr(r, CTRL_ATTR_FAMILY_NAME, TASKSTATS_GENL_NAME, sizeof TASKSTATS_GENL_NAME);
  send(s, &r, r.n.nlmsg_len, 0); char b[4096]; int n = recv(s, b, sizeof b, 0);
  nlmsghdr* h = (nlmsghdr*)b; if (h->nlmsg_type == NLMSG_ERROR) return -1;
  nlattr* a = (nlattr*)((char*)NLMSG_DATA(h) + GENL_HDRLEN); int left = h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
  while (left > 0) { if (a->nla_type == CTRL_ATTR_FAMILY_ID) return *(uint16_t*)((char*)a + NLA_HDRLEN); left -= NLA_ALIGN(a->nla_len); a = (nlattr*)((char*)a + NLA_ALIGN(a->nla_len)); }
  return -1; (void)n;
}
int main(int argc, char** argv) {
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
  sockaddr_nl sa{}; sa.nl_family = AF_NETLINK; bind(s, (sockaddr*)&sa, sizeof sa);
  int fam = family(s); printf("family %d\n", fam);
  req r{}; r.n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN); r.n.nlmsg_type = fam; r.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  r.g.cmd = TASKSTATS_CMD_GET; r.g.version = TASKSTATS_GENL_VERSION; const char mask[] = "0-1"; add_attr(r, TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, mask, sizeof mask);
  send(s, &r, r.n.nlmsg_len, 0); char b[8192]; (void)recv(s, b, sizeof b, 0); nlmsghdr* h = (nlmsghdr*)b;
  printf("register: type %d err %d\n", h->nlmsg_type, h->nlmsg_type == NLMSG_ERROR ? ((nlmsgerr*)NLMSG_DATA(h))->error : 0);
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
          for (nlmsghdr* hh = (nlmsghdr*)b; NLMSG_OK(hh, (unsigned)m); hh = NLMSG_NEXT(hh, m)) {
            nlattr* a = (nlattr*)((char*)NLMSG_DATA(hh) + GENL_HDRLEN); int left = hh->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
            while (left > 0) { if (a->nla_type == TASKSTATS_TYPE_AGGR_PID) { nlattr* in = (nlattr*)((char*)a + NLA_HDRLEN); int l2 = a->nla_len - NLA_HDRLEN; pid_t p = 0; taskstats* st = nullptr;
                while (l2 > 0) { if (in->nla_type == TASKSTATS_TYPE_PID) p = *(uint32_t*)((char*)in + NLA_HDRLEN); if (in->nla_type == TASKSTATS_TYPE_STATS) st = (taskstats*)((char*)in + NLA_HDRLEN); l2 -= NLA_ALIGN(in->nla_len); in = (nlattr*)((char*)in + NLA_ALIGN(in->nla_len)); }
                if (p == c && !tts) { tts = t; code = st ? st->ac_exitcode : -2; } }
              left -= NLA_ALIGN(a->nla_len); a = (nlattr*)((char*)a + NLA_ALIGN(a->nla_len)); } } }
      }
      if (k == 0) break;
    }
    close(pfd); waitpid(c, nullptr, 0);
    dts.push_back(tts - t0); dpf.push_back(tpf - t0); if (i == 0) printf("exitcode %d\n", code);
  }
  std::sort(dts.begin(), dts.end()); std::sort(dpf.begin(), dpf.end());
  printf("taskstats median %.1f us, pidfd median %.1f us\n", dts[dts.size()/2]/1e3, dpf[dpf.size()/2]/1e3);
}
