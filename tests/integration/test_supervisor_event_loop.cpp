// The event loop's exit dispatch: the child may still be a zombie, and its pidfd open, while its
// handler runs (so a restart need not wait for either) and is reaped, and the pidfd closed, by
// reap_exited() or when the handler returns;
// what an exit handler defers (log lines) runs after it, in order; outside one, at once.
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <vector>

#include "helpers/process_guard.hpp"
#include "procsup/supervisor/event_loop.hpp"

namespace {

class event_loop_exit : public procsup::testing::process_guard_test {};

using strings = std::vector<std::string>;

TEST_F(event_loop_exit, deferred_work_runs_after_the_exit_handler_in_the_order_deferred) {
  procsup::event_loop loop;
  strings order;
  loop.after_exit_handlers([&] { order.push_back("outside a handler"); });
  EXPECT_EQ(order, strings{"outside a handler"});  // at once

  const pid_t pid = procsup::testing::fork_child([] { return 3; });
  int seen_status = -1;
  loop.watch_child(pid, [&](int status) {
    seen_status = status;
    order.push_back("handler begins");
    loop.after_exit_handlers([&] {
      order.push_back("first deferred");
      loop.after_exit_handlers([&] { order.push_back("deferred by the first"); });  // no handler now: at once
    });
    loop.after_exit_handlers([&] {
      order.push_back("second deferred");
      loop.stop();
    });
    order.push_back("handler ends");
  });
  loop.run();  // until the second deferred function stops it

  EXPECT_TRUE(WIFEXITED(seen_status) && WEXITSTATUS(seen_status) == 3);
  EXPECT_EQ(order, (strings{"outside a handler", "handler begins", "handler ends", "first deferred",
                            "deferred by the first", "second deferred"}));
}

// True while `pid` is an unreaped child that has exited (a zombie), looked at without reaping.
bool is_unreaped_zombie(pid_t pid) {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
}

// How many pidfds this process has open (the loop's are the only ones in these tests).
int open_pidfds() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (const dirent* e = ::readdir(d)) {
    char target[64] = {};
    const std::string link = std::string("/proc/self/fd/") + e->d_name;
    const ssize_t len = ::readlink(link.c_str(), target, sizeof target - 1);
    if (len > 0 && std::string(target, static_cast<std::size_t>(len)) == "anon_inode:[pidfd]") ++n;
  }
  ::closedir(d);
  return n;
}

TEST_F(event_loop_exit, the_handler_runs_before_the_reap_and_reap_exited_reaps_at_once) {
  procsup::event_loop loop;
  const pid_t pid = procsup::testing::fork_child([] { return 0; });
  bool zombie_in_handler = false, zombie_after_reap = true;
  int pidfds_in_handler = -1, pidfds_after_reap = -1;
  loop.watch_child(pid, [&](int) {
    zombie_in_handler = is_unreaped_zombie(pid);
    pidfds_in_handler = open_pidfds();
    loop.reap_exited();
    zombie_after_reap = is_unreaped_zombie(pid);
    pidfds_after_reap = open_pidfds();
    loop.reap_exited();  // a second call does nothing
    loop.stop();
  });
  loop.run();
  EXPECT_TRUE(zombie_in_handler);
  EXPECT_FALSE(zombie_after_reap);
  EXPECT_EQ(pidfds_in_handler, 1);  // still open: closing it is not on a restart's path
  EXPECT_EQ(pidfds_after_reap, 0);
  errno = 0;
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);  // reaped, not left for anyone else
}

TEST_F(event_loop_exit, a_handler_that_does_not_reap_leaves_no_zombie_when_it_returns) {
  procsup::event_loop loop;
  const pid_t pid = procsup::testing::fork_child([] { return 7; });
  int seen = -1;
  loop.watch_child(pid, [&](int status) {
    seen = status;
    loop.after_exit_handlers([&] {
      EXPECT_FALSE(is_unreaped_zombie(pid));  // the deferred work comes after the reap
      EXPECT_EQ(open_pidfds(), 0);            // and after the pidfd's close
      loop.stop();
    });
  });
  loop.run();
  EXPECT_TRUE(WIFEXITED(seen) && WEXITSTATUS(seen) == 7);
  errno = 0;
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

TEST_F(event_loop_exit, work_deferred_by_a_throwing_handler_still_runs) {
  procsup::event_loop loop;
  const pid_t pid = procsup::testing::fork_child([] { return 0; });
  bool ran = false;
  loop.watch_child(pid, [&](int) {
    loop.after_exit_handlers([&] { ran = true; });
    throw std::runtime_error("handler failed");
  });
  EXPECT_THROW(loop.run(), std::runtime_error);
  EXPECT_TRUE(ran);
}

}  // namespace
