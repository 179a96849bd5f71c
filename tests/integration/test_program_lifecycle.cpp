// Black-box (issue 20): per-program failure budgets (a crash-looping program goes fatal alone),
// essential programs and the exit code procsup passes on (as tini), exit_when = "all_done", the
// environment of a program (passwd variables after a user drop, PROCSUP_*, {instance}),
// ${VAR} checked by `procsup check`, and autostart = false.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <regex>
#include <string>

#include "helpers/program_harness.hpp"

namespace {

using namespace procsup::testing;

class program_lifecycle : public program_test {};

std::string program(const std::string& name, const std::vector<std::string>& argv, const std::string& extra = "") {
  return "[[program]]\nname = " + toml_str(name) + "\ncommand = " + toml_argv(argv) + "\n" + extra + "\n";
}

// Waits for an output line of a program that contains `text` (whatever the log format puts
// around it); true if it came.
bool wait_output(procsup_process& p, const std::string& text, std::size_t from = 0) {
  return p.wait_line([&](const std::string& line) { return line.find(text) != std::string::npos; },
                     "containing \"" + text + "\"", from)
      .has_value();
}

// The case: `typo` names a binary that does not exist. It goes fatal on its own budget
// (default: the [supervisor] intensity, 5 in 60 s), `healthy` keeps its pid, procsup keeps
// running; once the binary exists, `ctl start typo` gives it a fresh budget and it runs.
TEST_F(program_lifecycle, a_program_over_its_budget_goes_fatal_while_the_others_keep_running) {
  const auto tag = unique_tag("budget");
  const std::string typo = dir_.file("typo.sh");
  const auto cfg = dir_.write_config(program("healthy", {test_target, "print-pid-then-sleep", tag}) +
                                     program("typo", {typo, tag}));
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("[healthy] ready"));
  const auto healthy_pid = status_of(dir_.socket(), "healthy").value("pid", 0);
  ASSERT_GT(healthy_pid, 0);

  const auto fatal = p.wait_event("[typo] fatal");
  ASSERT_TRUE(fatal) << p.output();
  EXPECT_NE(fatal->value("cause", "").find("more than 5 restarts in 60000 ms"), std::string::npos) << fatal->dump();

  const auto typo_status = status_of(dir_.socket(), "typo");
  EXPECT_EQ(typo_status.value("state", ""), "fatal") << typo_status.dump();
  const auto healthy = status_of(dir_.socket(), "healthy");
  EXPECT_EQ(healthy.value("state", ""), "running");
  EXPECT_EQ(healthy.value("pid", 0), healthy_pid);
  EXPECT_TRUE(process_alive(healthy_pid));
  EXPECT_TRUE(p.events("gave_up").empty());
  const auto table = ctl(dir_.socket(), {"status"});
  EXPECT_NE(table.out.find("fatal"), std::string::npos) << table.out;

  // Fixed; started by hand: a fresh budget, and it runs.
  dir_.write("typo.sh", "#!/bin/sh\nexec " + test_target + " print-pid-then-sleep \"$1\"\n", true);
  const std::size_t from = p.lines().size();
  const auto r = ctl(dir_.socket(), {"start", "typo"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(p.wait_event("[typo] ready", json::object(), from));
  EXPECT_EQ(status_of(dir_.socket(), "typo").value("state", ""), "running");

  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  EXPECT_EQ(wait_tagged_gone(tag), std::vector<pid_t>{});
}

TEST_F(program_lifecycle, an_own_budget_of_max_restarts_applies_before_the_supervisor_intensity) {
  const auto cfg = dir_.write_config(program("crashy", {test_target, "exit", "1"}, "max_restarts = 2\nrestart_period = \"1h\""),
                                     "intensity = 100\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  const auto fatal = p.wait_event("[crashy] fatal");
  ASSERT_TRUE(fatal) << p.output();
  EXPECT_EQ(fatal->value("restarts", -1), 2);
  EXPECT_EQ(p.events("[crashy] crashed").size(), 3U);  // the first run and its 2 restarts
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

// An essential program with strategy "stop" ends procsup with its own exit code; the others are
// stopped first.
TEST_F(program_lifecycle, an_essential_program_that_exits_42_makes_procsup_exit_42) {
  const auto tag = unique_tag("essential");
  const auto cfg = dir_.write_config(program("other", {test_target, "print-pid-then-sleep", tag}) +
                                     program("main", {test_target, "exit", "42"}, "essential = true\nstrategy = \"stop\""));
  procsup_process p({"--log-format", "json", "run", cfg});
  EXPECT_EQ(p.wait_exit(), 42) << p.output();
  EXPECT_TRUE(p.events("essential program ended: stopping").size() == 1U) << p.output();
  EXPECT_EQ(wait_tagged_gone(tag), std::vector<pid_t>{});
}

// Restarted until its budget is spent, then fatal: 128 + 11 for SIGSEGV, as tini reports it.
TEST_F(program_lifecycle, an_essential_program_that_goes_fatal_by_sigsegv_makes_procsup_exit_139) {
  const auto cfg = dir_.write_config(program("main", {test_target, "segv"}, "essential = true\nmax_restarts = 1"));
  procsup_process p({"--log-format", "json", "run", cfg});
  EXPECT_EQ(p.wait_exit(), 128 + 11) << p.output();
  EXPECT_EQ(p.events("[main] fatal").size(), 1U) << p.output();
}

TEST_F(program_lifecycle, an_essential_program_that_cannot_start_makes_procsup_exit_127_and_a_fixed_code_wins) {
  {
    const auto cfg = dir_.write_config(program("main", {"/nonexistent/main"}, "essential = true\nmax_restarts = 0"));
    procsup_process p({"--log-format", "json", "run", cfg});
    EXPECT_EQ(p.wait_exit(), 127) << p.output();
  }
  {
    const auto cfg = dir_.write_config(
        program("main", {test_target, "exit", "42"}, "essential = true\nstrategy = \"stop\"\nexit_code = 5"));
    procsup_process p({"--log-format", "json", "run", cfg});
    EXPECT_EQ(p.wait_exit(), 5) << p.output();
  }
}

// The second bug: strategy "escalate" lost the program's code (procsup exited 3).
TEST_F(program_lifecycle, a_program_with_strategy_escalate_that_exits_42_makes_procsup_exit_42) {
  const auto cfg = dir_.write_config(program("main", {test_target, "exit", "42"}, "strategy = \"escalate\""));
  procsup_process p({"--log-format", "json", "run", cfg});
  EXPECT_EQ(p.wait_exit(), 42) << p.output();
}

TEST_F(program_lifecycle, exit_when_all_done_exits_0_after_the_last_batch_program) {
  const auto cfg = dir_.write_config(program("first", {test_target, "exit", "0"}) +
                                         program("last", {test_target, "sleep", "0.5"}) +
                                         program("failing", {test_target, "exit", "3"}, "strategy = \"stop\""),
                                     "exit_when = \"all_done\"\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  const auto last = p.events("[last] stopped");
  const auto done = p.events("every program has ended (exit_when = \"all_done\"): stopping");
  ASSERT_EQ(last.size(), 1U) << p.output();
  ASSERT_EQ(done.size(), 1U) << p.output();
  // In order: the line of the last program's end comes before procsup's.
  std::size_t last_at = 0, done_at = 0;
  const auto lines = p.lines();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find("\"[last] stopped\"") != std::string::npos) last_at = i;
    if (lines[i].find("all_done") != std::string::npos) done_at = i;
  }
  EXPECT_LT(last_at, done_at);
}

TEST_F(program_lifecycle, without_exit_when_procsup_keeps_serving_after_every_program_ended) {
  const auto cfg = dir_.write_config(program("first", {test_target, "exit", "0"}));
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("[first] stopped"));
  EXPECT_EQ(status_of(dir_.socket(), "first").value("state", ""), "stopped");  // still answering
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

TEST_F(program_lifecycle, a_program_run_as_nobody_sees_its_passwd_home_user_logname_and_shell) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (a user drop)";
  const auto cfg = dir_.write_config(program("who", {test_target, "print-env", "HOME", "USER", "LOGNAME", "SHELL",
                                                     "PROCSUP_PROGRAM", "PROCSUP_INSTANCE", "PROCSUP_INSTANCE_ID"},
                                             "user = \"nobody\""));
  procsup_process p({"--log-format", "json", "run", cfg});
  for (const char* line : {"HOME=/nonexistent", "USER=nobody", "LOGNAME=nobody", "SHELL=/usr/sbin/nologin",
                           "PROCSUP_PROGRAM=who", "PROCSUP_INSTANCE=0", "PROCSUP_INSTANCE_ID=who"})
    EXPECT_TRUE(wait_output(p, line)) << line;
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

bool can_connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// `{instance}` in command and env: two instances of a server bind two ports (800 and 801: root).
TEST_F(program_lifecycle, two_instances_bind_ports_800_and_801_from_80_instance) {
  if (::geteuid() != 0) GTEST_SKIP() << "ports below 1024 need root";
  const auto cfg = dir_.write_config(
      program("web", {test_target, "listen-tcp", "80{instance}"}, "instances = 2\nenv = { PORT = \"80{instance}\" }") +
      program("port", {test_target, "print-env", "PORT", "PROCSUP_INSTANCE_ID"},
              "instances = 2\nenv = { PORT = \"80{instance}\" }"));
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(wait_output(p, "listening 800"));
  ASSERT_TRUE(wait_output(p, "listening 801"));
  EXPECT_TRUE(can_connect(800));
  EXPECT_TRUE(can_connect(801));
  EXPECT_TRUE(wait_output(p, "PROCSUP_INSTANCE_ID=port:1"));
  EXPECT_TRUE(wait_output(p, "PORT=801"));
  EXPECT_TRUE(wait_output(p, "PORT=800"));
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

TEST_F(program_lifecycle, check_rejects_an_unset_variable_and_run_expands_a_set_one) {
  ::unsetenv("PROCSUP_TEST_DB");
  const auto cfg = dir_.write_config(program("api", {test_target, "print-env", "DB"}, "env = { DB = \"${PROCSUP_TEST_DB}\" }"));
  const auto r = run_procsup_cli({"check", cfg});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(cfg + ":7:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("${PROCSUP_TEST_DB} is not set"), std::string::npos) << r.err;

  ::setenv("PROCSUP_TEST_DB", "pg://db1", 1);  // procsup inherits the test's environment
  procsup_process p({"--log-format", "json", "run", cfg});
  EXPECT_TRUE(wait_output(p, "DB=pg://db1"));
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  ::unsetenv("PROCSUP_TEST_DB");
}

TEST_F(program_lifecycle, an_env_file_sets_variables_that_env_overrides) {
  dir_.write("api.env", "# api settings\nMODE=file\nTOKEN=\"s3 cr\\\"et\"\n");
  const auto cfg = dir_.write_config(
      program("api", {test_target, "print-env", "MODE", "TOKEN"}, "env_file = [\"api.env\"]\nenv = { MODE = \"env\" }"));
  procsup_process p({"--log-format", "json", "run", cfg});
  EXPECT_TRUE(wait_output(p, "MODE=env"));
  EXPECT_TRUE(wait_output(p, "TOKEN=s3 cr\\\"et"));  // JSON-escaped in the log line
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

TEST_F(program_lifecycle, a_program_with_autostart_false_starts_only_on_ctl_start) {
  const auto tag = unique_tag("autostart");
  const auto cfg = dir_.write_config(program("idle", {test_target, "print-pid-then-sleep", tag}, "autostart = false") +
                                     program("busy", {test_target, "sleep", "1000"}));
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("ready"));
  const auto idle = status_of(dir_.socket(), "idle");
  EXPECT_EQ(idle.value("state", ""), "stopped") << idle.dump();
  EXPECT_TRUE(idle["pid"].is_null());
  EXPECT_TRUE(p.events("[idle] spawned").empty());
  EXPECT_EQ(live_processes_tagged(tag), std::vector<pid_t>{});

  const auto r = ctl(dir_.socket(), {"start", "idle"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(p.wait_event("[idle] ready"));
  EXPECT_EQ(status_of(dir_.socket(), "idle").value("state", ""), "running");
  EXPECT_EQ(live_processes_tagged(tag).size(), 1U);
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  EXPECT_EQ(wait_tagged_gone(tag), std::vector<pid_t>{});
}

// The reference pages of these keys promise that each of their TOML examples passes `check`.
TEST_F(program_lifecycle, every_toml_example_in_docs_config_and_containers_passes_check) {
  for (const char* page : {"config.md", "containers.md"}) {
    const std::string text = read_file(std::string(PROCSUP_DOCS_DIR) + "/" + page);
    ASSERT_FALSE(text.empty()) << page;
    const std::regex block("```toml\n([\\s\\S]*?)```");
    int n = 0;
    for (std::sregex_iterator it(text.begin(), text.end(), block), end; it != end; ++it, ++n) {
      const auto cfg = dir_.write("example.toml", (*it)[1].str());
      const auto r = run_procsup_cli({"check", cfg});
      EXPECT_EQ(r.exit_code, 0) << page << " example " << n << ":\n" << (*it)[1].str() << r.err;
    }
    EXPECT_GT(n, 0) << page;
  }
}

}  // namespace
