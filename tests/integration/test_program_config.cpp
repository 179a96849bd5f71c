// Black-box: `procsup run` on invalid configs exits 2 naming file:line and the key, and starts
// nothing; a program whose binary is missing is reported (path, errno text) and handled by its
// strategy while the other programs keep running untouched.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "helpers/program_harness.hpp"

namespace {

using namespace procsup::testing;

struct bad_config {
  const char* name;
  std::string body;     // [[program]] tables etc. after the [supervisor] table (whose socket line is fixed)
  std::string sup;      // extra [supervisor] lines
  std::string at;       // a snippet of the offending line (its line number is expected on stderr)
  std::string key;      // the dotted key expected on stderr
  std::string message;  // part of the message
};

class program_config : public program_test {};

// 1-based number of the line of `text` containing `snippet`.
int line_of(const std::string& text, const std::string& snippet) {
  const auto pos = text.find(snippet);
  if (pos == std::string::npos) return -1;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(pos), '\n'));
}

TEST_F(program_config, invalid_configs_exit_2_with_file_line_and_key_and_start_nothing) {
  const std::string marker = dir_.file("started");
  // A program that leaves a trace if it ever runs, before the bad part of each config.
  const std::string witness =
      "[[program]]\nname = \"witness\"\ncommand = " + toml_argv({"/usr/bin/touch", marker}) + "\n\n";
  const std::string ok_cmd = "command = " + toml_argv({test_target, "sleep", "1"}) + "\n";
  const std::vector<bad_config> cases = {
      {"unknown key", witness + "[[program]]\nname = \"b\"\n" + ok_cmd + "frobnicate = 1\n", "", "frobnicate",
       "program[1].frobnicate", "unknown key"},
      {"unknown supervisor key", witness, "sockets = \"/tmp/x\"\n", "sockets", "supervisor.sockets", "unknown key"},
      {"wrong type", witness + "[[program]]\nname = \"b\"\n" + ok_cmd + "instances = \"two\"\n", "", "instances",
       "program[1].instances", "expected"},
      {"wrong type of command", witness + "[[program]]\nname = \"b\"\ncommand = \"/bin/true\"\n", "", "command = \"/bin/true\"",
       "program[1].command", "expected"},
      {"bad duration", witness + "[[program]]\nname = \"b\"\n" + ok_cmd + "stop_timeout = \"10 parsecs\"\n", "",
       "stop_timeout", "program[1].stop_timeout", "bad duration"},
      {"bad period", witness, "period = \"soon\"\n", "period", "supervisor.period", "bad duration"},
      {"bad signal", witness + "[[program]]\nname = \"b\"\n" + ok_cmd + "stop_signal = \"SIGFOO\"\n", "",
       "stop_signal", "program[1].stop_signal", "unknown signal"},
      {"duplicate name", witness + "[[program]]\nname = \"witness\"\n" + ok_cmd, "", "name = \"witness\"\n" + ok_cmd,
       "program[1].name", "duplicate program name"},
      {"empty command", witness + "[[program]]\nname = \"b\"\ncommand = []\n", "", "command = []",
       "program[1].command", "empty command"},
      {"unknown policy", witness, "policy = \"one_for_some\"\n", "policy", "supervisor.policy", "unknown value"},
      {"unknown strategy", witness + "[[program]]\nname = \"b\"\n" + ok_cmd + "strategy = \"retry\"\n", "",
       "strategy", "program[1].strategy", "unknown value"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string file = std::string("bad-") + std::to_string(&c - cases.data()) + ".toml";
    const std::string path = dir_.write_config(c.body, c.sup, file);
    const std::string text = read_file(path);
    const int line = line_of(text, c.at);
    ASSERT_GT(line, 0);

    // --exit-after bounds a run that wrongly accepted the config (it then exits 0, not 2).
    const auto r = run_procsup_cli({"--log-format", "json", "run", path, "--exit-after", "10s"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    const std::string where = path + ":" + std::to_string(line) + ":";
    EXPECT_NE(r.err.find(where), std::string::npos) << "expected " << where << " in:\n" << r.err;
    EXPECT_NE(r.err.find(c.key), std::string::npos) << "expected the key " << c.key << " in:\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << "expected \"" << c.message << "\" in:\n" << r.err;
    EXPECT_NE(r.err.find("nothing started"), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_FALSE(std::filesystem::exists(marker)) << "a program ran although the config is invalid";
    EXPECT_FALSE(std::filesystem::exists(dir_.socket())) << "the control socket was opened";
  }

  // The witness does leave its trace when the config is valid (the check above can fail).
  const auto good = dir_.write_config(witness, "", "good.toml");
  procsup_process p({"--log-format", "json", "run", good});
  ASSERT_TRUE(p.wait_event("[witness] stopped"));
  EXPECT_TRUE(std::filesystem::exists(marker));
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

class program_missing_binary : public program_test, public ::testing::WithParamInterface<const char*> {};

TEST_P(program_missing_binary, is_reported_with_path_and_errno_and_the_others_keep_running) {
  const std::string strategy = GetParam();
  const auto tag = unique_tag("missing");
  const auto cfg = dir_.write_config(
      "[[program]]\nname = \"good\"\ncommand = " + toml_argv({test_target, "print-pid-then-sleep", tag}) +
          "\n\n[[program]]\nname = \"bad\"\ncommand = [\"/nonexistent/x\", \"--flag\"]\nstrategy = \"" + strategy +
          "\"\nbackoff = { initial = \"0s\", max = \"200ms\" }\n\n"
          "[[program]]\nname = \"after\"\ncommand = " +
          toml_argv({test_target, "print-pid-then-sleep", tag}) + "\n",
      "intensity = 1000\nperiod = \"60s\"\n");
  procsup_process p({"--log-format", "json", "run", cfg});

  auto good = p.wait_event("[good] ready");
  auto after = p.wait_event("[after] ready");
  ASSERT_TRUE(good && after);
  const pid_t good_pid = good->at("pid").get<pid_t>();
  const pid_t after_pid = after->at("pid").get<pid_t>();

  auto failed = p.wait_event("[bad] spawn_failed");
  ASSERT_TRUE(failed);
  const std::string cause = failed->value("cause", "");
  EXPECT_NE(cause.find("/nonexistent/x"), std::string::npos) << cause;
  EXPECT_NE(cause.find("No such file or directory"), std::string::npos) << cause;

  if (strategy == "stop") {
    ASSERT_TRUE(p.wait_event("[bad] stopped"));
    const auto s = status_of(dir_.socket(), "bad");
    EXPECT_EQ(s["state"], "failed") << s.dump();
    EXPECT_TRUE(s["pid"].is_null());
    EXPECT_NE(s.value("last_error", "").find("/nonexistent/x"), std::string::npos) << s.dump();
  } else {
    // It keeps being retried (with backoff); wait for a few attempts.
    std::size_t from = failed->at("_index").get<std::size_t>() + 1;
    for (int i = 0; i < 3; ++i) {
      auto again = p.wait_event("[bad] spawn_failed", json::object(), from);
      ASSERT_TRUE(again);
      from = again->at("_index").get<std::size_t>() + 1;
    }
    EXPECT_GE(p.events("[bad] restarting").size(), 3U);
  }

  // The others: same pids, running, never restarted.
  for (auto [id, pid] : {std::pair<const char*, pid_t>{"good", good_pid}, {"after", after_pid}}) {
    const auto s = status_of(dir_.socket(), id);
    EXPECT_EQ(s["state"], "running") << s.dump();
    EXPECT_EQ(s["pid"], pid) << s.dump();
    EXPECT_EQ(s["restarts"], 0) << s.dump();
    EXPECT_TRUE(process_alive(pid));
  }
  EXPECT_TRUE(p.events("[good] crashed").empty());
  EXPECT_TRUE(p.events("[after] crashed").empty());

  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  EXPECT_EQ(live_processes_tagged(tag), std::vector<pid_t>{});
}

INSTANTIATE_TEST_SUITE_P(program_config, program_missing_binary, ::testing::Values("stop", "restart"));

}  // namespace
