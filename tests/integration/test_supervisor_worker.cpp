// An exec'd worker binary that links the worker runtime (worker::main) is supervised exactly
// like a forked behavior: same handle, same replies, same crash handling.
#include <gtest/gtest.h>

#include "helpers/supervisor_support.hpp"

namespace {

using namespace procsup;
using namespace procsup::testing;

class exec_worker : public supervisor_test {};

exec_spec echo_worker() {
  exec_spec e;
  e.path = PROCSUP_ECHO_WORKER;
  e.env = current_environment();
  return e;
}

TEST_F(exec_worker, gives_the_same_handle_and_replies_as_a_forked_behavior) {
  shared_object<shared_state> shared;
  supervisor sup({.name = "exec", .log = false});
  process<std::string, std::string> forked = sup.spawn(commands{shared.get()}, {.name = "forked"});
  process<std::string, std::string> execd = sup.spawn_worker<std::string, std::string>(echo_worker(), {.name = "execd"});
  EXPECT_EQ(execd.state(), process_state::running);
  EXPECT_GT(execd.pid(), 0);
  for (const char* msg : {"hello", "", "x y z"}) EXPECT_EQ(value_of(execd.send(msg)), value_of(forked.send(msg)));
  EXPECT_EQ(std::stoi(value_of(execd.send("pid"))), execd.pid());
  EXPECT_EQ(failure_of(execd.send("boom")), failure_of(forked.send("boom")));
  sup.stop();
}

TEST_F(exec_worker, its_crash_fails_the_request_it_was_handling_and_it_is_restarted) {
  event_log log;
  supervisor sup({.name = "exec-crash", .emit = log.sink(), .log = false});
  auto w = sup.spawn_worker<std::string, std::string>(echo_worker(), {.name = "execd"});
  const pid_t first = w.pid();
  auto dying = w.send("segv");
  auto behind = w.send("behind");  // never started by the dying instance: the next one answers it
  const std::string why = failure_of(dying);
  EXPECT_TRUE(contains(why, "killed by SIGSEGV") && contains(why, "execd")) << why;
  EXPECT_EQ(value_of(behind), "ok:behind");
  EXPECT_EQ(value_of(w.send("again")), "ok:again");
  EXPECT_NE(w.pid(), first);
  EXPECT_EQ(w.info().restart_count, 1);
  ASSERT_EQ(log.of(event_kind::crashed, "execd").size(), 1u);
  EXPECT_EQ(log.of(event_kind::crashed, "execd")[0].pid, first);
  sup.stop();
}

TEST_F(exec_worker, a_missing_binary_fails_spawn_with_the_path) {
  supervisor sup({.name = "exec-missing", .log = false});
  exec_spec e = echo_worker();
  e.path = "/nonexistent/procsup_no_such_worker";
  try {
    (void)sup.spawn_worker<std::string, std::string>(e, {.name = "ghost"});
    FAIL() << "spawn_worker succeeded";
  } catch (const process_error& err) {
    EXPECT_TRUE(contains(err.what(), "/nonexistent/procsup_no_such_worker")) << err.what();
  }
  sup.stop();
}

}  // namespace
