// Real crashes of a child: the request it was handling fails naming how it died (the ones behind
// it go to the next instance: test_supervisor_poison), and its strategy applies. Hangs
// (request_timeout) and address-space exhaustion (RLIMIT_AS) are failures too.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "helpers/supervisor_support.hpp"

namespace {

using namespace procsup;
using namespace procsup::testing;

struct crash_case {
  const char* command;
  const char* cause;  // what every failed send and the crashed event must say
};

class child_crash : public supervisor_test, public ::testing::WithParamInterface<crash_case> {};

TEST_P(child_crash, the_request_it_was_handling_fails_naming_the_cause_and_the_child_is_restarted) {
  const auto param = GetParam();
  shared_object<shared_state> shared;
  event_log log;
  supervisor sup({.name = "crash", .emit = log.sink(), .log = false});
  auto p = sup.spawn(commands{shared.get()}, {.name = "victim"});
  const pid_t first = p.pid();
  auto dying = p.send(param.command);
  auto behind1 = p.send("count:after-1");  // behind the fatal request: the next instance answers
  auto behind2 = p.send("count:after-2");
  const std::string why = failure_of(dying);
  EXPECT_TRUE(contains(why, param.cause) && contains(why, "victim")) << why;
  EXPECT_EQ(value_of(behind1), "0:after-1");
  EXPECT_EQ(value_of(behind2), "1:after-2");
  ASSERT_TRUE(log.wait_for(event_kind::crashed, "victim"));
  const auto crash = log.of(event_kind::crashed, "victim").at(0);
  EXPECT_TRUE(contains(crash.cause, param.cause)) << crash.cause;
  EXPECT_EQ(crash.pid, first);
  EXPECT_EQ(value_of(p.send("again")), "ok:again");
  EXPECT_NE(p.pid(), first);
  EXPECT_EQ(p.info().restart_count, 1);
  EXPECT_TRUE(contains(p.info().last_error, param.cause)) << p.info().last_error;
  sup.stop();
}

TEST_P(child_crash, with_strategy_stop_the_child_is_left_failed) {
  const auto param = GetParam();
  shared_object<shared_state> shared;
  event_log log;
  supervisor sup({.name = "crash-stop", .emit = log.sink(), .log = false});
  auto p = sup.spawn(commands{shared.get()}, {.name = "victim"});
  sup.supervise(p, strategy::stop);
  EXPECT_TRUE(contains(failure_of(p.send(param.command)), param.cause));
  ASSERT_TRUE(log.wait_for(event_kind::stopped, "victim"));
  EXPECT_EQ(p.state(), process_state::failed);
  const std::string later = failure_of(p.send("again"));
  EXPECT_TRUE(contains(later, "failed") && contains(later, param.cause)) << later;
  EXPECT_EQ(shared->instances.load(), 1);
  sup.stop();
}

INSTANTIATE_TEST_SUITE_P(how_it_dies, child_crash,
                         ::testing::Values(crash_case{"segv", "killed by SIGSEGV"},
                                           crash_case{"abort", "killed by SIGABRT"},
                                           crash_case{"exit3", "exited with code 3"}),
                         [](const auto& param_info) { return std::string(param_info.param.command); });

class outside_kill : public supervisor_test {};

TEST_F(outside_kill, a_sigkill_from_outside_fails_the_request_in_progress_and_the_child_is_restarted) {
  shared_object<shared_state> shared;
  event_log log;
  supervisor sup({.name = "kill9", .emit = log.sink(), .log = false});
  auto p = sup.spawn(commands{shared.get()}, {.name = "target"});
  const pid_t first = p.pid();
  auto stuck = p.send("block");
  auto behind = p.send("behind");
  // Killed once it has started "block" (its attempt is counted), so that request is the one in
  // progress; "behind" was never started and goes to the next instance.
  ASSERT_TRUE(eventually([&] { return shared->attempts.load() == 1; }));
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  const std::string why = failure_of(stuck);
  EXPECT_TRUE(contains(why, "killed by SIGKILL")) << why;
  EXPECT_EQ(value_of(behind), "ok:behind");
  EXPECT_EQ(value_of(p.send("again")), "ok:again");
  EXPECT_NE(p.pid(), first);
  const auto crash = log.of(event_kind::crashed, "target").at(0);
  EXPECT_TRUE(contains(crash.cause, "SIGKILL")) << crash.cause;
  sup.stop();
}

// ------------------------------------------------------------------ hangs and resource limits

class hang_detection : public supervisor_test {};

TEST_F(hang_detection, an_endless_loop_in_handle_is_killed_by_the_request_timeout_and_restarted) {
  shared_object<shared_state> shared;
  event_log log;
  supervisor sup({.name = "hang", .emit = log.sink(), .log = false});
  auto p = sup.spawn(commands{shared.get()}, {.name = "spinner", .request_timeout = 1000ms});
  EXPECT_EQ(value_of(p.send("quick")), "ok:quick");  // a prompt reply is not a hang
  const pid_t first = p.pid();
  const std::string why = failure_of(p.send("spin"));
  EXPECT_TRUE(contains(why, "hung") && contains(why, "no reply within 1000 ms")) << why;
  ASSERT_TRUE(log.wait_for(event_kind::restarting, "spinner"));
  EXPECT_TRUE(contains(log.of(event_kind::crashed, "spinner").at(0).cause, "hung"));
  EXPECT_EQ(value_of(p.send("again")), "ok:again");
  EXPECT_NE(p.pid(), first);
  EXPECT_EQ(p.info().restart_count, 1);
  sup.stop();
}

// The address space of this process now, in bytes (VmSize).
std::size_t current_vm_size() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmSize:", 0) == 0) return std::stoul(line.substr(7)) * 1024;
  return 0;
}

TEST_F(hang_detection, a_child_that_blows_its_address_space_limit_is_handled_as_failed_and_restarted) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "ASan reserves terabytes of shadow address space: RLIMIT_AS cannot be applied";
#endif
  const std::size_t vm = current_vm_size();
  ASSERT_GT(vm, 0u);
  const auto limit = static_cast<rlim_t>(vm + (std::size_t{1} << 30));  // 1 GiB headroom; "alloc" wants 4
  shared_object<shared_state> shared;
  event_log log;
  supervisor sup({.name = "rlimit", .emit = log.sink(), .log = false});
  process_options o{.name = "greedy"};
  o.isolation.limits.push_back({RLIMIT_AS, limit, limit});
  auto p = sup.spawn(commands{shared.get()}, o);
  const pid_t first = p.pid();
  const std::string why = failure_of(p.send("alloc"));
  EXPECT_TRUE(contains(why, "bad_alloc")) << why;
  ASSERT_TRUE(log.wait_for(event_kind::crashed, "greedy"));
  EXPECT_EQ(value_of(p.send("small")), "ok:small");
  EXPECT_NE(p.pid(), first);
  EXPECT_EQ(p.info().restart_count, 1);
  sup.stop();
}

}  // namespace
