// Black-box: config input that is not what it looks like (issue 14). A directory, a FIFO or a
// device given as the config file is an error naming the path (exit 2; before, a directory read
// as an empty config and started an empty supervisor); a NUL in a string that becomes argv, an
// environment value, a path or a user name is an error at file:line:col (before, the string was
// silently cut at the NUL: "/bin/sleep\u0000x" ran /bin/sleep).
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "helpers/program_harness.hpp"

namespace {

using namespace procsup::testing;

class program_config_input : public program_test {};

TEST_F(program_config_input, a_directory_fifo_or_device_as_the_config_is_an_error_naming_the_path) {
  const std::string directory = dir_.file("d.toml");
  ASSERT_EQ(::mkdir(directory.c_str(), 0755), 0);
  const std::string fifo = dir_.file("f.toml");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {directory, "a directory"}, {fifo, "a FIFO"}, {"/dev/null", "a character device"}};
  for (const auto& [path, what] : cases) {
    SCOPED_TRACE(path);
    const std::string expected = path + ": cannot read config: it is " + what + ", not a regular file";
    // Bounded: a FIFO nobody writes to must not make procsup wait.
    const auto check = run_procsup_cli({"check", path}, 10s);
    EXPECT_EQ(check.exit_code, 2) << check.out << check.err;
    EXPECT_NE(check.err.find(expected), std::string::npos) << check.err;
    EXPECT_EQ(check.out.find("ok"), std::string::npos) << check.out;
    // --exit-after bounds a run that wrongly accepted it (it would exit 0).
    const auto run = run_procsup_cli({"run", path, "--exit-after", "10s"}, 20s);
    EXPECT_EQ(run.exit_code, 2) << run.err;
    EXPECT_NE(run.err.find(expected), std::string::npos) << run.err;
    EXPECT_FALSE(std::filesystem::exists(dir_.socket()));
  }
}

// 1-based number of the line of `text` containing `snippet`; 1-based column of `at` (the first
// `at` on that line).
std::pair<int, int> position_of(const std::string& text, const std::string& snippet, const std::string& at) {
  const auto pos = text.find(snippet);
  if (pos == std::string::npos) return {-1, -1};
  const int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(pos), '\n'));
  const auto line_start = text.rfind('\n', pos) == std::string::npos ? 0 : text.rfind('\n', pos) + 1;
  const auto col = text.find(at, line_start);
  return {line, static_cast<int>(col - line_start) + 1};
}

TEST_F(program_config_input, a_nul_in_argv_env_a_path_or_a_user_name_is_an_error_at_file_line_col) {
  const std::string marker = dir_.file("started");
  // Each case: one [[program]] (or [supervisor] line) with a NUL in one string; `at` is where
  // the string starts on its line (toml++ reports the value's position), `key` the dotted key.
  struct nul_case {
    const char* name;
    std::string program;  // key = value lines of the [[program]] table (name and command added)
    std::string sup;      // extra [supervisor] lines
    std::string snippet;  // the offending line
    std::string at;       // the value's start in that line
    std::string key;
  };
  const std::string touch = "command = " + toml_argv({"/usr/bin/touch", marker}) + "\n";
  const std::vector<nul_case> cases = {
      {"argv[0]", "command = [\"/bin/sleep\\u0000x\", \"1000\"]\n", "", "sleep\\u0000x", "\"/bin/sleep", "program[0].command[0]"},
      {"argv[1]", "command = [\"/usr/bin/touch\", \"" + marker + "\\u0000.x\"]\n", "", "\\u0000.x\"]", "\"" + marker,
       "program[0].command[1]"},
      {"env value", touch + "env = { A = \"b\\u0000c\" }\n", "", "env = ", "\"b\\u0000c\"", "program[0].env.A"},
      {"cwd", touch + "cwd = \"/tmp\\u0000/x\"\n", "", "cwd = ", "\"/tmp", "program[0].cwd"},
      {"output file", touch + "stdout = \"out\\u0000.log\"\n", "", "stdout = ", "\"out", "program[0].stdout"},
      {"user name", touch + "user = \"root\\u0000x\"\n", "", "user = ", "\"root", "program[0].user"},
      {"socket path", touch, "socket = \"/tmp/s\\u0000.sock\"\n", "socket = \"/tmp/s", "\"/tmp/s", "supervisor.socket"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string file = std::string("nul-") + std::to_string(&c - cases.data()) + ".toml";
    const std::string body = "[[program]]\nname = \"p\"\n" + c.program;
    // A [supervisor] socket line of its own would be a duplicate key: the case's goes in place of it.
    const std::string text = c.sup.empty() ? "[supervisor]\nsocket = " + toml_str(dir_.socket()) + "\n\n" + body
                                           : "[supervisor]\n" + c.sup + "\n" + body;
    const std::string path = dir_.write(file, text);
    const auto [line, col] = position_of(text, c.snippet, c.at);
    ASSERT_GT(line, 0);
    const std::string where = path + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + c.key +
                              ": contains a NUL character (\\u0000)";
    const auto check = run_procsup_cli({"check", path});
    EXPECT_EQ(check.exit_code, 2) << check.out << check.err;
    EXPECT_NE(check.err.find(where), std::string::npos) << "expected " << where << " in:\n" << check.err;
    const auto run = run_procsup_cli({"run", path, "--exit-after", "10s"});
    EXPECT_EQ(run.exit_code, 2) << run.err;
    EXPECT_NE(run.err.find(where), std::string::npos) << run.err;
    EXPECT_FALSE(std::filesystem::exists(marker)) << "a program ran although the config is invalid";
  }
}

}  // namespace
