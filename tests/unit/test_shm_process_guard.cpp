// The leak checks of tests/helpers/process_guard.hpp find what they promise to find.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "helpers/process_guard.hpp"

using procsup::testing::leak_snapshot;

namespace {
bool mentions(const std::vector<std::string>& problems, const std::string& what) {
  for (const auto& p : problems)
    if (p.find(what) != std::string::npos) return true;
  return false;
}
}  // namespace

TEST(process_guard, a_clean_test_has_no_problems) {
  const auto before = leak_snapshot::take();
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ::close(fd);
  const pid_t pid = procsup::testing::fork_child([] { return 3; });
  const int status = procsup::testing::wait_child(pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 3) << procsup::testing::describe_wait_status(status);
  EXPECT_TRUE(leak_snapshot::leaks_since(before).empty());
}

TEST(process_guard, a_leaked_fd_is_reported_with_its_target) {
  const auto before = leak_snapshot::take();
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const auto problems = leak_snapshot::leaks_since(before);
  ::close(fd);
  EXPECT_TRUE(mentions(problems, "fd " + std::to_string(fd) + " (/dev/null) was leaked"));
}

TEST(process_guard, an_unreaped_child_is_reported_and_then_reaped) {
  const auto before = leak_snapshot::take();
  const pid_t zombie = procsup::testing::fork_child([] { return 0; });
  int stop[2];
  ASSERT_EQ(::pipe2(stop, O_CLOEXEC), 0);
  const pid_t running = procsup::testing::fork_child([&] {
    char c;
    return static_cast<int>(::read(stop[0], &c, 1));  // blocks: nobody writes
  });
  // The zombie's exit is an event we can await without reaping it: waitid with WNOWAIT.
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(zombie), &info, WEXITED | WNOWAIT), 0);
  const auto problems = leak_snapshot::leaks_since(before);
  ::close(stop[0]);
  ::close(stop[1]);
  EXPECT_TRUE(mentions(problems, "child process " + std::to_string(zombie) + " was left unreaped (zombie)"));
  EXPECT_TRUE(mentions(problems, "child process " + std::to_string(running) + " was left running"));
  EXPECT_TRUE(leak_snapshot::child_pids().empty()) << "the guard reaps what it reports";
}

// (No test creates a /dev/shm entry on purpose: under ctest -j a guarded test running in
// parallel would rightly blame itself for it.)
