// Live reload of the real `procsup run CONFIG` (issue 5): `ctl reload` and SIGHUP apply the
// difference and leave untouched instances alone; an invalid config changes nothing.
#include "integration/test_reload_harness.hpp"

namespace {

using procsup::testing::json;
using namespace std::chrono_literals;

class reload : public procsup::testing::procsup_daemon_test {};

std::string program(const std::string& name, const std::string& arg, int instances = 1) {
  return "[[program]]\nname = \"" + name + "\"\ncommand = [\"/bin/sleep\", \"" + arg + "\"]\ninstances = " +
         std::to_string(instances) + "\nstop_timeout = \"5s\"\n\n";
}

TEST_F(reload, keeps_untouched_pids_and_applies_the_diff) {
  write_config(config_text(program("keep", "1000") + program("gone", "1000") + program("change", "1000") +
                           program("grow", "1000", 1) + program("shrink", "1000", 3)));
  start_daemon();
  const std::vector<std::string> ids = {"keep", "gone", "change", "grow", "shrink:0", "shrink:1", "shrink:2"};
  ASSERT_TRUE(wait_for([&] {
    for (const auto& id : ids)
      if (!running(id)) return false;
    return true;
  }));
  const auto before = status();

  // "keep" moves down the file (a new line number is no change); "added" is new.
  write_config(config_text(program("added", "1000") + program("change", "1001") + program("grow", "1000", 2) +
                           program("shrink", "1000", 1) + program("keep", "1000")));
  const json r = ctl({{"cmd", "reload"}});
  ASSERT_TRUE(r.value("ok", false)) << r.dump();
  EXPECT_EQ(r["added"], json::array({"added"}));
  EXPECT_EQ(r["removed"], json::array({"gone"}));
  EXPECT_EQ(r["changed"], json::array({"change"}));
  EXPECT_EQ(r["resized"], json::array({"grow", "shrink"}));
  EXPECT_EQ(r["unchanged"], json::array({"keep"}));

  ASSERT_TRUE(wait_for([&] {
    auto s = status();
    return s.count("gone") == 0 && s.count("shrink:1") == 0 && s.count("shrink:2") == 0 && running("added") &&
           running("grow:1") && running("change") && pid_of("change") != before.at("change")["pid"].get<pid_t>();
  })) << ctl({{"cmd", "status"}}).dump();
  const auto after = status();
  // Untouched instances: same pid, no restart.
  for (const std::string id : {"keep", "grow", "shrink:0"}) {
    ASSERT_TRUE(after.count(id)) << id;
    EXPECT_EQ(after.at(id)["pid"], before.at(id)["pid"]) << id;
    EXPECT_EQ(after.at(id)["restarts"], 0) << id;
  }
  // The changed program runs its new command.
  const auto cmdline = read_file("/proc/" + std::to_string(pid_of("change")) + "/cmdline");
  EXPECT_NE(cmdline.find("1001"), std::string::npos) << cmdline;
  // The removed program's process is gone (procsup reaped it).
  const pid_t gone_pid = before.at("gone")["pid"].get<pid_t>();
  EXPECT_TRUE(wait_for([&] { return ::kill(gone_pid, 0) != 0; }));

  // SIGHUP reloads too.
  write_config(config_text(program("added", "1000") + program("change", "1001") + program("grow", "1000", 2) +
                           program("shrink", "1000", 1) + program("keep", "1000") + program("by-hup", "1000")));
  ASSERT_EQ(::kill(pid_, SIGHUP), 0);
  ASSERT_TRUE(wait_for([&] { return running("by-hup"); })) << log_text();
  EXPECT_EQ(pid_of("keep"), before.at("keep")["pid"].get<pid_t>());
}

TEST_F(reload, supervisor_limits_apply_and_a_socket_change_is_only_logged) {
  write_config(config_text(program("a", "1000")));
  start_daemon();
  ASSERT_TRUE(wait_for([&] { return running("a"); }));
  const pid_t a = pid_of("a");
  std::string text = config_text(program("a", "1000"));
  text.replace(text.find("intensity = 100"), 15, "intensity = 7");
  text.replace(text.find(socket_), socket_.size(), dir_ + "/other.sock");
  write_config(text);
  const json r = ctl({{"cmd", "reload"}});
  ASSERT_TRUE(r.value("ok", false)) << r.dump();
  EXPECT_NE(r["supervisor"].dump().find("intensity 100 -> 7"), std::string::npos) << r.dump();
  EXPECT_NE(r["supervisor"].dump().find("takes effect when procsup restarts"), std::string::npos) << r.dump();
  EXPECT_TRUE(ctl({{"cmd", "status"}}).value("ok", false));  // still on the old socket
  EXPECT_EQ(pid_of("a"), a);
}

TEST_F(reload, an_invalid_config_changes_nothing_and_names_file_and_line) {
  write_config(config_text(program("a", "1000") + program("b", "1000", 2)));
  start_daemon();
  ASSERT_TRUE(wait_for([&] { return running("a") && running("b:0") && running("b:1"); }));
  const auto before = status();

  // Line 12 (after the 5-line [supervisor] table and 6 lines of "a"): a bad duration; also a
  // new program that must not start.
  write_config(config_text(program("a", "1000") + "[[program]]\nname = \"b\"\nstop_timeout = \"10x\"\n"
                           "command = [\"/bin/sleep\", \"1000\"]\n\n" + program("c", "1000")));
  const json r = ctl({{"cmd", "reload"}});
  ASSERT_FALSE(r.value("ok", true)) << r.dump();
  ASSERT_TRUE(r["errors"].is_array()) << r.dump();
  EXPECT_NE(r["errors"].dump().find(config_ + ":14:16: program[1].stop_timeout: bad duration"), std::string::npos)
      << r.dump();
  // Through the CLI: non-zero exit, the same file:line on stderr.
  const auto c = cli({"ctl", "--socket", socket_, "reload"});
  EXPECT_NE(c.exit_code, 0);
  EXPECT_NE(c.err.find(config_ + ":14:16: program[1].stop_timeout"), std::string::npos) << c.err;
  // The log has it too.
  EXPECT_NE(log_text().find(config_ + ":14:16"), std::string::npos);

  const auto after = status();
  ASSERT_EQ(after.size(), before.size());
  for (const auto& [id, s] : before) {
    ASSERT_TRUE(after.count(id)) << id;
    EXPECT_EQ(after.at(id)["pid"], s["pid"]) << id;
    EXPECT_EQ(after.at(id)["state"], "running") << id;
  }
  EXPECT_EQ(after.count("c"), 0U);
}

}  // namespace
