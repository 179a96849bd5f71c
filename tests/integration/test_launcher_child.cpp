// The launcher against real children (procsup_test_target): exec errors, inherited fds, signal
// state, process group, rlimits, privilege drop, parent-death signal. No sleeps: every wait is a
// read to EOF or a waitpid.
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "helpers/process_guard.hpp"
#include "procsup/supervisor/launcher.hpp"

namespace {

using procsup::child_setup;
using procsup::exec_spec;
using procsup::launch_error;
using procsup::launch_exec;
using procsup::launch_fork;

class launcher : public procsup::testing::process_guard_test {};

using procsup::testing::read_all;

int wait_status(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

struct run_result {
  std::string out;
  int status = -1;
};

// Runs the target with `args`, stdout to a pipe that is read to EOF, then reaps it.
run_result run_target(std::vector<std::string> args, child_setup setup = {}, std::vector<std::string> env = {}) {
  int out[2];
  EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
  exec_spec spec;
  spec.path = PROCSUP_TEST_TARGET;
  spec.argv = {"procsup_test_target"};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = std::move(env);
  spec.setup = std::move(setup);
  spec.setup.fds.emplace_back(out[1], 1);
  auto r = launch_exec(spec);
  ::close(out[1]);
  run_result result;
  if (const auto* err = std::get_if<launch_error>(&r)) {
    ADD_FAILURE() << err->message;
    ::close(out[0]);
    return result;
  }
  result.out = read_all(out[0]);
  ::close(out[0]);
  result.status = wait_status(std::get<pid_t>(r));
  return result;
}

TEST_F(launcher, exec_error_names_the_path_and_errno_and_reaps_the_child) {
  exec_spec spec;
  spec.path = "/nonexistent/procsup-nope";
  const auto r = launch_exec(spec);
  ASSERT_TRUE(std::holds_alternative<launch_error>(r));
  const auto& err = std::get<launch_error>(r);
  EXPECT_EQ(err.error, ENOENT);
  EXPECT_EQ(err.stage, "exec");
  EXPECT_EQ(err.message, "exec /nonexistent/procsup-nope: No such file or directory");
  errno = 0;
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);  // already reaped: no child at all
  EXPECT_EQ(errno, ECHILD);
}

TEST_F(launcher, exec_error_does_not_flush_the_parents_stdio_twice) {
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  std::fflush(nullptr);  // nothing of the test runner's buffers may reach the fork below
  const pid_t middle = ::fork();
  ASSERT_GE(middle, 0);
  if (middle == 0) {
    ::dup2(out[1], 1);
    FILE* f = ::fdopen(1, "w");  // a fully buffered stream on fd 1, which the child keeps
    std::fputs("marker\n", f);   // unflushed while launching
    exec_spec spec;
    spec.path = "/nonexistent/procsup-nope";
    const auto r = launch_exec(spec);
    std::fflush(f);
    ::_exit(std::holds_alternative<launch_error>(r) ? 0 : 1);
  }
  ::close(out[1]);
  EXPECT_EQ(read_all(out[0]), "marker\n");
  ::close(out[0]);
  const int status = wait_status(middle);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST_F(launcher, child_inherits_exactly_stdio_and_the_mapped_fds) {
  int leaky[2];
  ASSERT_EQ(::pipe(leaky), 0);                        // deliberately inheritable
  const int leaky_file = ::open("/dev/null", O_RDONLY);  // ditto
  const int null_in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int extra = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int same = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(leaky_file, 0);
  ASSERT_GE(same, 0);

  child_setup setup;
  setup.fds = {{null_in, 0}, {extra, 40}, {same, same}};
  const auto r = run_target({"list-fds"}, setup);

  std::vector<int> expected{0, 1, 2, same, 40};
  std::sort(expected.begin(), expected.end());
  std::string line;
  for (int fd : expected) line += (line.empty() ? "" : " ") + std::to_string(fd);
  EXPECT_EQ(r.out, line + "\n");
  EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0);
  for (int fd : {leaky[0], leaky[1], leaky_file, null_in, extra, same}) ::close(fd);
}

// A supervisor's fds fill the low numbers, so the fds it hands a child are high: the exec path
// passes them through low placeholder slots (8 per thread) and the child copies only the fds
// below them. With more mappings than slots, hundreds of inheritable fds open in the parent and
// a target above every source, the child still gets exactly its fds, and afterwards no slot
// holds on to a staged fd (the child's stdout pipe reaches EOF).
TEST_F(launcher, high_numbered_fds_reach_their_targets_past_hundreds_of_open_fds) {
  rlimit rl{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  const int top = static_cast<int>(std::min<rlim_t>(rl.rlim_cur, 1024)) - 1;
  ASSERT_GT(top, 300);
  std::vector<int> ballast;  // inheritable: the child must close them all the same
  while (ballast.empty() || ballast.back() < top - 40) {
    const int fd = ::open("/dev/null", O_RDONLY);
    ASSERT_GE(fd, 0);
    ballast.push_back(fd);
  }
  ASSERT_GT(ballast.size(), 200u);

  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  const int out_high = top - 30;
  ASSERT_EQ(::dup3(out[1], out_high, O_CLOEXEC), out_high);
  ::close(out[1]);
  child_setup setup;
  std::vector<int> sources{out_high};
  setup.fds.emplace_back(out_high, 1);
  for (int k = 0; k < 10; ++k) {  // more than there are slots
    const int src = top - 20 + k;
    ASSERT_EQ(::dup3(ballast.front(), src, O_CLOEXEC), src);
    sources.push_back(src);
    setup.fds.emplace_back(src, 30 + k);
  }
  setup.fds.emplace_back(top - 20, top);  // one source twice, onto a target above every source

  exec_spec spec;
  spec.path = PROCSUP_TEST_TARGET;
  spec.argv = {"procsup_test_target", "list-fds"};
  spec.setup = setup;
  const auto r = launch_exec(spec);
  ::close(out_high);
  ASSERT_TRUE(std::holds_alternative<pid_t>(r)) << std::get<launch_error>(r).message;
  std::string expected = "0 1 2";
  for (int k = 0; k < 10; ++k) expected += " " + std::to_string(30 + k);
  expected += " " + std::to_string(top) + "\n";
  EXPECT_EQ(read_all(out[0]), expected);  // EOF: no placeholder slot kept the write end
  ::close(out[0]);
  const int status = wait_status(std::get<pid_t>(r));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  for (int fd : sources) {
    if (fd != out_high) {
      EXPECT_EQ(::close(fd), 0) << "source fd " << fd << " was closed in the parent";
    }
  }
  for (int fd : ballast) ::close(fd);
}

// A forked child of a thread that has launched before (a forked behavior that launches in turn)
// inherits the thread's slot numbers, but its setup closed those fds and the numbers now belong
// to other fds: it must reserve slots of its own, not dup3() over its own fds.
TEST_F(launcher, a_forked_copy_of_a_launching_thread_leaves_its_own_fds_alone) {
  procsup::reserve_launch_fds();  // this thread's slots: the low numbers
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  const pid_t middle = procsup::testing::fork_child([&] {
    const int keep = ::fcntl(out[1], F_DUPFD_CLOEXEC, 900);
    if (keep < 0 || ::close_range(3, 899, 0) != 0) return 10;  // as a forked child's setup does
    std::vector<int> victims;  // they take the low numbers, the old slots' among them
    for (int i = 0; i < 24; ++i) victims.push_back(::memfd_create(("victim-" + std::to_string(i)).c_str(), MFD_CLOEXEC));
    exec_spec spec;
    spec.path = PROCSUP_TEST_TARGET;
    spec.argv = {"procsup_test_target", "list-fds"};
    spec.setup.fds = {{keep, 1}};
    const auto r = launch_exec(spec);
    if (!std::holds_alternative<pid_t>(r)) return 11;
    if (!WIFEXITED(wait_status(std::get<pid_t>(r)))) return 12;
    for (int i = 0; i < 24; ++i) {  // each still its own memfd
      const std::string link = procsup::testing::detail::fd_target(victims[i]);
      if (link == "?") return 13;
      if (link.find("memfd:victim-" + std::to_string(i) + " ") == std::string::npos) return 14;
    }
    return 0;
  });
  ASSERT_GT(middle, 0);
  ::close(out[1]);
  EXPECT_EQ(read_all(out[0]), "0 1 2\n");
  ::close(out[0]);
  const int status = procsup::testing::wait_child(middle);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << procsup::testing::describe_wait_status(status);
}

TEST_F(launcher, swapped_fd_mappings_land_on_the_right_targets) {
  int a[2];
  int b[2];
  ASSERT_EQ(::pipe2(a, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(b, O_CLOEXEC), 0);
  // Put the write ends at 20 and 21, then ask for them swapped: 20 -> 21 and 21 -> 20.
  ASSERT_EQ(::dup3(a[1], 20, O_CLOEXEC), 20);
  ASSERT_EQ(::dup3(b[1], 21, O_CLOEXEC), 21);
  ::close(a[1]);
  ::close(b[1]);
  child_setup setup;
  setup.fds = {{20, 21}, {21, 20}};
  const auto r = launch_fork(setup, [] {
    const bool ok = ::write(21, "A", 1) == 1 && ::write(20, "B", 1) == 1;
    // The mapped fds are inheritable (dup2 cleared close-on-exec).
    const bool inheritable = ::fcntl(20, F_GETFD) == 0 && ::fcntl(21, F_GETFD) == 0;
    return ok && inheritable ? 0 : 1;
  });
  ::close(20);
  ::close(21);
  ASSERT_TRUE(std::holds_alternative<pid_t>(r));
  EXPECT_EQ(read_all(a[0]), "A");
  EXPECT_EQ(read_all(b[0]), "B");
  ::close(a[0]);
  ::close(b[0]);
  const int status = wait_status(std::get<pid_t>(r));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// For one test: `blocked` blocked in this thread and SIGHUP ignored in the process, as a parent
// may have them when it launches; both put back at the end.
class blocked_signals_and_ignored_hup {
 public:
  explicit blocked_signals_and_ignored_hup(std::initializer_list<int> blocked) {
    sigset_t block;
    sigemptyset(&block);
    for (int s : blocked) sigaddset(&block, s);
    ok_ = ::pthread_sigmask(SIG_BLOCK, &block, &old_mask_) == 0;
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    ok_ = ::sigaction(SIGHUP, &ignore, &old_hup_) == 0 && ok_;
  }
  ~blocked_signals_and_ignored_hup() {
    ::sigaction(SIGHUP, &old_hup_, nullptr);
    ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  blocked_signals_and_ignored_hup(const blocked_signals_and_ignored_hup&) = delete;
  blocked_signals_and_ignored_hup& operator=(const blocked_signals_and_ignored_hup&) = delete;
  bool ok() const { return ok_; }

 private:
  sigset_t old_mask_{};
  struct sigaction old_hup_ {};
  bool ok_ = false;
};

TEST_F(launcher, child_gets_a_clean_signal_mask_and_default_dispositions) {
  run_result r;
  {
    blocked_signals_and_ignored_hup parent({SIGTERM, SIGUSR1, SIGCHLD});
    ASSERT_TRUE(parent.ok());
    r = run_target({"sigmask"});
  }
  EXPECT_EQ(r.out, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
}

// A parent that ignores and catches nothing (the procsup program) lets the child skip the reset
// of every disposition: seen here by what the skip leaves behind, an ignored SIGHUP. The mask is
// emptied all the same.
TEST_F(launcher, without_the_disposition_reset_the_child_keeps_an_ignored_signal_but_still_gets_an_empty_mask) {
  child_setup setup;
  setup.reset_signal_dispositions = false;
  run_result r;
  {
    blocked_signals_and_ignored_hup parent({SIGUSR1});
    ASSERT_TRUE(parent.ok());
    r = run_target({"sigmask"}, setup);
  }
  EXPECT_EQ(r.out, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000001\n");  // SIGHUP is bit 0
}

TEST_F(launcher, child_leads_its_own_session_and_process_group) {
  exec_spec spec;
  spec.path = PROCSUP_TEST_TARGET;
  spec.argv = {"procsup_test_target", "sleep", "1000"};
  const auto r = launch_exec(spec);
  ASSERT_TRUE(std::holds_alternative<pid_t>(r));
  const pid_t pid = std::get<pid_t>(r);
  EXPECT_EQ(::getpgid(pid), pid);
  EXPECT_EQ(::getsid(pid), pid);
  ::kill(pid, SIGKILL);
  const int status = wait_status(pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

TEST_F(launcher, argv_and_environment_are_passed_exactly) {
  const auto r = run_target({"echo-env", "PROCSUP_X"}, {}, {"PROCSUP_X=hello world"});
  EXPECT_EQ(r.out, "hello world\n");
  const auto missing = run_target({"echo-env", "HOME"}, {}, {"PROCSUP_X=1"});
  EXPECT_TRUE(WIFEXITED(missing.status) && WEXITSTATUS(missing.status) == 1);
}

TEST_F(launcher, rlimit_nofile_is_visible_in_the_child) {
  child_setup setup;
  setup.limits.push_back({RLIMIT_NOFILE, 64, 128});
  const auto r = run_target({"getrlimit", "nofile"}, setup);
  EXPECT_EQ(r.out, "64 128\n");
}

// A supervisor with many children holds many fds, so the fds it hands a child can have numbers
// above the child's soft fd limit: they are still moved into place before that limit applies.
TEST_F(launcher, a_soft_fd_limit_below_the_parents_fd_numbers_still_gets_the_fds_in_place) {
  std::vector<int> ballast;
  for (int i = 0; i < 100; ++i) ballast.push_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  child_setup setup;
  setup.limits.push_back({RLIMIT_NOFILE, 32, 128});
  const auto r = run_target({"getrlimit", "nofile"}, setup);  // stdout is a pipe numbered > 100
  EXPECT_EQ(r.out, "32 128\n");
  EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << r.status;
  for (int fd : ballast) ::close(fd);
}

TEST_F(launcher, rlimit_as_makes_a_big_allocation_fail) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "ASan reserves terabytes of shadow memory; RLIMIT_AS cannot apply";
#endif
  child_setup setup;
  setup.limits.push_back({RLIMIT_AS, 64UL << 20, 64UL << 20});
  const auto small = run_target({"alloc", "4"}, setup);
  EXPECT_EQ(small.out, "ok\n");
  const auto big = run_target({"alloc", "256"}, setup);
  EXPECT_EQ(big.out, "failed\n");
  EXPECT_TRUE(WIFEXITED(big.status) && WEXITSTATUS(big.status) == 1);
}

std::string status_line(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return line;
  return {};
}

TEST_F(launcher, privileges_drop_to_nobody_when_root) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  exec_spec spec;
  spec.path = "/bin/sleep";  // a binary nobody may execute, wherever the build tree lives
  spec.argv = {"sleep", "1000"};
  spec.setup.uid = 65534;
  spec.setup.gid = 65534;
  const auto r = launch_exec(spec);
  ASSERT_TRUE(std::holds_alternative<pid_t>(r)) << std::get<launch_error>(r).message;
  const pid_t pid = std::get<pid_t>(r);
  EXPECT_EQ(status_line(pid, "Uid"), "Uid:\t65534\t65534\t65534\t65534");
  EXPECT_EQ(status_line(pid, "Gid"), "Gid:\t65534\t65534\t65534\t65534");
  std::string groups = status_line(pid, "Groups");
  while (!groups.empty() && (groups.back() == ' ' || groups.back() == '\t')) groups.pop_back();
  EXPECT_EQ(groups, "Groups:");  // supplementary groups dropped
  ::kill(pid, SIGKILL);
  wait_status(pid);
}

TEST_F(launcher, a_failing_setup_step_is_reported_with_its_stage) {
  exec_spec spec;
  spec.path = PROCSUP_TEST_TARGET;
  spec.setup.cwd = "/nonexistent-procsup-dir";
  const auto r = launch_exec(spec);
  ASSERT_TRUE(std::holds_alternative<launch_error>(r));
  const auto& err = std::get<launch_error>(r);
  EXPECT_EQ(err.stage, "chdir");
  EXPECT_EQ(err.error, ENOENT);
  EXPECT_NE(err.message.find(PROCSUP_TEST_TARGET), std::string::npos) << err.message;
}

TEST_F(launcher, launch_fork_runs_the_body_and_exits_with_its_result) {
  const auto r = launch_fork({}, [] { return 42; });
  ASSERT_TRUE(std::holds_alternative<pid_t>(r));
  const int status = wait_status(std::get<pid_t>(r));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 42) << status;

  child_setup bad;
  bad.cwd = "/nonexistent-procsup-dir";
  const auto failed = launch_fork(bad, [] { return 0; });
  ASSERT_TRUE(std::holds_alternative<launch_error>(failed));
  EXPECT_EQ(std::get<launch_error>(failed).stage, "chdir");
}

// A pooled region (shm::region_pool) reaches a forked child only through child_setup::maps:
// mapped at the parent's address, its memfd closed afterwards, and not inherited further.
TEST_F(launcher, a_forked_child_maps_its_pooled_region_at_the_parents_address) {
  procsup::shm::region_pool pool(4);
  auto region = pool.allocate(4096);
  auto other = pool.allocate(4096);
  child_setup setup;
  setup.maps.push_back(region.source());
  const int chunk_fd = region.source().fd;
  auto* text = static_cast<char*>(region.data());
  auto* sibling = static_cast<char*>(other.data());
  const auto r = launch_fork(setup, [text, sibling, chunk_fd] {
    std::memcpy(text, "from the child", 15);
    if (::fcntl(chunk_fd, F_GETFD) != -1) return 1;  // the chunk's memfd is closed
    if (::msync(sibling, 4096, MS_ASYNC) == 0 || errno != ENOMEM) return 2;  // no sibling
    // A grandchild (the behavior forks) does not inherit the region.
    const pid_t g = ::fork();
    if (g == 0) ::_exit(::msync(text, 4096, MS_ASYNC) != 0 && errno == ENOMEM ? 0 : 1);
    int st = 0;
    while (::waitpid(g, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 3;
  });
  ASSERT_TRUE(std::holds_alternative<pid_t>(r)) << std::get<launch_error>(r).message;
  const int status = wait_status(std::get<pid_t>(r));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_STREQ(text, "from the child");
}

TEST_F(launcher, a_mapping_whose_address_is_taken_fails_the_start_with_stage_mmap) {
  procsup::shm::region_pool pool(4);
  auto region = pool.allocate(4096);
  child_setup setup;
  auto src = region.source();
  // An address the child has inherited (this process's own stack page): never replaced.
  int local = 0;
  src.addr = reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(&local) & ~std::uintptr_t{4095});
  setup.maps.push_back(src);
  const auto r = launch_fork(setup, [] { return 0; });
  ASSERT_TRUE(std::holds_alternative<launch_error>(r));
  EXPECT_EQ(std::get<launch_error>(r).stage, "mmap");
  EXPECT_EQ(std::get<launch_error>(r).error, EEXIST);
}

TEST_F(launcher, bare_names_resolve_against_path) {
  int error = -1;
  EXPECT_EQ(procsup::resolve_executable("sh", "/nonexistent:/bin", error), "/bin/sh");
  EXPECT_EQ(error, 0);
  EXPECT_EQ(procsup::resolve_executable("procsup-no-such-binary", "/bin:/usr/bin", error), "");
  EXPECT_EQ(error, ENOENT);
  char plain[] = "/tmp/procsup-launcher-XXXXXX";
  const int plain_fd = ::mkstemp(plain);  // mode 0600: not executable
  ASSERT_GE(plain_fd, 0);
  ::close(plain_fd);
  EXPECT_EQ(procsup::resolve_executable(plain, "", error), "");
  EXPECT_EQ(error, EACCES);
  ::unlink(plain);
  EXPECT_EQ(procsup::resolve_executable("", "", error), "");
  EXPECT_EQ(error, ENOENT);

  // launch_exec resolves a bare name with the PATH of the child's environment.
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  exec_spec spec;
  spec.path = "echo";
  spec.argv = {"echo", "resolved"};
  spec.env = {"PATH=/nonexistent:/bin"};
  spec.setup.fds = {{out[1], 1}};
  const auto r = launch_exec(spec);
  ::close(out[1]);
  ASSERT_TRUE(std::holds_alternative<pid_t>(r));
  EXPECT_EQ(read_all(out[0]), "resolved\n");
  ::close(out[0]);
  wait_status(std::get<pid_t>(r));
}

// A child whose parent is SIGKILLed dies of its parent-death signal. Arrangement: a subreaper
// process S (so the orphan is reparented to something we can wait for) forks I; I launches the
// grandchild G and reports G's pid; S SIGKILLs I and then waits for G, which must die of SIGKILL.
TEST_F(launcher, child_dies_when_its_parent_is_killed) {
  std::fflush(nullptr);
  const pid_t s = ::fork();
  ASSERT_GE(s, 0);
  if (s == 0) {
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    int g_pipe[2];
    if (::pipe2(g_pipe, O_CLOEXEC) != 0) ::_exit(10);
    const pid_t i = ::fork();
    if (i < 0) ::_exit(11);
    if (i == 0) {
      exec_spec spec;
      spec.path = PROCSUP_TEST_TARGET;
      spec.argv = {"procsup_test_target", "sleep", "1000"};
      spec.setup.parent_death_signal = SIGKILL;
      const auto r = launch_exec(spec);
      const pid_t g = std::holds_alternative<pid_t>(r) ? std::get<pid_t>(r) : -1;
      if (::write(g_pipe[1], &g, sizeof g) != static_cast<ssize_t>(sizeof g)) ::_exit(12);
      for (;;) ::pause();  // until S kills it
    }
    ::close(g_pipe[1]);
    pid_t g = -1;
    if (::read(g_pipe[0], &g, sizeof g) != static_cast<ssize_t>(sizeof g) || g <= 0) ::_exit(13);
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, g, 0));
    if (pidfd < 0) ::_exit(14);
    ::kill(i, SIGKILL);
    int st = 0;
    ::waitpid(i, &st, 0);
    pollfd p{pidfd, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) {  // a bound, not a sleep: G should die at once
      ::kill(g, SIGKILL);
      ::waitpid(g, &st, 0);
      ::_exit(15);
    }
    if (::waitpid(g, &st, 0) != g) ::_exit(16);
    ::_exit(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL ? 0 : 17);
  }
  const int status = wait_status(s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "subreaper exit " << WEXITSTATUS(status);
}

}  // namespace
