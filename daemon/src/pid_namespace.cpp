// procsup as PID 1 of its own PID namespace, with an outer process that forwards signals. See
// pid_namespace.hpp.
#include "procsup/daemon/pid_namespace.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace procsup::daemon {
namespace {

int host_proc_fd = -1;  // the host's /proc, opened before the new one is mounted over it
bool inner = false;

// The outer side: every signal procsup handles goes to the inner PID 1 (which, as PID 1,
// only gets the signals it has handlers or a signalfd for: procsup reads them all).
int forward_until_exit(pid_t child, const sigset_t& set) {
  const int sfd = ::signalfd(-1, &set, SFD_CLOEXEC);
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(child, &status, WNOHANG);
    if (r == child) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      continue;
    }
    if (r < 0 && errno != EINTR) return 1;
    signalfd_siginfo si{};
    if (sfd < 0) {
      // No signalfd: still wait, still forward nothing lost for the exit code.
      ::waitpid(child, &status, 0);
      continue;
    }
    const ssize_t n = ::read(sfd, &si, sizeof si);
    if (n != static_cast<ssize_t>(sizeof si)) continue;
    const int sig = static_cast<int>(si.ssi_signo);
    if (sig != SIGCHLD) ::kill(child, sig);
  }
}

}  // namespace

bool in_own_pid_namespace() noexcept { return inner; }

std::optional<int> enter_pid_namespace(std::string& error) {
  if (::getpid() == 1) return std::nullopt;  // already PID 1 (a container): nothing to add
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) sigaddset(&set, s);
  sigset_t old;
  ::sigprocmask(SIG_BLOCK, &set, &old);
  int lifeline[2];
  if (::pipe2(lifeline, O_CLOEXEC) != 0) {
    error = std::string("pipe: ") + std::strerror(errno);
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    return std::nullopt;
  }
  const int proc = ::open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (::unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) {
    error = std::string("unshare(CLONE_NEWPID | CLONE_NEWNS): ") + std::strerror(errno) +
            (errno == EPERM ? " (needs root or CAP_SYS_ADMIN)" : "");
    ::close(lifeline[0]);
    ::close(lifeline[1]);
    if (proc >= 0) ::close(proc);
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    return std::nullopt;
  }
  const pid_t outer = ::getpid();
  const pid_t child = ::fork();
  if (child < 0) {
    error = std::string("fork into the new PID namespace: ") + std::strerror(errno);
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    return std::nullopt;
  }
  if (child == 0) {
    ::close(lifeline[1]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The outer may have died before the prctl: then its end of the lifeline is closed.
    pollfd p{lifeline[0], POLLIN, 0};
    if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLIN))) ::_exit(1);
    (void)outer;
    // Our own /proc (pids of this namespace), without touching the host's mounts.
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
      std::fprintf(stderr, "procsup: cannot mount /proc in the new PID namespace: %s\n", std::strerror(errno));
      ::_exit(2);
    }
    host_proc_fd = proc;
    inner = true;
    return std::nullopt;  // the lifeline's read end stays open (close-on-exec) for the life of PID 1
  }
  ::close(lifeline[0]);
  if (proc >= 0) ::close(proc);
  const int code = forward_until_exit(child, set);
  return code;
}

pid_t host_pid(pid_t pid) noexcept {
  if (!inner || host_proc_fd < 0 || pid <= 0) return pid;
  const int pfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pfd < 0) return pid;
  // A pidfd's fdinfo names its pid in the namespace of the /proc it is read through.
  char path[64];
  std::snprintf(path, sizeof path, "self/fdinfo/%d", pfd);
  const int fd = ::openat(host_proc_fd, path, O_RDONLY | O_CLOEXEC);
  pid_t out = pid;
  if (fd >= 0) {
    char buf[1024];
    const ssize_t n = ::read(fd, buf, sizeof buf - 1);
    if (n > 0) {
      buf[n] = '\0';
      if (const char* at = std::strstr(buf, "\nPid:")) out = static_cast<pid_t>(std::atoi(at + 5));
    }
    ::close(fd);
  }
  ::close(pfd);
  return out > 0 ? out : pid;
}

}  // namespace procsup::daemon
