// Black-box: a `procsup` command line that scripts can trust. Errors are plain text on stderr
// (JSON only with --json); start / stop / restart answer once done, with the new pid; `ctl status
// [NAME...]` exits 0 only when every listed instance is running, 3 otherwise; --version; a
// socket that is there but not ours gets a permissions hint, not "is procsup running?".
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <regex>

#include "helpers/program_harness.hpp"

#ifndef PROCSUP_COMPLETION
#error "PROCSUP_COMPLETION (daemon/completion/procsup.bash) must be defined"
#endif

namespace {

using namespace procsup::testing;

class program_cli : public program_test {};

TEST_F(program_cli, version_prints_the_version_and_exits_0) {
  const auto r = run_procsup_cli({"--version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_match(r.out, std::regex("procsup [0-9]+\\.[0-9]+\\.[0-9]+\n"))) << r.out;
}

TEST_F(program_cli, errors_are_plain_text_and_json_only_with_json) {
  const auto cfg = dir_.write_config("[[program]]\nname = \"svc\"\ncommand = " + toml_argv({test_target, "sleep", "600"}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("[svc] ready"));

  for (const char* cmd : {"stop", "start", "restart", "logs"}) {
    const auto r = ctl(dir_.socket(), {cmd, "nosuch"});
    EXPECT_EQ(r.exit_code, 1) << cmd;
    EXPECT_EQ(r.err, std::string("procsup ctl ") + cmd + ": no program or instance named \"nosuch\"\n");
    EXPECT_EQ(r.out, "");
  }
  const auto sig = ctl(dir_.socket(), {"signal", "svc", "NOPE"});
  EXPECT_EQ(sig.exit_code, 2);
  EXPECT_EQ(sig.err, "procsup ctl signal: unknown signal \"NOPE\"\n");

  const auto j = ctl(dir_.socket(), {"--json", "stop", "nosuch"});
  EXPECT_EQ(j.exit_code, 1);
  EXPECT_EQ(j.err, "");
  const auto reply = json::parse(j.out);
  EXPECT_EQ(reply["ok"], false);
  EXPECT_EQ(reply["error"], "no program or instance named \"nosuch\"");

  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

TEST_F(program_cli, start_stop_restart_confirm_when_done_with_the_new_pid) {
  const auto tag = unique_tag("confirm");
  const auto cfg = dir_.write_config("[[program]]\nname = \"api\"\ncommand = " +
                                     toml_argv({test_target, "print-pid-then-sleep", tag}) +
                                     "\n\n[[program]]\nname = \"pair\"\ninstances = 2\ncommand = " +
                                     toml_argv({test_target, "print-pid-then-sleep", tag}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  auto ready = p.wait_event("[api] ready");
  ASSERT_TRUE(ready && p.wait_event("[pair:1] ready"));
  const pid_t first = ready->at("pid").get<pid_t>();

  // restart: answered once the new process runs; the reply names it.
  auto r = ctl(dir_.socket(), {"restart", "api"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_match(r.out, m, std::regex("api: restarted \\(pid ([0-9]+)\\)\n"))) << r.out;
  const pid_t second = std::stoi(m[1]);
  EXPECT_NE(second, first);
  EXPECT_FALSE(process_alive(first));  // the old one is gone by the time the reply comes
  EXPECT_EQ(status_of(dir_.socket(), "api")["pid"], second);

  // stop: answered once it is stopped.
  r = ctl(dir_.socket(), {"stop", "api"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "api: stopped\n");
  EXPECT_FALSE(process_alive(second));
  EXPECT_EQ(status_of(dir_.socket(), "api")["state"], "stopped");
  r = ctl(dir_.socket(), {"stop", "api"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "api: already stopped\n");

  // start: the pid of the new process.
  r = ctl(dir_.socket(), {"start", "api"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(std::regex_match(r.out, m, std::regex("api: started \\(pid ([0-9]+)\\)\n"))) << r.out;
  const pid_t third = std::stoi(m[1]);
  EXPECT_TRUE(process_alive(third));
  EXPECT_EQ(status_of(dir_.socket(), "api")["pid"], third);
  r = ctl(dir_.socket(), {"start", "api"});
  EXPECT_EQ(r.out, "api: already running (pid " + std::to_string(third) + ")\n");

  // A program with several instances: one line each.
  r = ctl(dir_.socket(), {"restart", "pair"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_match(r.out, std::regex("pair:0: restarted \\(pid [0-9]+\\)\npair:1: restarted \\(pid [0-9]+\\)\n")))
      << r.out;

  // --json: the structured reply.
  r = ctl(dir_.socket(), {"--json", "restart", "api"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto reply = json::parse(r.out);
  EXPECT_EQ(reply["ok"], true);
  ASSERT_EQ(reply["results"].size(), 1U) << r.out;
  EXPECT_EQ(reply["results"][0]["pid"], status_of(dir_.socket(), "api")["pid"]);

  r = ctl(dir_.socket(), {"shutdown"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "procsup: shutting down\n");
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  EXPECT_EQ(wait_tagged_gone(tag), std::vector<pid_t>{});
}

TEST_F(program_cli, stop_of_an_instance_waiting_to_be_restarted_answers_at_once) {
  // It crashed and waits out a long backoff (no process): stop cancels the restart.
  const auto cfg = dir_.write_config("[[program]]\nname = \"flaky\"\nbackoff = { initial = \"10m\", max = \"10m\" }\n"
                                     "command = " + toml_argv({test_target, "exit", "1"}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("[flaky] restarting"));
  auto r = ctl(dir_.socket(), {"stop", "flaky"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "flaky: stopped\n");
  EXPECT_EQ(status_of(dir_.socket(), "flaky")["state"], "stopped");
  r = ctl(dir_.socket(), {"stop", "flaky"});
  EXPECT_EQ(r.out, "flaky: already stopped\n");
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

TEST_F(program_cli, a_restart_that_cannot_start_the_program_fails_with_the_cause) {
  // The binary is there at start, gone at the restart: exec fails, the reply says why.
  const auto script = dir_.write("server.sh", "#!/bin/sh\nexec sleep 600\n", true);
  const auto cfg = dir_.write_config("[[program]]\nname = \"fragile\"\nstrategy = \"stop\"\ncommand = " +
                                     toml_argv({script}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("[fragile] ready"));
  ASSERT_EQ(::unlink(script.c_str()), 0);
  const auto r = ctl(dir_.socket(), {"restart", "fragile"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("procsup ctl restart: fragile: did not start: ", 0), 0U) << r.err;
  EXPECT_NE(r.err.find("No such file or directory"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

TEST_F(program_cli, ctl_status_exits_0_only_when_every_listed_instance_runs) {
  const auto cfg = dir_.write_config(
      "[[program]]\nname = \"web\"\ncommand = " + toml_argv({test_target, "sleep", "600"}) +
      "\n\n[[program]]\nname = \"pair\"\ninstances = 2\ncommand = " + toml_argv({test_target, "sleep", "600"}) +
      "\n\n[[program]]\nname = \"dead\"\nstrategy = \"stop\"\ncommand = " + toml_argv({test_target, "exit", "1"}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("[web] ready") && p.wait_event("[pair:1] ready") && p.wait_event("[dead] stopped"));

  auto r = ctl(dir_.socket(), {"status", "web"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("web"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("dead"), std::string::npos) << "only the named program: " << r.out;
  EXPECT_EQ(ctl(dir_.socket(), {"status", "pair:1"}).exit_code, 0);
  EXPECT_EQ(ctl(dir_.socket(), {"status", "web", "pair"}).exit_code, 0);

  r = ctl(dir_.socket(), {"status", "dead"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("failed"), std::string::npos) << r.out;
  EXPECT_EQ(ctl(dir_.socket(), {"status", "web", "dead"}).exit_code, 3);
  EXPECT_EQ(ctl(dir_.socket(), {"status"}).exit_code, 3);  // every instance: dead is not running

  r = ctl(dir_.socket(), {"status", "nosuch"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err, "procsup ctl status: no program or instance named \"nosuch\"\n");

  r = ctl(dir_.socket(), {"status", "--json", "pair"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;

  // A stopped instance is not running either.
  ASSERT_EQ(ctl(dir_.socket(), {"stop", "web"}).exit_code, 0);
  EXPECT_EQ(ctl(dir_.socket(), {"status", "web"}).exit_code, 3);

  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

TEST_F(program_cli, a_socket_that_is_not_ours_gets_a_permissions_hint) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another uid";
  const uid_t nobody = 65534;
  const auto cfg = dir_.write_config("[[program]]\nname = \"svc\"\ncommand = " + toml_argv({test_target, "sleep", "600"}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("ready"));
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  const auto r = run_procsup_cli({"ctl", "--socket", dir_.socket(), "status"}, default_deadline, nobody);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("Permission denied"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("owner-only: run as root or as the user procsup runs as"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("is procsup running?"), std::string::npos) << r.err;
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

// Runs `bash -c SCRIPT` to completion (bounded); its stdout.
std::string run_bash(const std::string& script) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return {};
  const pid_t pid = detail::spawn({"/bin/bash", "-c", script}, out[1], out[1]);
  ::close(out[1]);
  std::string text = read_all(out[0]);
  ::close(out[0]);
  bool timed_out = false;
  const int status = detail::wait_child_bounded(pid, default_deadline, &timed_out);
  EXPECT_FALSE(timed_out);
  EXPECT_EQ(detail::exit_code_of(status), 0) << text;
  return text;
}

TEST_F(program_cli, bash_completion_offers_the_commands_and_the_running_programs_names) {
  const auto cfg = dir_.write_config(
      "[[program]]\nname = \"web\"\ncommand = " + toml_argv({test_target, "sleep", "600"}) +
      "\n\n[[program]]\nname = \"pair\"\ninstances = 2\ncommand = " + toml_argv({test_target, "sleep", "600"}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("ready"));
  // COMP_WORDS as bash fills them for `procsup ...<TAB>`; prints the candidates, one line.
  const std::string complete =
      "source " + std::string(PROCSUP_COMPLETION) +
      "\nt() { COMP_WORDS=(\"$@\"); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); COMPREPLY=(); _procsup; echo \"${COMPREPLY[*]}\"; }\n";
  const std::string procsup = procsup_binary;
  const std::string sock = dir_.socket();
  const auto out = run_bash(complete + "t " + procsup + " ''\n" +                                 // subcommands
                            "t " + procsup + " ctl --socket " + sock + " re\n" +                 // ctl commands
                            "t " + procsup + " ctl --socket " + sock + " restart ''\n" +         // names
                            "t " + procsup + " ctl --socket " + sock + " signal web U\n" +       // signals
                            "t " + procsup + " --log-level w\n");
  EXPECT_EQ(out, "run check import ctl\nrestart reload\npair pair:0 pair:1 web\nUSR1 USR2\nwarn\n");
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

}  // namespace
