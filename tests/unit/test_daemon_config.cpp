// The procsup config: good files parse to the expected structs; every bad input gives an error
// with file:line:col and the key; all errors of a file are reported; units.
#include <sys/resource.h>

#include <gtest/gtest.h>

#include <csignal>
#include <string>

#include "procsup/daemon/config.hpp"

namespace {

using namespace std::chrono_literals;
namespace pd = procsup::daemon;

pd::config parse_ok(const std::string& text, const std::string& file = "/etc/procsup/test.toml") {
  auto r = pd::parse_config(text, file);
  if (auto* errors = std::get_if<std::vector<pd::config_error>>(&r)) {
    std::string all;
    for (const auto& e : *errors) all += e.to_string() + "\n";
    ADD_FAILURE() << all;
    return {};
  }
  return std::get<pd::config>(r);
}

std::vector<pd::config_error> parse_bad(const std::string& text) {
  auto r = pd::parse_config(text, "bad.toml");
  if (auto* errors = std::get_if<std::vector<pd::config_error>>(&r)) return *errors;
  ADD_FAILURE() << "parsed without error:\n" << text;
  return {};
}

TEST(daemon_config, the_issue_example_parses_to_the_expected_structs) {
  const auto cfg = parse_ok(R"(
[supervisor]
policy = "rest_for_one"
intensity = 7
period = "2m"
socket = "/tmp/p.sock"

[[program]]
name = "api"
command = ["/usr/local/bin/api", "--port", "8080"]
strategy = "escalate"
restart_on_exit = true
success_codes = [0, 3]
instances = 2
env = { PORT = "8080", MODE = "prod" }
cwd = "/srv/api"
user = "nobody"
stop_signal = "INT"
stop_timeout = "1500ms"
backoff = { initial = "0s", max = "30s" }
limits = { nofile = 1024, as = "1GiB", cpu = "60s" }
stdout = "api.out"
stderr = "inherit"
log_max_size = "10MiB"
log_keep = 3
ready = "protocol"
ready_timeout = "5s"
hang_timeout = "1h"

[[program]]
name = "plain"
command = ["sleep", "1000"]
)",
                            "/tmp/test.toml");  // an existing directory: an output file's must exist
  EXPECT_EQ(cfg.supervisor.policy, procsup::restart_policy::rest_for_one);
  EXPECT_EQ(cfg.supervisor.intensity, 7);
  EXPECT_EQ(cfg.supervisor.period, 120s);
  EXPECT_EQ(cfg.supervisor.socket, "/tmp/p.sock");
  ASSERT_EQ(cfg.programs.size(), 2U);
  const auto& p = cfg.programs[0];
  EXPECT_EQ(p.name, "api");
  EXPECT_EQ(p.command, (std::vector<std::string>{"/usr/local/bin/api", "--port", "8080"}));
  EXPECT_EQ(p.strategy, procsup::strategy::escalate);
  EXPECT_TRUE(p.restart_on_exit);
  EXPECT_EQ(p.success_codes, (std::vector<int>{0, 3}));
  EXPECT_EQ(p.instances, 2);
  ASSERT_EQ(p.env.size(), 2U);
  EXPECT_EQ(p.cwd, "/srv/api");
  EXPECT_EQ(p.user, "nobody");
  EXPECT_EQ(p.uid, 65534U);
  EXPECT_EQ(p.gid, 65534U);
  EXPECT_EQ(p.stop_signal, SIGINT);
  EXPECT_EQ(p.stop_timeout, 1500ms);
  EXPECT_EQ(p.backoff.initial, 0ms);
  EXPECT_EQ(p.backoff.max, 30s);
  ASSERT_EQ(p.limits.size(), 3U);
  for (const auto& l : p.limits) {
    EXPECT_EQ(l.soft, l.hard);
    if (l.resource == RLIMIT_NOFILE) EXPECT_EQ(l.soft, 1024U);
    else if (l.resource == RLIMIT_AS) EXPECT_EQ(l.soft, 1ULL << 30);
    else if (l.resource == RLIMIT_CPU) EXPECT_EQ(l.soft, 60U);
    else ADD_FAILURE() << "unexpected limit " << l.resource;
  }
  EXPECT_EQ(p.stdout_target, (pd::output_target{pd::output_target::kind::file, "/tmp/api.out"}));
  EXPECT_EQ(p.stderr_target.where, pd::output_target::kind::inherit);
  EXPECT_EQ(p.log_max_size, 10ULL << 20);
  EXPECT_EQ(p.log_keep, 3);
  EXPECT_EQ(p.ready, pd::readiness::protocol);
  EXPECT_EQ(p.ready_timeout, 5s);
  EXPECT_EQ(p.hang_timeout, 1h);
  EXPECT_EQ(p.line, 8);

  const auto& d = cfg.programs[1];  // defaults
  EXPECT_EQ(d.strategy, procsup::strategy::restart);
  EXPECT_FALSE(d.restart_on_exit);
  EXPECT_EQ(d.success_codes, std::vector<int>{0});
  EXPECT_EQ(d.instances, 1);
  EXPECT_EQ(d.stop_signal, SIGTERM);
  EXPECT_EQ(d.stop_timeout, 10s);
  EXPECT_FALSE(d.uid.has_value());
  EXPECT_EQ(d.stdout_target.where, pd::output_target::kind::log);
  EXPECT_EQ(d.ready, pd::readiness::none);
}

TEST(daemon_config, an_empty_file_gives_the_defaults) {
  const auto cfg = parse_ok("");
  EXPECT_EQ(cfg.supervisor.policy, procsup::restart_policy::one_for_one);
  EXPECT_EQ(cfg.supervisor.intensity, 5);
  EXPECT_EQ(cfg.supervisor.period, 60s);
  EXPECT_EQ(cfg.supervisor.socket, "/run/procsup.sock");
  EXPECT_TRUE(cfg.programs.empty());
}

struct bad_case {
  const char* what;
  const char* toml;
  int line;
  const char* key;
  const char* message_part;
};

const std::string prog = "[[program]]\nname = \"a\"\ncommand = [\"/bin/true\"]\n";  // lines 1-3

class daemon_config_bad : public ::testing::TestWithParam<bad_case> {};

TEST_P(daemon_config_bad, error_names_file_line_and_key) {
  const auto& c = GetParam();
  const auto errors = parse_bad(c.toml);
  ASSERT_EQ(errors.size(), 1U) << errors.front().to_string();
  const auto& e = errors.front();
  EXPECT_EQ(e.file, "bad.toml");
  EXPECT_EQ(e.line, c.line) << e.to_string();
  EXPECT_EQ(e.key, c.key) << e.to_string();
  EXPECT_NE(e.message.find(c.message_part), std::string::npos) << e.to_string();
  const std::string text = e.to_string();
  EXPECT_EQ(text.rfind("bad.toml:" + std::to_string(c.line) + ":", 0), 0U) << text;
  EXPECT_NE(text.find(c.key), std::string::npos) << text;
}

// Each case: lines 1-3 are a valid program (prog), the bad line is 4 unless noted.
std::vector<bad_case> bad_cases() {
  static const std::vector<std::string> texts = {
      prog + "colour = 1\n",
      prog + "stop_timeout = \"10x\"\n",
      prog + "stop_timeout = 10\n",
      prog + "stop_signal = \"TERMINATE\"\n",
      prog + "strategy = \"retry\"\n",
      prog + "instances = 0\n",
      prog + "user = \"procsup-no-such-user\"\n",
      prog + "limits = { as = \"1GB\" }\n",
      prog + "limits = { files = 3 }\n",
      prog + "restart_on_exit = \"yes\"\n",
      prog + "ready = \"maybe\"\n",
      prog + "log_max_size = \"10 MiB\"\n",
      prog + "success_codes = [0, 300]\n",
      prog + "env = { PORT = 8080 }\n",
      prog + "backoff = { initial = \"5s\", max = \"1s\" }\n",
      "[supervisor]\npolicy = \"one_for_none\"\n",
      "[supervisor]\nperiod = \"0s\"\n",
      "[supervisor]\nintensity = \"five\"\n",
      "[supervisors]\n",
      "[[program]]\nname = \"a\"\ncommand = []\n",
      "[[program]]\nname = \"a\"\ncommand = \"sh -c x\"\n",
      "[[program]]\nname = \"a\"\n",
      "[[program]]\nname = \"has space\"\ncommand = [\"/bin/true\"]\n",
      prog + "[[program]]\nname = \"a\"\ncommand = [\"/bin/true\"]\n",
      "[supervisor]\npolicy = \n",
  };
  return {
      {"unknown key", texts[0].c_str(), 4, "program[0].colour", "unknown key"},
      {"bad duration", texts[1].c_str(), 4, "program[0].stop_timeout", "bad duration \"10x\""},
      {"duration without unit", texts[2].c_str(), 4, "program[0].stop_timeout", "expected a duration"},
      {"unknown signal", texts[3].c_str(), 4, "program[0].stop_signal", "unknown signal"},
      {"unknown strategy", texts[4].c_str(), 4, "program[0].strategy", "unknown value \"retry\""},
      {"instances < 1", texts[5].c_str(), 4, "program[0].instances", "at least 1"},
      {"unknown user", texts[6].c_str(), 4, "program[0].user", "unknown user"},
      {"bad size", texts[7].c_str(), 4, "program[0].limits.as", "bad size \"1GB\""},
      {"unknown limit", texts[8].c_str(), 4, "program[0].limits.files", "unknown limit"},
      {"wrong type bool", texts[9].c_str(), 4, "program[0].restart_on_exit", "expected a boolean, got a string"},
      {"unknown readiness", texts[10].c_str(), 4, "program[0].ready", "unknown value"},
      {"size with space", texts[11].c_str(), 4, "program[0].log_max_size", "bad size"},
      {"exit code range", texts[12].c_str(), 4, "program[0].success_codes[1]", "between 0 and 255"},
      {"env value type", texts[13].c_str(), 4, "program[0].env.PORT", "expected a string"},
      {"backoff order", texts[14].c_str(), 4, "program[0].backoff", "max must not be below initial"},
      {"unknown policy", texts[15].c_str(), 2, "supervisor.policy", "unknown value \"one_for_none\""},
      {"zero period", texts[16].c_str(), 2, "supervisor.period", "longer than 0"},
      {"intensity type", texts[17].c_str(), 2, "supervisor.intensity", "expected an integer"},
      {"unknown table", texts[18].c_str(), 1, "supervisors", "unknown key"},
      {"empty command", texts[19].c_str(), 3, "program[0].command", "empty command"},
      {"command as string", texts[20].c_str(), 3, "program[0].command", "expected an array"},
      {"missing command", texts[21].c_str(), 1, "program[0].command", "missing"},
      {"bad name", texts[22].c_str(), 2, "program[0].name", "not a valid name"},
      {"duplicate name", texts[23].c_str(), 5, "program[1].name", "duplicate program name \"a\" (first defined at line 1)"},
      {"syntax error", texts[24].c_str(), 2, "", ""},
  };
}

INSTANTIATE_TEST_SUITE_P(table, daemon_config_bad, ::testing::ValuesIn(bad_cases()),
                         [](const auto& param_info) {
                           std::string n = param_info.param.what;
                           for (char& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

TEST(daemon_config, all_errors_are_reported_in_file_order) {
  const auto errors = parse_bad(R"([supervisor]
policy = "nope"
period = "10x"

[[program]]
name = "a"
command = []
stop_signal = "NOPE"
)");
  ASSERT_EQ(errors.size(), 4U);
  EXPECT_EQ(errors[0].line, 2);
  EXPECT_EQ(errors[1].line, 3);
  EXPECT_EQ(errors[2].line, 7);
  EXPECT_EQ(errors[3].line, 8);
}

TEST(daemon_config, durations_accept_ms_s_m_h) {
  EXPECT_EQ(pd::parse_duration("500ms"), 500ms);
  EXPECT_EQ(pd::parse_duration("10s"), 10s);
  EXPECT_EQ(pd::parse_duration("1m"), 60s);
  EXPECT_EQ(pd::parse_duration("2h"), 7200s);
  EXPECT_EQ(pd::parse_duration("0s"), 0ms);
  for (const char* bad : {"", "10", "10x", "s", "-1s", "1.5s", "10 s", " 10s", "10sec", "99999999999999999999h"})
    EXPECT_FALSE(pd::parse_duration(bad).has_value()) << bad;
}

TEST(daemon_config, sizes_accept_bytes_and_binary_units) {
  EXPECT_EQ(pd::parse_size("123"), 123U);
  EXPECT_EQ(pd::parse_size("123B"), 123U);
  EXPECT_EQ(pd::parse_size("4KiB"), 4096U);
  EXPECT_EQ(pd::parse_size("10MiB"), 10ULL << 20);
  EXPECT_EQ(pd::parse_size("2GiB"), 2ULL << 30);
  for (const char* bad : {"", "1GB", "1 MiB", "MiB", "-1", "1.5MiB", "1kib", "99999999999999999999GiB"})
    EXPECT_FALSE(pd::parse_size(bad).has_value()) << bad;
}

TEST(daemon_config, signals_by_name_with_or_without_sig_or_number) {
  EXPECT_EQ(pd::parse_signal("TERM"), SIGTERM);
  EXPECT_EQ(pd::parse_signal("SIGHUP"), SIGHUP);
  EXPECT_EQ(pd::parse_signal("KILL"), SIGKILL);
  EXPECT_EQ(pd::parse_signal("9"), 9);
  EXPECT_FALSE(pd::parse_signal("term").has_value());
  EXPECT_FALSE(pd::parse_signal("0").has_value());
  EXPECT_FALSE(pd::parse_signal("SIG").has_value());
  EXPECT_EQ(pd::signal_name(SIGSEGV), "SIGSEGV");
}

TEST(daemon_config, a_missing_file_is_one_error_naming_it) {
  const auto r = pd::load_config("/nonexistent/procsup.toml");
  ASSERT_TRUE(std::holds_alternative<std::vector<pd::config_error>>(r));
  const auto& errors = std::get<std::vector<pd::config_error>>(r);
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].to_string(), "/nonexistent/procsup.toml: cannot read config: No such file or directory");
}

TEST(daemon_config, warnings_name_a_command_that_does_not_resolve) {
  const auto cfg = parse_ok(prog + "[[program]]\nname = \"b\"\ncommand = [\"/nonexistent/bin/x\"]\n");
  const auto warnings = pd::config_warnings(cfg);
  ASSERT_EQ(warnings.size(), 1U);
  EXPECT_NE(warnings[0].find("/etc/procsup/test.toml:4: program[1].command: /nonexistent/bin/x: No such file"),
            std::string::npos)
      << warnings[0];
}

}  // namespace
