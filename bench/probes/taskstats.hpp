// The taskstats exit-notice listener shared by deathnotice.cpp and early.cpp (header-only; each
// probe is compiled on its own, see its first lines). Needs CAP_NET_ADMIN and the initial network
// namespace, where the taskstats generic-netlink family lives.
#pragma once
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/taskstats.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

namespace taskstats_probe {

struct request { nlmsghdr n; genlmsghdr g; char buf[256]; };

inline void add_attr(request& r, int type, const void* data, int len) {
  nlattr* a = (nlattr*)((char*)&r + NLMSG_ALIGN(r.n.nlmsg_len));
  a->nla_type = type; a->nla_len = NLA_HDRLEN + len; memcpy((char*)a + NLA_HDRLEN, data, len);
  r.n.nlmsg_len = NLMSG_ALIGN(r.n.nlmsg_len) + NLA_ALIGN(a->nla_len);
}

// Walks the attributes in [a, a + len), calling fn(attr) for each.
template <class F>
void for_each_attr(nlattr* a, int len, F&& fn) {
  while (len > 0) { fn(a); len -= NLA_ALIGN(a->nla_len); a = (nlattr*)((char*)a + NLA_ALIGN(a->nla_len)); }
}

inline void* attr_data(nlattr* a) { return (char*)a + NLA_HDRLEN; }

// The taskstats family id, or -1.
inline int family(int s) {
  request r{}; r.n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN); r.n.nlmsg_type = GENL_ID_CTRL; r.n.nlmsg_flags = NLM_F_REQUEST;
  r.g.cmd = CTRL_CMD_GETFAMILY; r.g.version = 1; add_attr(r, CTRL_ATTR_FAMILY_NAME, TASKSTATS_GENL_NAME, sizeof TASKSTATS_GENL_NAME);
  send(s, &r, r.n.nlmsg_len, 0); char b[4096]; (void)recv(s, b, sizeof b, 0);
  nlmsghdr* h = (nlmsghdr*)b; if (h->nlmsg_type == NLMSG_ERROR) return -1;
  int id = -1;
  for_each_attr((nlattr*)((char*)NLMSG_DATA(h) + GENL_HDRLEN), h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN),
                [&](nlattr* a) { if (a->nla_type == CTRL_ATTR_FAMILY_ID) id = *(uint16_t*)attr_data(a); });
  return id;
}

// A socket that gets the exit notice of every task that exits on any CPU; `fam` is set to the
// family id (the notices' nlmsg_type). -1 if there is no taskstats family here, or -1 with errno
// set if the kernel refused the listener (EPERM without CAP_NET_ADMIN).
inline int open_listener(int& fam) {
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
  sockaddr_nl sa{}; sa.nl_family = AF_NETLINK; bind(s, (sockaddr*)&sa, sizeof sa);
  fam = family(s);
  if (fam < 0) { close(s); return -1; }
  const std::string mask = "0-" + std::to_string(sysconf(_SC_NPROCESSORS_CONF) - 1);
  request r{}; r.n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN); r.n.nlmsg_type = fam; r.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  r.g.cmd = TASKSTATS_CMD_GET; r.g.version = TASKSTATS_GENL_VERSION;
  add_attr(r, TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, mask.c_str(), (int)mask.size() + 1);
  send(s, &r, r.n.nlmsg_len, 0);
  char b[4096]; (void)recv(s, b, sizeof b, 0);
  const nlmsghdr* h = (const nlmsghdr*)b;
  if (h->nlmsg_type == NLMSG_ERROR && ((const nlmsgerr*)NLMSG_DATA(h))->error != 0) {
    errno = -((const nlmsgerr*)NLMSG_DATA(h))->error;
    close(s);
    return -1;
  }
  return s;
}

// Calls fn(pid, stats) for each per-task exit notice in the `len` bytes received into `buf`.
template <class F>
void for_each_exit(char* buf, int len, int fam, F&& fn) {
  for (nlmsghdr* h = (nlmsghdr*)buf; NLMSG_OK(h, (unsigned)len); h = NLMSG_NEXT(h, len)) {
    if (h->nlmsg_type != fam) continue;
    for_each_attr((nlattr*)((char*)NLMSG_DATA(h) + GENL_HDRLEN), h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN), [&](nlattr* a) {
      if (a->nla_type != TASKSTATS_TYPE_AGGR_PID) return;
      pid_t pid = 0; const taskstats* st = nullptr;
      for_each_attr((nlattr*)attr_data(a), a->nla_len - NLA_HDRLEN, [&](nlattr* in) {
        if (in->nla_type == TASKSTATS_TYPE_PID) pid = (pid_t)*(uint32_t*)attr_data(in);
        if (in->nla_type == TASKSTATS_TYPE_STATS) st = (const taskstats*)attr_data(in);
      });
      fn(pid, st);
    });
  }
}

}  // namespace taskstats_probe
