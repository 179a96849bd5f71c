// A program's environment (issue 20): env files in systemd's EnvironmentFile syntax (and their
// errors with file:line), ${VAR} / ${VAR:-default} expansion, {instance}, and the environment
// an instance is launched with (passwd variables, env files, env, PROCSUP_*), in that order.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>

#include "procsup/daemon/environment.hpp"

namespace {

namespace pd = procsup::daemon;

pd::env_entries parse_ok(const std::string& text) {
  auto r = pd::parse_env_file(text, "/etc/api.env");
  if (auto* errors = std::get_if<std::vector<pd::config_error>>(&r)) {
    std::string all;
    for (const auto& e : *errors) all += e.to_string() + "\n";
    ADD_FAILURE() << all;
    return {};
  }
  return std::get<pd::env_entries>(r);
}

std::vector<std::string> parse_errors(const std::string& text) {
  auto r = pd::parse_env_file(text, "/etc/api.env");
  std::vector<std::string> out;
  if (auto* errors = std::get_if<std::vector<pd::config_error>>(&r))
    for (const auto& e : *errors) out.push_back(e.to_string());
  else
    ADD_FAILURE() << "parsed without error:\n" << text;
  return out;
}

using entries = pd::env_entries;

TEST(daemon_environment, env_file_lines_are_key_value_with_comments_and_blank_lines_skipped) {
  EXPECT_EQ(parse_ok("# the api\n\nPORT=8080\n  ; old style comment\nMODE = prod  \nexport TOKEN=abc\nEMPTY=\n"),
            (entries{{"PORT", "8080"}, {"MODE", "prod"}, {"TOKEN", "abc"}, {"EMPTY", ""}}));
}

TEST(daemon_environment, env_file_quotes_and_escapes_follow_systemd) {
  EXPECT_EQ(parse_ok("A='single $HOME \\n kept'\n"), (entries{{"A", "single $HOME \\n kept"}}));
  EXPECT_EQ(parse_ok("B=\"double \\\"q\\\" \\\\ \\$x \\t\"\n"), (entries{{"B", "double \"q\" \\ $x \\t"}}));
  EXPECT_EQ(parse_ok("C=\"two\nlines\"\nD=after\n"), (entries{{"C", "two\nlines"}, {"D", "after"}}));
  EXPECT_EQ(parse_ok("E=one \\\n  two\n"), (entries{{"E", "one   two"}}));
  EXPECT_EQ(parse_ok("F=a\\ b\\#c # not a comment\n"), (entries{{"F", "a b#c # not a comment"}}));
  EXPECT_EQ(parse_ok("G='con'\"cat\"\n"), (entries{{"G", "concat"}}));
  EXPECT_EQ(parse_ok("H=it's\n"), (entries{{"H", "it's"}}));  // a quote inside unquoted text is a character
  EXPECT_EQ(parse_ok("I=last"), (entries{{"I", "last"}}));   // no final newline
}

TEST(daemon_environment, env_file_errors_name_file_and_line) {
  EXPECT_EQ(parse_errors("OK=1\nnot a line\n"),
            (std::vector<std::string>{"/etc/api.env:2:0: expected KEY=VALUE, got \"not\" without \"=\""}));
  EXPECT_EQ(parse_errors("\n\n1BAD=x\n"),
            (std::vector<std::string>{
                "/etc/api.env:3:0: \"1BAD\" is not a valid variable name (letters, digits and _, not first a digit)"}));
  EXPECT_EQ(parse_errors("A=1\nQ=\"open\nB=2\n"),
            (std::vector<std::string>{"/etc/api.env:2:0: unterminated double quote in the value of Q"}));
  EXPECT_EQ(parse_errors("S='open\n"),
            (std::vector<std::string>{"/etc/api.env:1:0: unterminated single quote in the value of S"}));
  // Every bad line is reported, with the line numbers after multi-line values right.
  EXPECT_EQ(parse_errors("M=\"a\nb\"\nx\n=y\n").size(), 2U);
  EXPECT_EQ(parse_errors("M=\"a\nb\"\nx\n")[0], "/etc/api.env:3:0: expected KEY=VALUE, got \"x\" without \"=\"");
}

TEST(daemon_environment, a_missing_env_file_is_one_error_naming_it) {
  auto r = pd::load_env_file("/nonexistent/api.env");
  ASSERT_TRUE(std::holds_alternative<std::vector<pd::config_error>>(r));
  EXPECT_EQ(std::get<std::vector<pd::config_error>>(r).at(0).to_string(),
            "/nonexistent/api.env: cannot read env file: No such file or directory");
}

pd::env_lookup fake_env(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(daemon_environment, variables_expand_with_defaults_and_other_dollars_stay) {
  const auto env = fake_env({{"HOST", "db1"}, {"EMPTY", ""}});
  std::string error;
  EXPECT_EQ(pd::expand_variables("postgres://${HOST}:${PORT:-5432}/x", env, error), "postgres://db1:5432/x");
  EXPECT_EQ(pd::expand_variables("${EMPTY:-fallback}", env, error), "fallback");
  EXPECT_EQ(pd::expand_variables("[${EMPTY}]", env, error), "[]");  // set but empty, no default: empty
  EXPECT_EQ(pd::expand_variables("echo $HOST $$ $${HOST} ${HOST:-}", env, error), "echo $HOST $$ ${HOST} db1");
  EXPECT_EQ(error, "");
}

TEST(daemon_environment, an_unset_variable_without_default_or_a_malformed_one_is_an_error) {
  const auto env = fake_env({});
  std::string error;
  EXPECT_FALSE(pd::expand_variables("--db=${DB_URL}", env, error).has_value());
  EXPECT_EQ(error, "${DB_URL} is not set in procsup's environment (give a default: ${DB_URL:-value})");
  EXPECT_FALSE(pd::expand_variables("${OPEN", env, error).has_value());
  EXPECT_EQ(error, "unterminated \"${\" in \"${OPEN\" (write $${ for a literal ${)");
  EXPECT_FALSE(pd::expand_variables("${a b}", env, error).has_value());
  EXPECT_NE(error.find("\"a b\" is not a variable name"), std::string::npos) << error;
}

TEST(daemon_environment, instance_placeholders_expand_to_the_index) {
  EXPECT_EQ(pd::expand_instance("--port=80{instance}", 0), "--port=800");
  EXPECT_EQ(pd::expand_instance("{instance}-{instance}", 12), "12-12");
  EXPECT_EQ(pd::expand_instance("{instances}", 1), "{instances}");  // only the exact token
  EXPECT_EQ(pd::expand_instance("none", 3), "none");
}

TEST(daemon_environment, an_instance_gets_passwd_then_files_then_env_then_procsup_variables) {
  pd::program_config p;
  p.name = "api";
  p.user = "nobody";
  p.home = "/nonexistent";
  p.shell = "/usr/sbin/nologin";
  p.file_env = {{"MODE", "file"}, {"FROM_FILE", "1"}, {"HOME", "/from-file"}};
  p.env = {{"MODE", "env"}, {"PORT", "80{instance}"}};
  const auto env = pd::instance_environment(p, {"HOME=/root", "USER=root", "PATH=/bin"}, 1, "api:1", true);
  auto value = [&](const std::string& k) -> std::string {
    for (const auto& e : env)
      if (e.rfind(k + "=", 0) == 0) return e.substr(k.size() + 1);
    return "<unset>";
  };
  EXPECT_EQ(value("HOME"), "/from-file");  // an env file may still set it, as systemd's Environment=
  EXPECT_EQ(value("USER"), "nobody");
  EXPECT_EQ(value("LOGNAME"), "nobody");
  EXPECT_EQ(value("SHELL"), "/usr/sbin/nologin");
  EXPECT_EQ(value("PATH"), "/bin");
  EXPECT_EQ(value("MODE"), "env");
  EXPECT_EQ(value("FROM_FILE"), "1");
  EXPECT_EQ(value("PORT"), "801");
  EXPECT_EQ(value("PROCSUP_PROGRAM"), "api");
  EXPECT_EQ(value("PROCSUP_INSTANCE"), "1");
  EXPECT_EQ(value("PROCSUP_INSTANCE_ID"), "api:1");
  EXPECT_EQ(std::count_if(env.begin(), env.end(), [](const std::string& e) { return e.rfind("HOME=", 0) == 0; }), 1);

  // Without a user drop (procsup not root) the passwd variables are left alone.
  const auto same = pd::instance_environment(p, {"HOME=/root", "USER=root"}, 0, "api:0", false);
  EXPECT_NE(std::find(same.begin(), same.end(), "USER=root"), same.end());
}

}  // namespace
