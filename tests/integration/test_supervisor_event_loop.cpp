// The event loop's exit dispatch: what an exit handler defers (log lines) runs after the handler
// (and so after a restart it starts), in order; outside an exit handler it runs at once.
#include <sys/wait.h>

#include <gtest/gtest.h>

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
  loop.defer([&] { order.push_back("outside a handler"); });
  EXPECT_EQ(order, strings{"outside a handler"});  // at once
  EXPECT_FALSE(loop.in_exit_handler());

  const pid_t pid = procsup::testing::fork_child([] { return 3; });
  int seen_status = -1;
  loop.watch_child(pid, [&](int status) {
    seen_status = status;
    EXPECT_TRUE(loop.in_exit_handler());
    order.push_back("handler begins");
    loop.defer([&] {
      EXPECT_FALSE(loop.in_exit_handler());
      order.push_back("first deferred");
      loop.defer([&] { order.push_back("deferred by the first"); });  // no handler now: at once
    });
    loop.defer([&] {
      order.push_back("second deferred");
      loop.stop();
    });
    order.push_back("handler ends");
  });
  loop.run();  // until the second deferred function stops it

  EXPECT_TRUE(WIFEXITED(seen_status) && WEXITSTATUS(seen_status) == 3);
  EXPECT_EQ(order, (strings{"outside a handler", "handler begins", "handler ends", "first deferred",
                            "deferred by the first", "second deferred"}));
  EXPECT_FALSE(loop.in_exit_handler());
}

TEST_F(event_loop_exit, work_deferred_by_a_throwing_handler_still_runs) {
  procsup::event_loop loop;
  const pid_t pid = procsup::testing::fork_child([] { return 0; });
  bool ran = false;
  loop.watch_child(pid, [&](int) {
    loop.defer([&] { ran = true; });
    throw std::runtime_error("handler failed");
  });
  EXPECT_THROW(loop.run(), std::runtime_error);
  EXPECT_TRUE(ran);
  EXPECT_FALSE(loop.in_exit_handler());
}

}  // namespace
