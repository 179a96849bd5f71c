// Black-box: the real procsup restarts a crashed program (new pid, restart count up) and, on a
// crash loop, backs off with growing delays, then gives up (exit 3) leaving no process behind.
#include <gtest/gtest.h>

#include "helpers/program_harness.hpp"

namespace {

using namespace procsup::testing;

class program_restart : public program_test {};

TEST_F(program_restart, a_killed_program_is_restarted_with_a_new_pid_and_the_count_goes_up) {
  const auto tag = unique_tag("restart");
  const auto cfg = dir_.write_config("[[program]]\nname = \"victim\"\ncommand = " +
                                     toml_argv({test_target, "print-pid-then-sleep", tag}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});

  auto ready = p.wait_event("[victim] ready");
  ASSERT_TRUE(ready);
  const pid_t first = ready->at("pid").get<pid_t>();
  // The program's own output (its pid) reaches the log: the pid procsup reports is the program's.
  ASSERT_TRUE(p.wait_event("[victim] " + std::to_string(first), {{"stream", "stdout"}}));
  auto s = status_of(dir_.socket(), "victim");
  EXPECT_EQ(s["pid"], first);
  EXPECT_EQ(s["state"], "running");
  EXPECT_EQ(s["restarts"], 0);

  std::size_t from = ready->at("_index").get<std::size_t>();
  pid_t previous = first;
  for (int round = 1; round <= 2; ++round) {
    ASSERT_EQ(::kill(previous, SIGKILL), 0);
    auto crashed = p.wait_event("[victim] crashed", {{"pid", previous}}, from);
    ASSERT_TRUE(crashed);
    EXPECT_NE(crashed->value("cause", "").find("SIGKILL"), std::string::npos) << crashed->dump();
    auto again = p.wait_event("[victim] ready", json::object(), crashed->at("_index").get<std::size_t>());
    ASSERT_TRUE(again);
    const pid_t next = again->at("pid").get<pid_t>();
    EXPECT_NE(next, previous);
    EXPECT_FALSE(process_alive(previous));
    EXPECT_TRUE(process_alive(next));

    s = status_of(dir_.socket(), "victim");
    EXPECT_EQ(s["pid"], next);
    EXPECT_EQ(s["state"], "running");
    EXPECT_EQ(s["restarts"], round);
    EXPECT_EQ(s["last_exit"], json({{"signal", "SIGKILL"}})) << s.dump();
    previous = next;
    from = again->at("_index").get<std::size_t>();
  }

  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  EXPECT_EQ(live_processes_tagged(tag), std::vector<pid_t>{});
}

TEST_F(program_restart, a_crash_loop_backs_off_then_gives_up_with_exit_3_and_no_process_left) {
  const auto tag = unique_tag("loop");
  const auto cfg = dir_.write_config(
      "[[program]]\nname = \"bystander\"\ncommand = " + toml_argv({test_target, "print-pid-then-sleep", tag}) +
          "\ninstances = 2\n\n"
          "[[program]]\nname = \"crasher\"\ncommand = " +
          toml_argv({test_target, "segv", tag}) + "\nbackoff = { initial = \"0s\", max = \"5s\" }\n"
          // its own budget (default: the intensity, then it would go fatal alone) above the tree's
          "max_restarts = 100\n",
      "intensity = 4\nperiod = \"60s\"\n");
  procsup_process p({"--log-format", "json", "run", cfg});

  const int code = p.wait_exit();
  EXPECT_EQ(code, 3) << p.output();  // exit_codes::gave_up
  // Nothing procsup started is left once it has exited (it reaps what it kills).
  EXPECT_EQ(live_processes_tagged(tag), std::vector<pid_t>{}) << p.output();

  const auto restarting = p.events("[crasher] restarting");
  ASSERT_EQ(restarting.size(), 4U) << p.output();  // intensity 4: the 5th crash gives up
  std::vector<long> delays;
  for (const auto& e : restarting) delays.push_back(e.at("delay_ms").get<long>());
  EXPECT_EQ(delays.front(), 0) << "the first restart is immediate";
  for (std::size_t i = 2; i < delays.size(); ++i) EXPECT_GT(delays[i], delays[i - 1]) << "delays: " << ::testing::PrintToString(delays);
  EXPECT_GT(delays.back(), delays.front());

  EXPECT_EQ(p.events("[crasher] crashed").size(), 5U) << p.output();
  for (const auto& e : p.events("[crasher] crashed"))
    EXPECT_NE(e.value("cause", "").find("SIGSEGV"), std::string::npos) << e.dump();
  EXPECT_EQ(p.events("[procsup] gave_up").size(), 1U) << p.output();
  const auto stopped = p.events("procsup stopped");
  ASSERT_EQ(stopped.size(), 1U) << p.output();
  EXPECT_EQ(stopped[0].at("exit_code"), 3);
  // The bystanders were stopped by procsup (not orphaned): each got an "exited" event.
  EXPECT_EQ(p.events("[bystander:0] exited").size(), 1U) << p.output();
  EXPECT_EQ(p.events("[bystander:1] exited").size(), 1U) << p.output();
}

}  // namespace
