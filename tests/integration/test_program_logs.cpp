// Black-box: procsup's log as the programs and operators see it. A program's output is never
// filtered by --log-level (it is not procsup's diagnostics); JSON lifecycle events carry
// structured fields (program, instance, id, event, pid, exit_code / signal, cause, restarts); a
// program line that is a JSON object is kept as an object under "line"; a text-mode child line
// is "[api] listening" with nothing appended.
#include <gtest/gtest.h>

#include "helpers/program_harness.hpp"

namespace {

using namespace procsup::testing;

class program_logs : public program_test {};

TEST_F(program_logs, program_output_is_not_filtered_by_the_log_level) {
  // "talker" prints, then exits 1 (strategy stop): a warning-level event follows its output.
  const auto cfg = dir_.write_config("[[program]]\nname = \"talker\"\nstrategy = \"stop\"\ncommand = " +
                                     toml_argv({"/bin/sh", "-c", "echo out-line; echo err-line >&2; exit 1"}) + "\n");
  {
    procsup_process p({"--log-format", "json", "--log-level", "warn", "run", cfg});
    auto out = p.wait_event("[talker] out-line");
    auto err = p.wait_event("[talker] err-line");
    auto crashed = p.wait_event("[talker] crashed");  // warn: shown
    ASSERT_TRUE(out && err && crashed);
    EXPECT_EQ(out->value("stream", ""), "stdout");
    EXPECT_EQ(err->value("stream", ""), "stderr");
    // procsup's own info lines are filtered, as asked.
    EXPECT_TRUE(p.events("[talker] spawned").empty()) << p.output();
    EXPECT_TRUE(p.events("procsup starting").empty()) << p.output();
    p.kill(SIGTERM);
    EXPECT_EQ(p.wait_exit(), 0) << p.output();
  }
  {  // Text, with procsup's own log off entirely: the program's lines are still there.
    procsup_process p({"--log-level", "off", "run", cfg});
    auto has = [](const std::string& text) {
      return [text](const std::string& line) { return line.find(text) != std::string::npos; };
    };
    ASSERT_TRUE(p.wait_line(has("[talker] out-line"), "[talker] out-line"));
    ASSERT_TRUE(p.wait_line(has("[talker] err-line"), "[talker] err-line"));
    p.kill(SIGTERM);
    EXPECT_EQ(p.wait_exit(), 0) << p.output();
    for (const auto& l : p.lines()) EXPECT_EQ(l.find("spawned"), std::string::npos) << p.output();
  }
}

TEST_F(program_logs, json_lifecycle_events_carry_structured_fields) {
  const auto tag = unique_tag("fields");
  const auto cfg = dir_.write_config(
      "[[program]]\nname = \"quitter\"\nstrategy = \"stop\"\ncommand = " + toml_argv({test_target, "exit", "42"}) +
      "\n\n[[program]]\nname = \"pair\"\ninstances = 2\ncommand = " +
      toml_argv({test_target, "print-pid-then-sleep", tag}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});

  auto crashed = p.wait_event("[quitter] crashed");
  ASSERT_TRUE(crashed);
  EXPECT_EQ(crashed->value("program", ""), "quitter");
  EXPECT_EQ(crashed->value("instance", -1), 0);
  EXPECT_EQ(crashed->value("id", ""), "quitter");
  EXPECT_EQ(crashed->value("event", ""), "crashed");
  EXPECT_EQ(crashed->value("exit_code", -1), 42);
  EXPECT_FALSE(crashed->contains("signal"));
  EXPECT_EQ(crashed->value("cause", ""), "exited with code 42");
  EXPECT_EQ(crashed->value("restarts", -1), 0);
  EXPECT_GT(crashed->value("pid", 0), 0);

  auto ready = p.wait_event("[pair:1] ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->value("program", ""), "pair");
  EXPECT_EQ(ready->value("instance", -1), 1);
  EXPECT_EQ(ready->value("id", ""), "pair:1");
  EXPECT_EQ(ready->value("event", ""), "ready");
  const pid_t pid = ready->at("pid").get<pid_t>();

  // Killed by a signal: "signal", no "exit_code"; the restart counts.
  ASSERT_EQ(ctl(dir_.socket(), {"signal", "pair:1", "KILL"}).exit_code, 0);
  auto killed = p.wait_event("[pair:1] crashed", {{"pid", pid}});
  ASSERT_TRUE(killed);
  EXPECT_EQ(killed->value("signal", ""), "SIGKILL");
  EXPECT_FALSE(killed->contains("exit_code"));
  EXPECT_EQ(killed->value("instance", -1), 1);
  auto again = p.wait_event("[pair:1] spawned", json::object(), killed->at("_index").get<std::size_t>());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->value("restarts", -1), 1);
  EXPECT_EQ(again->value("event", ""), "spawned");

  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  EXPECT_EQ(wait_tagged_gone(tag), std::vector<pid_t>{});
}

TEST_F(program_logs, a_json_line_of_a_program_stays_an_object_under_line) {
  const auto cfg = dir_.write_config(
      "[[program]]\nname = \"structured\"\nstrategy = \"stop\"\nsuccess_codes = [0]\ncommand = " +
      toml_argv({"/bin/sh", "-c",
                 "echo '{\"level\":\"warn\",\"msg\":\"disk almost full\",\"free_mb\":12}'; "
                 "echo '{\"event\":\"no msg here\"}'; echo '{not json'; echo '[1,2]'; echo done"}) +
      "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  auto with_msg = p.wait_event("[structured] disk almost full");
  auto without = p.wait_event("[structured]");
  auto broken = p.wait_event("[structured] {not json");
  auto array = p.wait_event("[structured] [1,2]");  // not an object: text, as written
  ASSERT_TRUE(with_msg && without && broken && array && p.wait_event("[structured] done"));
  EXPECT_EQ(with_msg->at("line"), json({{"level", "warn"}, {"msg", "disk almost full"}, {"free_mb", 12}}));
  EXPECT_EQ(with_msg->value("program", ""), "structured");
  EXPECT_EQ(with_msg->value("stream", ""), "stdout");
  EXPECT_EQ(with_msg->value("level", ""), "info");  // procsup's level for output lines; the program's is in line
  EXPECT_EQ(without->at("line"), json({{"event", "no msg here"}}));
  EXPECT_FALSE(broken->contains("line"));
  EXPECT_FALSE(array->contains("line"));
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

TEST_F(program_logs, a_text_child_line_is_the_prefixed_line_and_nothing_more) {
  const auto cfg = dir_.write_config("[[program]]\nname = \"api\"\nstrategy = \"stop\"\ncommand = " +
                                     toml_argv({"/bin/sh", "-c", "echo listening on :80"}) + "\n");
  procsup_process p({"run", cfg});
  auto idx = p.wait_line([](const std::string& l) { return l.find("[api] listening") != std::string::npos; },
                         "[api] listening on :80");
  ASSERT_TRUE(idx);
  const std::string line = p.lines().at(*idx);
  const std::string want = "info  [api] listening on :80";
  ASSERT_GE(line.size(), want.size());
  EXPECT_EQ(line.substr(line.size() - want.size()), want) << line;  // no " program=... stream=..."
  // Lifecycle lines keep their details in text: "[api] crashed ..." carries cause and pid.
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

}  // namespace
