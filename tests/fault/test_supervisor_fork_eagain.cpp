// fork failing with EAGAIN (RLIMIT_NPROC) is a transient failure: reported as spawn_failed,
// retried with backoff, recovered from. The check runs in a helper program
// (procsup_fork_eagain_probe) because it must drop root and lower a process-wide limit.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "helpers/process_guard.hpp"

namespace {

class fork_eagain : public procsup::testing::process_guard_test {};

TEST_F(fork_eagain, a_refused_fork_is_reported_as_spawn_failed_retried_and_recovered_from) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to uid 65534";
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  // Single-threaded test process: fork + exec right away.
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::execl(PROCSUP_FORK_EAGAIN_PROBE, PROCSUP_FORK_EAGAIN_PROBE, static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  std::string text;
  char buf[512];
  for (;;) {
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n > 0) {
      text.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  ::close(out[0]);
  const int status = procsup::testing::wait_child(pid);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77) GTEST_SKIP() << text;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << procsup::testing::describe_wait_status(status) << "\n" << text;
  EXPECT_NE(text.find("OK"), std::string::npos) << text;
}

}  // namespace
