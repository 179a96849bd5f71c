// Black-box tests of the built `procsup` binary (launched with procsup's own launcher):
// `procsup check` on good and bad configs, `procsup ctl` against a missing socket, usage errors.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "helpers/process_guard.hpp"
#include "procsup/daemon/exit_codes.hpp"
#include "procsup/supervisor/launcher.hpp"

namespace {

namespace codes = procsup::daemon::exit_codes;

struct run_result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string drain(int fd) {
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<std::size_t>(n));
  return s;
}

// Runs procsup with `args`; stdout and stderr captured (stdout is small, so reading one pipe
// after the other cannot deadlock).
run_result procsup_cli(std::vector<std::string> args) {
  int out[2];
  int err[2];
  EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
  EXPECT_EQ(::pipe2(err, O_CLOEXEC), 0);
  procsup::exec_spec spec;
  spec.path = PROCSUP_BINARY;
  spec.argv = {"procsup"};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.setup.fds = {{out[1], 1}, {err[1], 2}};
  const auto r = procsup::launch_exec(spec);
  ::close(out[1]);
  ::close(err[1]);
  run_result result;
  if (std::holds_alternative<pid_t>(r)) {
    result.out = drain(out[0]);
    result.err = drain(err[0]);
    int status = 0;
    ::waitpid(std::get<pid_t>(r), &status, 0);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  } else {
    ADD_FAILURE() << std::get<procsup::launch_error>(r).message;
  }
  ::close(out[0]);
  ::close(err[0]);
  return result;
}

class daemon_cli : public procsup::testing::process_guard_test {
 protected:
  void SetUp() override {
    process_guard_test::SetUp();
    char tmpl[] = "/tmp/procsup-cli-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    process_guard_test::TearDown();
  }
  std::string write_config(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(daemon_cli, check_accepts_a_valid_config) {
  const auto path = write_config("ok.toml", "[supervisor]\nintensity = 3\n\n[[program]]\nname = \"a\"\n"
                                            "command = [\"/bin/sleep\", \"10\"]\ninstances = 2\n");
  const auto r = procsup_cli({"check", path});
  EXPECT_EQ(r.exit_code, codes::clean) << r.err;
  EXPECT_EQ(r.out, path + ": ok (1 programs, 2 instances)\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(daemon_cli, check_rejects_a_bad_config_with_exit_2_and_file_line_key_on_stderr) {
  const auto path = write_config("bad.toml", "[[program]]\nname = \"a\"\ncommand = [\"/bin/true\"]\n"
                                             "stop_timeout = \"10x\"\nfrobnicate = true\n");
  const auto r = procsup_cli({"check", path});
  EXPECT_EQ(r.exit_code, codes::usage);
  EXPECT_NE(r.err.find(path + ":4:16: program[0].stop_timeout: bad duration \"10x\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(path + ":5:1: program[0].frobnicate: unknown key"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("2 errors"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(daemon_cli, check_reports_a_syntax_error_with_its_position) {
  const auto path = write_config("syntax.toml", "[supervisor]\npolicy = \"one_for_one\n");
  const auto r = procsup_cli({"check", path});
  EXPECT_EQ(r.exit_code, codes::usage);
  EXPECT_EQ(r.err.rfind(path + ":2:", 0), 0U) << r.err;
}

TEST_F(daemon_cli, check_warns_about_a_missing_binary_but_passes) {
  const auto path = write_config("missing.toml", "[[program]]\nname = \"a\"\ncommand = [\"/nonexistent/bin/a\"]\n");
  const auto r = procsup_cli({"check", path});
  EXPECT_EQ(r.exit_code, codes::clean);
  EXPECT_NE(r.err.find("warning: " + path + ":1: program[0].command: /nonexistent/bin/a: No such file or directory"),
            std::string::npos)
      << r.err;
}

TEST_F(daemon_cli, check_of_a_missing_file_names_it) {
  const auto r = procsup_cli({"check", dir_ + "/nope.toml"});
  EXPECT_EQ(r.exit_code, codes::usage);
  EXPECT_NE(r.err.find(dir_ + "/nope.toml: cannot read config: No such file or directory"), std::string::npos) << r.err;
}

TEST_F(daemon_cli, ctl_against_a_missing_socket_names_the_path) {
  const std::string sock = dir_ + "/procsup.sock";
  const auto r = procsup_cli({"ctl", "--socket", sock, "status"});
  EXPECT_EQ(r.exit_code, codes::internal_error);
  EXPECT_EQ(r.err, "procsup ctl: cannot connect to " + sock + ": No such file or directory \u2014 is procsup running?\n");
}

TEST_F(daemon_cli, usage_errors_exit_2) {
  EXPECT_EQ(procsup_cli({}).exit_code, codes::usage);
  EXPECT_EQ(procsup_cli({"frobnicate"}).exit_code, codes::usage);
  EXPECT_EQ(procsup_cli({"check"}).exit_code, codes::usage);
  EXPECT_EQ(procsup_cli({"ctl", "signal", "api", "NOPE"}).exit_code, codes::usage);
  EXPECT_EQ(procsup_cli({"--help"}).exit_code, codes::clean);
}

}  // namespace
