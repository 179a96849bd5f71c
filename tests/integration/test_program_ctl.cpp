// Black-box: `procsup ctl` against the real procsup: signal reaches the program; stop / start /
// restart do what they say (pids, states, processes); shutdown exits 0; unknown names are
// errors; another uid is refused both by the socket's permissions and by the peer-credential
// check.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "helpers/program_harness.hpp"

namespace {

using namespace procsup::testing;

class program_ctl : public program_test {};

TEST_F(program_ctl, signal_reaches_the_program) {
  const auto tag = unique_tag("hup");
  const auto cfg = dir_.write_config("[[program]]\nname = \"hup\"\ncommand = " +
                                     toml_argv({test_target, "print-pid-then-sleep", tag}) +
                                     "\n\n[[program]]\nname = \"other\"\ncommand = " +
                                     toml_argv({test_target, "print-pid-then-sleep", tag}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  auto ready = p.wait_event("[hup] ready");
  auto other = p.wait_event("[other] ready");
  ASSERT_TRUE(ready && other);
  const pid_t pid = ready->at("pid").get<pid_t>();

  // print-pid-then-sleep keeps SIGHUP's default action: the signal kills it, which procsup sees.
  const auto r = ctl(dir_.socket(), {"signal", "hup", "HUP"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto crashed = p.wait_event("[hup] crashed", {{"pid", pid}});
  ASSERT_TRUE(crashed);
  EXPECT_EQ(crashed->value("cause", ""), "killed by SIGHUP");
  auto again = p.wait_event("[hup] ready", json::object(), crashed->at("_index").get<std::size_t>());
  ASSERT_TRUE(again);
  auto s = status_of(dir_.socket(), "hup");
  EXPECT_EQ(s["last_exit"], json({{"signal", "SIGHUP"}})) << s.dump();
  EXPECT_EQ(s["restarts"], 1);
  // Only that program got it.
  s = status_of(dir_.socket(), "other");
  EXPECT_EQ(s["pid"], other->at("pid"));
  EXPECT_EQ(s["restarts"], 0);

  const auto bad = ctl(dir_.socket(), {"signal", "nobody", "HUP"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("nobody"), std::string::npos) << bad.err;

  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  EXPECT_EQ(live_processes_tagged(tag), std::vector<pid_t>{});
}

TEST_F(program_ctl, stop_start_restart_and_shutdown) {
  const auto tag = unique_tag("svc");
  const auto cfg = dir_.write_config("[[program]]\nname = \"svc\"\ncommand = " +
                                     toml_argv({test_target, "print-pid-then-sleep", tag}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  auto ready = p.wait_event("[svc] ready");
  ASSERT_TRUE(ready);
  const pid_t p1 = ready->at("pid").get<pid_t>();

  // stop: the process goes, the instance says stopped, nothing restarts it.
  auto r = ctl(dir_.socket(), {"stop", "svc"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto exited = p.wait_event("[svc] exited", {{"pid", p1}});
  ASSERT_TRUE(exited);
  EXPECT_TRUE(wait_process_gone(p1));
  auto s = status_of(dir_.socket(), "svc");
  EXPECT_EQ(s["state"], "stopped") << s.dump();
  EXPECT_TRUE(s["pid"].is_null()) << s.dump();
  EXPECT_EQ(live_processes_tagged(tag), std::vector<pid_t>{});

  // start: a new process.
  r = ctl(dir_.socket(), {"start", "svc"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto started = p.wait_event("[svc] ready", json::object(), exited->at("_index").get<std::size_t>());
  ASSERT_TRUE(started);
  const pid_t p2 = started->at("pid").get<pid_t>();
  EXPECT_NE(p2, p1);
  s = status_of(dir_.socket(), "svc");
  EXPECT_EQ(s["state"], "running") << s.dump();
  EXPECT_EQ(s["pid"], p2);
  EXPECT_TRUE(process_alive(p2));

  // restart: the old one stops, a new one runs.
  r = ctl(dir_.socket(), {"restart", "svc"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto stopped2 = p.wait_event("[svc] exited", {{"pid", p2}}, started->at("_index").get<std::size_t>());
  ASSERT_TRUE(stopped2);
  auto restarted = p.wait_event("[svc] ready", json::object(), stopped2->at("_index").get<std::size_t>());
  ASSERT_TRUE(restarted);
  const pid_t p3 = restarted->at("pid").get<pid_t>();
  EXPECT_NE(p3, p2);
  EXPECT_TRUE(wait_process_gone(p2));
  s = status_of(dir_.socket(), "svc");
  EXPECT_EQ(s["state"], "running") << s.dump();
  EXPECT_EQ(s["pid"], p3);
  EXPECT_GE(s["restarts"].get<int>(), 1);

  // None of that was a crash.
  EXPECT_TRUE(p.events("[svc] crashed").empty()) << p.output();

  for (const char* cmd : {"stop", "start", "restart"}) {
    const auto bad = ctl(dir_.socket(), {cmd, "nope"});
    EXPECT_EQ(bad.exit_code, 1) << cmd;
    EXPECT_NE(bad.err.find("no program or instance named \"nope\""), std::string::npos) << bad.err;
  }

  // shutdown: replies, then procsup stops everything and exits 0.
  r = ctl(dir_.socket(), {"shutdown"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  EXPECT_FALSE(process_alive(p3));
  EXPECT_EQ(live_processes_tagged(tag), std::vector<pid_t>{});
  EXPECT_FALSE(std::filesystem::exists(dir_.socket())) << "the control socket was left behind";
}

TEST_F(program_ctl, another_uid_is_refused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another uid";
  const uid_t nobody = 65534;
  const auto cfg = dir_.write_config("[[program]]\nname = \"svc\"\ncommand = " +
                                     toml_argv({test_target, "sleep", "600"}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("ready"));
  // Let another user reach the directory.
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);

  // 1. The socket file itself is owner-only.
  struct stat st {};
  ASSERT_EQ(::stat(dir_.socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0U) << std::oct << st.st_mode;
  auto r = run_procsup_cli({"ctl", "--socket", dir_.socket(), "status"}, default_deadline, nobody);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(dir_.socket()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Permission denied"), std::string::npos) << r.err;

  // 2. Even with the file opened up, the peer's credentials are checked.
  ASSERT_EQ(::chmod(dir_.socket().c_str(), 0666), 0);
  for (const auto& cmd : std::vector<std::vector<std::string>>{{"status"}, {"stop", "svc"}, {"shutdown"}}) {
    std::vector<std::string> args{"ctl", "--socket", dir_.socket()};
    args.insert(args.end(), cmd.begin(), cmd.end());
    r = run_procsup_cli(args, default_deadline, nobody);
    EXPECT_EQ(r.exit_code, 1) << cmd[0] << ": " << r.err;
    EXPECT_NE(r.err.find("permission denied"), std::string::npos) << cmd[0] << ": " << r.err;
  }
  // Nothing happened: still running, and root may still talk to it.
  const auto s = status_of(dir_.socket(), "svc");
  EXPECT_EQ(s["state"], "running") << s.dump();

  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

}  // namespace
