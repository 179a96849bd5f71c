// cgroup v2 containment (supervisor/cgroup.hpp) against real processes: membership set by the
// launcher before exec, cgroup.kill, cgroup.events, and a supervised program whose stop is
// complete only once its cgroup is empty. Needs a cgroup2 mount and root; skipped otherwise.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "helpers/supervisor_support.hpp"
#include "procsup/supervisor/cgroup.hpp"
#include "procsup/supervisor/launcher.hpp"
#include "procsup/supervisor/supervisor.hpp"

namespace {

using namespace procsup;
using namespace procsup::testing;
using namespace std::chrono_literals;

const std::string test_target = PROCSUP_TEST_TARGET;

class cgroup_test : public supervisor_test {
 protected:
  void SetUp() override {
    supervisor_test::SetUp();
    host_ = find_cgroup_host();
    if (!host_ || ::geteuid() != 0) GTEST_SKIP() << "no cgroup2 mount or not root";
    dir_ = host_->own_dir() + "/procsup-test-" + std::to_string(::getpid()) + "-" +
           std::to_string(++counter_);
  }
  void TearDown() override {
    if (!dir_.empty()) {
      std::string error;
      sweep_cgroup_tree(dir_, 2000, error);
    }
    supervisor_test::TearDown();
  }
  static bool wait_empty(procsup::cgroup& cg, std::chrono::milliseconds deadline) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (cg.populated()) {
      if (std::chrono::steady_clock::now() > until) return false;
      pollfd p{cg.events_fd(), POLLPRI, 0};
      ::poll(&p, 1, 50);
    }
    return true;
  }

  std::optional<cgroup_host> host_;
  std::string dir_;
  static inline int counter_ = 0;
};

TEST_F(cgroup_test, the_host_is_found_from_mountinfo_and_own_cgroup) {
  EXPECT_FALSE(host_->mount.empty());
  EXPECT_EQ(host_->own.front(), '/');
  struct stat st {};
  EXPECT_EQ(::stat((host_->own_dir() + "/cgroup.procs").c_str(), &st), 0) << host_->own_dir();
}

TEST_F(cgroup_test, a_launched_child_and_its_setsid_grandchild_are_members_and_cgroup_kill_ends_both) {
  std::string error;
  auto cg = procsup::cgroup::open(dir_, error);
  ASSERT_TRUE(cg) << error;
  EXPECT_FALSE(cg->populated());
  exec_spec spec;
  spec.path = "/bin/sh";
  // The grandchild leaves the session and the process group; it cannot leave the cgroup.
  spec.argv = {"/bin/sh", "-c", "setsid " + test_target + " sleep 600 & exec " + test_target + " sleep 600"};
  spec.env = current_environment();
  spec.setup.cgroup_procs_fd = cg->procs_fd();
  spec.setup.parent_death_signal = 0;
  auto r = launch_exec(spec);
  ASSERT_TRUE(std::holds_alternative<pid_t>(r)) << std::get<launch_error>(r).message;
  const pid_t pid = std::get<pid_t>(r);
  ASSERT_TRUE(eventually([&] { return cg->pids().size() == 2; })) << cg->pids().size();
  EXPECT_TRUE(cg->populated());
  const auto members = cg->pids();
  EXPECT_NE(std::find(members.begin(), members.end(), pid), members.end());

  ASSERT_TRUE(cg->kill());
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  // The grandchild is not ours (init reaps it); the cgroup says when it is gone.
  EXPECT_TRUE(wait_empty(*cg, 10s));
  EXPECT_TRUE(cg->remove());
}

// procs_fd() keeps cgroup.procs open read-write, the fd pids() reads as well (issue 17: no path
// walk at a stop). A read that came first (a scrape before the first launch) opened it read-only:
// the launch still gets a fd it can write, and joins.
TEST_F(cgroup_test, a_read_of_cgroup_procs_before_the_first_launch_still_leaves_it_a_writable_fd) {
  std::string error;
  auto cg = procsup::cgroup::open(dir_, error);
  ASSERT_TRUE(cg) << error;
  EXPECT_TRUE(cg->pids().empty());
  exec_spec spec;
  spec.path = test_target;
  spec.argv = {test_target, "sleep", "600"};
  spec.env = current_environment();
  spec.setup.cgroup_procs_fd = cg->procs_fd();
  spec.setup.parent_death_signal = 0;
  auto r = launch_exec(spec);
  ASSERT_TRUE(std::holds_alternative<pid_t>(r)) << std::get<launch_error>(r).message;
  const pid_t pid = std::get<pid_t>(r);
  ASSERT_TRUE(eventually([&] { return cg->pids().size() == 1; })) << cg->pids().size();
  EXPECT_EQ(cg->pids().front(), pid);
  EXPECT_EQ(cg->signal(SIGKILL), 1u);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_TRUE(wait_empty(*cg, 10s));
  EXPECT_TRUE(cg->remove());
}

TEST_F(cgroup_test, a_cgroup_that_cannot_be_joined_is_a_failed_launch_naming_the_step) {
  std::string error;
  auto cg = procsup::cgroup::open(dir_, error);
  ASSERT_TRUE(cg) << error;
  exec_spec spec;
  spec.path = test_target;
  spec.argv = {test_target, "exit", "0"};
  spec.env = current_environment();
  // A read-only fd where cgroup.procs should be: the child's write fails.
  const int ro = ::open((dir_ + "/cgroup.procs").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(ro, 0);
  spec.setup.cgroup_procs_fd = ro;
  auto r = launch_exec(spec);
  ::close(ro);
  ASSERT_TRUE(std::holds_alternative<launch_error>(r));
  EXPECT_EQ(std::get<launch_error>(r).stage, "cgroup") << std::get<launch_error>(r).message;
}

TEST_F(cgroup_test, a_stop_of_a_program_waits_for_its_cgroup_to_empty_and_leaves_no_escapee) {
  std::string error;
  auto cg = procsup::cgroup::open(dir_, error);
  ASSERT_TRUE(cg) << error;
  auto shared = std::make_shared<procsup::cgroup>(std::move(*cg));
  supervisor sup({.name = "cg", .log = false});
  program_options o;
  o.name = "escaper";
  o.exec.path = "/bin/sh";
  // The daemon ignores SIGTERM and is in a session of its own: only the cgroup reaches it.
  o.exec.argv = {"/bin/sh", "-c",
                 "setsid /bin/sh -c \"trap '' TERM; " + test_target + " sleep 600 & wait\" & exec " + test_target +
                     " sleep 600"};
  o.exec.env = current_environment();
  o.stop_timeout = 5s;
  o.cgroup = shared;
  sup.spawn_program(std::move(o), strategy::restart, true);
  ASSERT_TRUE(eventually([&] { return shared->pids().size() == 3; })) << shared->pids().size();
  const auto members = shared->pids();
  ASSERT_TRUE(sup.stop_child("escaper"));
  // stop_child returns when the stop is complete: nothing of it is left, although its main
  // process exited at once on SIGTERM and the daemon ignores it.
  EXPECT_FALSE(shared->populated());
  for (pid_t p : members) {
    std::ifstream st("/proc/" + std::to_string(p) + "/stat");
    std::string line;
    std::getline(st, line);
    // Gone, or a zombie waiting for its reaper: not running.
    EXPECT_TRUE(line.empty() || line.find(") Z ") != std::string::npos) << "survived the stop: " << line;
  }
  sup.stop();
}

}  // namespace
