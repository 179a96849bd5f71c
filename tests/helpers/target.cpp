// procsup_test_target: a tiny child program for black-box tests (tests get its path as
// $<TARGET_FILE:procsup_test_target>, compiled in as PROCSUP_TEST_TARGET). One mode per run:
//
//   exit CODE              exit with CODE
//   signal SIGNAME         raise SIGNAME (e.g. TERM, SIGSEGV) with its default action
//   segv | abort           crash with SIGSEGV / SIGABRT
//   sleep SECONDS          sleep, then exit 0 (fractions allowed: 0.5)
//   ignore-term            ignore SIGTERM, print "ready\n", then sleep forever
//   spawn-grandchild       fork a child that sleeps forever, print its pid + "\n", sleep forever
//   list-fds               print the open fds, ascending, space-separated, + "\n"
//   sigmask                print the "SigBlk:" and "SigIgn:" lines of /proc/self/status
//   flood-stdout BYTES     write BYTES bytes of 'x' to stdout, then exit 0
//   echo-env NAME          print the value of NAME + "\n" (exit 1 if unset)
//   print-pid-then-sleep   print getpid() + "\n", sleep forever
//   getrlimit nofile       print the soft and hard RLIMIT_NOFILE: "SOFT HARD\n" (-1 = unlimited)
//   alloc MB               allocate and touch MB MiB: print "ok\n" and exit 0, or "failed\n", exit 1
//   print-env NAME...      print "NAME=value\n" (or "NAME unset\n") for each NAME, exit 0
//   listen-tcp PORT        listen on 127.0.0.1:PORT, print "listening PORT\n", sleep forever
//                          (exit 3 with "bind: <error>\n" if it cannot)
//
// Output goes straight through write(2) (no stdio buffering). Usage errors exit 64.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <string>
#include <vector>

namespace {

void out(const std::string& s) {
  std::size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::write(1, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) std::_Exit(2);
    done += static_cast<std::size_t>(n);
  }
}

[[noreturn]] void sleep_forever() {
  for (;;) ::pause();
}

int signal_number(std::string name) {
  if (name.rfind("SIG", 0) == 0) name = name.substr(3);
  for (int sig = 1; sig < NSIG; ++sig) {
    const char* abbrev = ::sigabbrev_np(sig);
    if (abbrev != nullptr && name == abbrev) return sig;
  }
  return std::atoi(name.c_str());
}

int usage() {
  out("usage: procsup_test_target MODE [ARG] (see tests/helpers/target.cpp)\n");
  return 64;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string mode = argv[1];
  const std::string arg = argc > 2 ? argv[2] : "";

  if (mode == "exit") return std::atoi(arg.c_str());
  if (mode == "signal") {
    const int sig = signal_number(arg);
    if (sig <= 0) return usage();
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return 0;  // an ignorable-by-default signal (CHLD, URG, ...)
  }
  if (mode == "segv") {
    ::signal(SIGSEGV, SIG_DFL);
    ::raise(SIGSEGV);  // raise, not a null write: sanitizers would intercept a real fault
    return 1;
  }
  if (mode == "abort") std::abort();
  if (mode == "sleep") {
    const double seconds = std::atof(arg.c_str());
    timespec ts{static_cast<time_t>(seconds), static_cast<long>((seconds - static_cast<double>(static_cast<time_t>(seconds))) * 1e9)};
    while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return 0;
  }
  if (mode == "ignore-term") {
    ::signal(SIGTERM, SIG_IGN);
    out("ready\n");
    sleep_forever();
  }
  if (mode == "spawn-grandchild") {
    const pid_t pid = ::fork();
    if (pid < 0) return 3;
    if (pid == 0) sleep_forever();
    out(std::to_string(pid) + "\n");
    sleep_forever();
  }
  if (mode == "list-fds") {
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) return 3;
    std::vector<int> fds;
    while (const dirent* e = ::readdir(dir)) {
      if (e->d_name[0] == '.') continue;
      const int fd = std::atoi(e->d_name);
      if (fd != ::dirfd(dir)) fds.push_back(fd);
    }
    ::closedir(dir);
    std::sort(fds.begin(), fds.end());
    std::string line;
    for (int fd : fds) line += (line.empty() ? "" : " ") + std::to_string(fd);
    out(line + "\n");
    return 0;
  }
  if (mode == "sigmask") {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
      if (line.rfind("SigBlk:", 0) == 0 || line.rfind("SigIgn:", 0) == 0) out(line + "\n");
    return 0;
  }
  if (mode == "flood-stdout") {
    long long left = std::atoll(arg.c_str());
    const std::string chunk(65536, 'x');
    while (left > 0) {
      const auto n = static_cast<std::size_t>(std::min<long long>(left, static_cast<long long>(chunk.size())));
      out(chunk.substr(0, n));
      left -= static_cast<long long>(n);
    }
    return 0;
  }
  if (mode == "echo-env") {
    const char* value = std::getenv(arg.c_str());
    if (value == nullptr) return 1;
    out(std::string(value) + "\n");
    return 0;
  }
  if (mode == "print-pid-then-sleep") {
    out(std::to_string(::getpid()) + "\n");
    sleep_forever();
  }
  if (mode == "getrlimit" && arg == "nofile") {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 3;
    auto show = [](rlim_t v) { return v == RLIM_INFINITY ? std::string("-1") : std::to_string(v); };
    out(show(rl.rlim_cur) + " " + show(rl.rlim_max) + "\n");
    return 0;
  }
  if (mode == "alloc") {
    const std::size_t bytes = static_cast<std::size_t>(std::atoll(arg.c_str())) << 20;
    char* p = static_cast<char*>(std::malloc(bytes));
    if (p == nullptr) {
      out("failed\n");
      return 1;
    }
    for (std::size_t i = 0; i < bytes; i += 4096) p[i] = 1;  // really touch it
    std::free(p);
    out("ok\n");
    return 0;
  }
  if (mode == "print-env") {
    for (int i = 2; i < argc; ++i) {
      const char* value = std::getenv(argv[i]);
      out(std::string(argv[i]) + (value != nullptr ? std::string("=") + value : std::string(" unset")) + "\n");
    }
    return 0;
  }
  if (mode == "listen-tcp") {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(std::atoi(arg.c_str())));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 16) != 0) {
      out(std::string("bind: ") + std::strerror(errno) + "\n");
      return 3;
    }
    out("listening " + arg + "\n");
    sleep_forever();
  }
  return usage();
}
