// Per-program failure budgets in the supervisor library (issue 20): a program with its own
// budget goes fatal alone (event fatal, state fatal) while its siblings keep running and the
// supervisor does not give up; start_child() revives it with a fresh budget. Without an own
// budget only the supervisor's intensity applies (Erlang's rule, unchanged).
#include <gtest/gtest.h>

#include "helpers/supervisor_support.hpp"

namespace {

using namespace procsup;
using namespace procsup::testing;

program_options program(const std::string& name, std::vector<std::string> argv) {
  program_options o;
  o.name = name;
  o.exec.path = argv.at(0);
  o.exec.argv = std::move(argv);
  o.exec.setup.new_session = true;
  o.stop_timeout = std::chrono::milliseconds(5000);
  o.backoff = backoff_policy{std::chrono::milliseconds(0), std::chrono::milliseconds(1), std::chrono::milliseconds(1),
                             std::chrono::milliseconds(10'000)};
  return o;
}

process_state state_of(supervisor& sup, const std::string& id) {
  for (const auto& c : sup.children())
    if (c.id == id) return c.state;
  ADD_FAILURE() << "no child " << id;
  return process_state::stopped;
}

class supervisor_budget : public supervisor_test {};

TEST_F(supervisor_budget, a_program_over_its_own_budget_goes_fatal_and_its_sibling_keeps_running) {
  event_log log;
  supervisor_options so;
  so.name = "top";
  so.intensity = 100;
  so.period = std::chrono::minutes(1);
  so.emit = log.sink();
  so.log = false;
  supervisor sup(so);
  auto steady = sup.spawn_program(program("steady", {PROCSUP_TEST_TARGET, "sleep", "1000"}));
  auto o = program("crashy", {PROCSUP_TEST_TARGET, "exit", "1"});
  o.own_budget = true;
  o.max_restarts = 2;
  sup.spawn_program(std::move(o), strategy::restart, false);

  ASSERT_TRUE(log.wait_for(event_kind::fatal, "crashy"));
  EXPECT_EQ(log.count(event_kind::crashed, "crashy"), 3U);  // the first run + 2 restarts
  EXPECT_EQ(log.count(event_kind::restarting, "crashy"), 2U);
  EXPECT_NE(log.of(event_kind::fatal, "crashy").at(0).cause.find("more than 2 restarts"), std::string::npos);
  EXPECT_EQ(state_of(sup, "crashy"), process_state::fatal);
  EXPECT_EQ(state_of(sup, "steady"), process_state::running);
  EXPECT_FALSE(sup.gave_up());

  // Revived by hand with a fresh budget: it fails 3 more times before going fatal again.
  const std::size_t from = log.size();
  ASSERT_TRUE(sup.start_child("crashy"));
  ASSERT_TRUE(log.wait_for(event_kind::fatal, "crashy", 1, from));
  EXPECT_EQ(log.count(event_kind::crashed, "crashy", from), 3U);
  sup.stop();
}

TEST_F(supervisor_budget, without_an_own_budget_the_supervisor_intensity_gives_up_as_before) {
  event_log log;
  supervisor_options so;
  so.name = "top";
  so.intensity = 2;
  so.period = std::chrono::minutes(1);
  so.emit = log.sink();
  so.log = false;
  std::promise<std::string> escalated;
  so.on_escalate = [&escalated](const std::string& cause) { escalated.set_value(cause); };
  supervisor sup(so);
  sup.spawn_program(program("crashy", {PROCSUP_TEST_TARGET, "exit", "1"}), strategy::restart, false);
  auto f = escalated.get_future();
  ASSERT_EQ(f.wait_for(k_wait), std::future_status::ready);
  EXPECT_NE(f.get().find("restart intensity exceeded"), std::string::npos);
  EXPECT_EQ(log.count(event_kind::fatal), 0U);
  EXPECT_TRUE(sup.gave_up());
}

TEST_F(supervisor_budget, a_program_with_autostart_false_waits_for_start_child) {
  event_log log;
  supervisor_options so;
  so.emit = log.sink();
  so.log = false;
  supervisor sup(so);
  auto o = program("later", {PROCSUP_TEST_TARGET, "sleep", "1000"});
  o.autostart = false;
  auto u = sup.spawn_program(std::move(o), strategy::restart, true);  // wait: returns at once
  EXPECT_EQ(u.state(), process_state::stopped);
  EXPECT_EQ(log.count(event_kind::spawned, "later"), 0U);
  ASSERT_TRUE(sup.start_child("later"));
  ASSERT_TRUE(log.wait_for(event_kind::ready, "later"));
  EXPECT_EQ(state_of(sup, "later"), process_state::running);
  sup.stop();
}

}  // namespace
