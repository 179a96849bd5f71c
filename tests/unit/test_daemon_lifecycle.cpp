// Issue 20's config keys and the pure decisions behind them: failure budgets (restart_window),
// when an essential or escalating program ends procsup and with which code (exit_policy), and
// the config checks: ${VAR} at check time, env files, exit_code, output directories.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "procsup/daemon/config.hpp"
#include "procsup/daemon/environment.hpp"
#include "procsup/daemon/exit_codes.hpp"
#include "procsup/daemon/exit_policy.hpp"
#include "procsup/supervisor/restart_window.hpp"

namespace {

using namespace std::chrono_literals;
namespace pd = procsup::daemon;
using procsup::event_kind;
using procsup::process_state;

// ---- restart_window: the budget logic of a program (and of the whole tree)

TEST(restart_window, allows_max_restarts_within_the_period_then_refuses) {
  procsup::restart_window w;
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(w.try_spend(t0 + i * 1s, 3, 10s)) << i;
  EXPECT_FALSE(w.try_spend(t0 + 3s, 3, 10s));
  EXPECT_EQ(w.spent(t0 + 3s, 10s), 3);  // a refusal spends nothing
}

TEST(restart_window, restarts_older_than_the_period_are_forgotten) {
  procsup::restart_window w;
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  EXPECT_TRUE(w.try_spend(t0, 2, 10s));
  EXPECT_TRUE(w.try_spend(t0 + 5s, 2, 10s));
  EXPECT_FALSE(w.try_spend(t0 + 10s, 2, 10s));  // t0 is exactly 10 s old: still inside
  EXPECT_TRUE(w.try_spend(t0 + 10s + 1ms, 2, 10s));
  EXPECT_EQ(w.spent(t0 + 100s, 10s), 0);
}

TEST(restart_window, zero_max_refuses_the_first_restart_and_clear_gives_the_budget_back) {
  procsup::restart_window w;
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  EXPECT_FALSE(w.try_spend(t0, 0, 10s));
  EXPECT_TRUE(w.try_spend(t0, 1, 10s));
  EXPECT_FALSE(w.try_spend(t0, 1, 10s));
  w.clear();  // `ctl start` of a fatal program
  EXPECT_TRUE(w.try_spend(t0, 1, 10s));
}

// ---- exit_policy

int exited(int code) { return (code & 0xff) << 8; }  // a wait status, as waitpid gives it
int killed(int sig) { return sig; }

TEST(exit_policy, propagate_passes_the_exit_code_or_128_plus_the_signal_as_tini) {
  EXPECT_EQ(pd::propagated_exit_code(exited(42), false), 42);
  EXPECT_EQ(pd::propagated_exit_code(exited(0), false), 0);
  EXPECT_EQ(pd::propagated_exit_code(killed(SIGSEGV), false), 128 + 11);
  EXPECT_EQ(pd::propagated_exit_code(killed(SIGKILL), false), 137);
  // Never ran: a stale status of an earlier run does not count.
  EXPECT_EQ(pd::propagated_exit_code(exited(42), true), pd::exit_codes::could_not_start);
  EXPECT_EQ(pd::propagated_exit_code(-1, false), pd::exit_codes::could_not_start);
}

TEST(exit_policy, only_an_essential_program_that_ended_for_good_ends_procsup) {
  pd::program_config p;
  EXPECT_FALSE(pd::essential_exit_code(p, event_kind::fatal, exited(1), false).has_value());
  p.essential = true;
  EXPECT_EQ(pd::essential_exit_code(p, event_kind::fatal, exited(42), false), 42);
  EXPECT_EQ(pd::essential_exit_code(p, event_kind::stopped, killed(SIGSEGV), false), 139);
  for (auto k : {event_kind::crashed, event_kind::exited, event_kind::restarting, event_kind::spawn_failed})
    EXPECT_FALSE(pd::essential_exit_code(p, k, exited(1), false).has_value()) << procsup::to_string(k);
  p.exit_code = 7;
  EXPECT_EQ(pd::essential_exit_code(p, event_kind::fatal, exited(42), false), 7);
  EXPECT_EQ(pd::escalation_exit_code(p, exited(42), false), 7);
  p.exit_code.reset();
  EXPECT_EQ(pd::escalation_exit_code(p, exited(42), false), 42);
}

TEST(exit_policy, all_done_needs_every_instance_stopped_failed_or_fatal) {
  EXPECT_FALSE(pd::all_ended({}));
  EXPECT_TRUE(pd::all_ended({process_state::stopped, process_state::failed, process_state::fatal}));
  for (auto s : {process_state::starting, process_state::running, process_state::stopping})
    EXPECT_FALSE(pd::all_ended({process_state::stopped, s})) << procsup::to_string(s);
}

// ---- config keys

struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/procsup-lifecycle-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path + "/" + name) << text;
    return path + "/" + name;
  }
};

std::variant<pd::config, std::vector<pd::config_error>> parse(const std::string& text, const std::string& file) {
  return pd::parse_config(text, file);
}

std::string errors_of(const std::variant<pd::config, std::vector<pd::config_error>>& r) {
  std::string all;
  if (auto* errors = std::get_if<std::vector<pd::config_error>>(&r))
    for (const auto& e : *errors) all += e.to_string() + "\n";
  return all;
}

TEST(lifecycle_config, the_new_keys_parse_with_their_defaults) {
  temp_dir d;
  d.write("api.env", "TOKEN=secret\n");
  const auto r = parse(R"([supervisor]
exit_when = "all_done"

[[program]]
name = "api"
command = ["api"]
max_restarts = 3
restart_period = "30s"
essential = true
exit_code = 9
env_file = ["api.env", "-missing.env"]
autostart = false

[[program]]
name = "plain"
command = ["sleep", "1"]
essential = true
exit_code = "propagate"
)",
                       d.path + "/p.toml");
  ASSERT_TRUE(std::holds_alternative<pd::config>(r)) << errors_of(r);
  const auto& cfg = std::get<pd::config>(r);
  EXPECT_EQ(cfg.supervisor.exit_when, pd::exit_rule::all_done);
  const auto& a = cfg.programs.at(0);
  EXPECT_EQ(a.max_restarts, 3);
  EXPECT_EQ(a.restart_period, 30s);
  EXPECT_TRUE(a.essential);
  EXPECT_EQ(a.exit_code, 9);
  EXPECT_EQ(a.env_files, (std::vector<std::string>{d.path + "/api.env", "-" + d.path + "/missing.env"}));
  EXPECT_EQ(a.file_env, (pd::env_entries{{"TOKEN", "secret"}}));
  EXPECT_FALSE(a.autostart);
  const auto& b = cfg.programs.at(1);
  EXPECT_FALSE(b.max_restarts.has_value());  // the [supervisor] intensity / period
  EXPECT_FALSE(b.exit_code.has_value());     // propagate
  EXPECT_TRUE(b.autostart);
  EXPECT_EQ(cfg.supervisor.exit_when == pd::exit_rule::never, false);
}

TEST(lifecycle_config, variables_expand_in_command_env_and_cwd_at_load) {
  ::setenv("PROCSUP_TEST_HOST", "db1", 1);
  ::unsetenv("PROCSUP_TEST_UNSET");
  const auto r = parse(R"([[program]]
name = "api"
command = ["api", "--db=${PROCSUP_TEST_HOST}", "--port=${PROCSUP_TEST_UNSET:-80}{instance}"]
env = { URL = "pg://${PROCSUP_TEST_HOST}/x" }
cwd = "/srv/${PROCSUP_TEST_UNSET:-api}"
)",
                       "/tmp/p.toml");
  ASSERT_TRUE(std::holds_alternative<pd::config>(r)) << errors_of(r);
  const auto& p = std::get<pd::config>(r).programs.at(0);
  EXPECT_EQ(p.command, (std::vector<std::string>{"api", "--db=db1", "--port=80{instance}"}));
  EXPECT_EQ(p.env.at(0).second, "pg://db1/x");
  EXPECT_EQ(p.cwd, "/srv/api");
}

TEST(lifecycle_config, an_unset_variable_without_default_is_an_error_with_file_line) {
  ::unsetenv("PROCSUP_TEST_UNSET");
  const auto r = parse("[[program]]\nname = \"api\"\ncommand = [\"api\",\n  \"--db=${PROCSUP_TEST_UNSET}\"]\n"
                       "env = { A = \"${PROCSUP_TEST_UNSET}\" }\n",
                       "/tmp/p.toml");
  EXPECT_EQ(errors_of(r),
            "/tmp/p.toml:4:3: program[0].command[1]: ${PROCSUP_TEST_UNSET} is not set in procsup's environment "
            "(give a default: ${PROCSUP_TEST_UNSET:-value})\n"
            "/tmp/p.toml:5:13: program[0].env.A: ${PROCSUP_TEST_UNSET} is not set in procsup's environment "
            "(give a default: ${PROCSUP_TEST_UNSET:-value})\n");
}

TEST(lifecycle_config, env_file_errors_name_the_config_line_and_the_env_file_line) {
  temp_dir d;
  d.write("bad.env", "OK=1\nbroken\n");
  const std::string cfg = d.path + "/p.toml";
  const auto r = parse("[[program]]\nname = \"api\"\ncommand = [\"api\"]\nenv_file = [\"bad.env\", \"nope.env\"]\n", cfg);
  EXPECT_EQ(errors_of(r), cfg + ":4:13: program[0].env_file[0]: " + d.path +
                              "/bad.env:2: expected KEY=VALUE, got \"broken\" without \"=\"\n" + cfg +
                              ":4:24: program[0].env_file[1]: " + d.path +
                              "/nope.env: cannot read env file: No such file or directory\n");
}

TEST(lifecycle_config, bad_values_of_the_new_keys_are_errors) {
  const auto r = parse(R"([supervisor]
exit_when = "sometimes"
[[program]]
name = "a"
command = ["a"]
max_restarts = -1
restart_period = "0s"
exit_code = "keep"
[[program]]
name = "b"
command = ["b"]
exit_code = 3
)",
                       "/tmp/p.toml");
  const std::string all = errors_of(r);
  EXPECT_NE(all.find("/tmp/p.toml:2:13: supervisor.exit_when: unknown value \"sometimes\" (expected never | all_done)"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("/tmp/p.toml:6:16: program[0].max_restarts: must be between 0 and 1000000, got -1"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("/tmp/p.toml:7:18: program[0].restart_period: must be longer than 0"), std::string::npos) << all;
  EXPECT_NE(all.find("/tmp/p.toml:8:13: program[0].exit_code: expected \"propagate\" or an exit code 0-255"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("/tmp/p.toml:12:13: program[1].exit_code: has no effect"), std::string::npos) << all;
}

TEST(lifecycle_config, an_output_file_in_a_missing_directory_is_an_error) {
  const auto r = parse("[[program]]\nname = \"a\"\ncommand = [\"a\"]\nstdout = \"/nonexistent/dir/a.log\"\n"
                       "stderr = \"/etc/hostname/a.log\"\n",
                       "/tmp/p.toml");
  EXPECT_EQ(errors_of(r),
            "/tmp/p.toml:4:10: program[0].stdout: directory /nonexistent/dir of /nonexistent/dir/a.log: No such file "
            "or directory\n"
            "/tmp/p.toml:5:10: program[0].stderr: /etc/hostname (the directory of /etc/hostname/a.log) is not a "
            "directory\n");
}

TEST(lifecycle_config, a_user_brings_its_passwd_home_and_shell) {
  const auto r = parse("[[program]]\nname = \"a\"\ncommand = [\"a\"]\nuser = \"nobody\"\n", "/tmp/p.toml");
  ASSERT_TRUE(std::holds_alternative<pd::config>(r)) << errors_of(r);
  const auto& p = std::get<pd::config>(r).programs.at(0);
  EXPECT_EQ(p.home, "/nonexistent");  // Debian's nobody
  EXPECT_FALSE(p.shell.empty());
}

}  // namespace
