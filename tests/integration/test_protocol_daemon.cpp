// Protocol workers under the real `procsup run CONFIG` (issue 5): readiness over the channel,
// ready_timeout, hang detection, a worker scribbling over its channel, and `ctl send`.
#include "integration/test_reload_harness.hpp"

#include <filesystem>
#include <future>

namespace {

using procsup::testing::json;
using namespace std::chrono_literals;

class protocol : public procsup::testing::procsup_daemon_test {
 protected:
  static std::string worker(const std::string& name, const std::string& args, const std::string& extra = "") {
    return "[[program]]\nname = \"" + name + "\"\ncommand = [\"" PROCSUP_PROTOCOL_WORKER "\"" + args +
           "]\nready = \"protocol\"\nbackoff = { initial = \"0s\", max = \"200ms\" }\n" + extra + "\n";
  }
  json send(const std::string& name, const json& body) { return ctl({{"cmd", "send"}, {"name", name}, {"body", body}}); }
};

TEST_F(protocol, a_worker_is_ready_only_after_it_says_so) {
  const std::string go = dir_ + "/go";
  write_config(config_text(worker("w", ", \"wait-file\", \"" + go + "\"", "ready_timeout = \"120s\"\n")));
  start_daemon();
  ASSERT_TRUE(wait_for([&] { return pid_of("w") != 0; }));
  // Exec'd and alive, but it has not said ready: starting, however long we look.
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(state_of("w"), "starting");
    std::this_thread::sleep_for(30ms);
  }
  const pid_t pid = pid_of("w");
  std::ofstream(go) << "go";
  ASSERT_TRUE(wait_for([&] { return running("w"); })) << state_of("w");
  EXPECT_EQ(pid_of("w"), pid);  // the same instance, now ready
  const json r = send("w", {{"x", 1}});
  ASSERT_TRUE(r.value("ok", false)) << r.dump();
  EXPECT_EQ(r["reply"]["pid"], pid);
}

TEST_F(protocol, a_worker_that_never_says_ready_fails_after_ready_timeout) {
  write_config(config_text(worker("silent", ", \"never-ready\"", "ready_timeout = \"300ms\"\nstrategy = \"stop\"\n") +
                           worker("retried", ", \"never-ready\"", "ready_timeout = \"300ms\"\n")));
  start_daemon();
  ASSERT_TRUE(wait_for([&] { return state_of("silent") == "failed"; })) << state_of("silent");
  const auto s = status();
  EXPECT_NE(s.at("silent")["last_error"].get<std::string>().find("did not become ready within 300 ms"),
            std::string::npos)
      << s.at("silent").dump();
  EXPECT_TRUE(s.at("silent")["pid"].is_null());
  // strategy restart: tried again and again
  ASSERT_TRUE(wait_for([&] { return status().at("retried")["restarts"].get<int>() >= 2; }));
}

TEST_F(protocol, a_hung_worker_is_killed_and_restarted) {
  write_config(config_text(worker("w", "", "hang_timeout = \"300ms\"\n")));
  start_daemon();
  ASSERT_TRUE(wait_for([&] { return running("w"); }));
  const pid_t first = pid_of("w");
  const json r = send("w", {{"hang", true}});
  ASSERT_FALSE(r.value("ok", true)) << r.dump();
  EXPECT_NE(r["error"].get<std::string>().find("hung: request 1 got no reply within 300 ms"), std::string::npos)
      << r.dump();
  ASSERT_TRUE(wait_for([&] { return running("w") && pid_of("w") != first; }));
  EXPECT_GE(status().at("w")["restarts"].get<int>(), 1);
  // The new instance serves.
  const json again = send("w", {{"x", 2}});
  ASSERT_TRUE(again.value("ok", false)) << again.dump();
  EXPECT_EQ(again["reply"]["pid"], pid_of("w"));
}

TEST_F(protocol, a_worker_writing_garbage_into_its_channel_is_restarted_and_procsup_stays_healthy) {
  write_config(config_text(worker("w", "") + "[[program]]\nname = \"bystander\"\ncommand = [\"/bin/sleep\", \"1000\"]\n"));
  start_daemon();
  ASSERT_TRUE(wait_for([&] { return running("w") && running("bystander"); }));
  const pid_t first = pid_of("w");
  const pid_t bystander = pid_of("bystander");
  const json r = send("w", {{"garbage", true}});
  ASSERT_FALSE(r.value("ok", true)) << r.dump();
  EXPECT_NE(r["error"].get<std::string>().find("corrupt"), std::string::npos) << r.dump();
  ASSERT_TRUE(wait_for([&] { return running("w") && pid_of("w") != first; }));
  EXPECT_TRUE(ctl({{"cmd", "status"}}).value("ok", false));
  EXPECT_EQ(pid_of("bystander"), bystander);
  const json again = send("w", {{"x", 3}});
  EXPECT_TRUE(again.value("ok", false)) << again.dump();
}

TEST_F(protocol, ctl_send_round_trips_json_and_reports_errors_clearly) {
  write_config(config_text(worker("w", "", "instances = 2\n") +
                           "[[program]]\nname = \"plain\"\ncommand = [\"/bin/sleep\", \"1000\"]\n"));
  start_daemon();
  ASSERT_TRUE(wait_for([&] { return running("w:0") && running("w:1") && running("plain"); }));

  const json body = {{"text", "h\u00e9llo"}, {"list", {1, 2.5, nullptr, true}}, {"nested", {{"k", "v"}}}};
  auto c = cli({"ctl", "--socket", socket_, "send", "w", body.dump()});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  const json reply = json::parse(c.out);
  EXPECT_EQ(reply["echo"], body);
  EXPECT_EQ(reply["pid"], pid_of("w:0"));  // a program name: its first running instance

  c = cli({"ctl", "--socket", socket_, "send", "w:1", "[1,2,3]"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(json::parse(c.out)["pid"], pid_of("w:1"));

  c = cli({"ctl", "--socket", socket_, "send", "plain", "{}"});
  EXPECT_NE(c.exit_code, 0);
  EXPECT_NE(c.err.find("not a protocol worker"), std::string::npos) << c.err;

  c = cli({"ctl", "--socket", socket_, "send", "nobody", "{}"});
  EXPECT_NE(c.exit_code, 0);
  EXPECT_NE(c.err.find("no program or instance named"), std::string::npos) << c.err;

  c = cli({"ctl", "--socket", socket_, "send", "w", "{not json"});
  EXPECT_EQ(c.exit_code, 2);
  EXPECT_NE(c.err.find("not valid JSON"), std::string::npos) << c.err;

  // A crash in handle(): the request fails with how the worker died; it is restarted.
  const pid_t before = pid_of("w:1");
  c = cli({"ctl", "--socket", socket_, "send", "w:1", "{\"crash\":true}"});
  EXPECT_NE(c.exit_code, 0);
  EXPECT_NE(c.err.find("SIGSEGV"), std::string::npos) << c.err;
  ASSERT_TRUE(wait_for([&] { return running("w:1") && pid_of("w:1") != before; }));

  // A stopped worker: "not running".
  ASSERT_TRUE(ctl({{"cmd", "stop"}, {"name", "w:1"}}).value("ok", false));
  ASSERT_TRUE(wait_for([&] { return state_of("w:1") == "stopped"; }));
  c = cli({"ctl", "--socket", socket_, "send", "w:1", "{}"});
  EXPECT_NE(c.exit_code, 0);
  EXPECT_NE(c.err.find("is not running (stopped)"), std::string::npos) << c.err;
}

// Issue 18 through the program: a crash fails only the `ctl send` it was handling; the sends
// queued behind it (in the worker's ring, from other connections) are answered by the next
// instance.
TEST_F(protocol, ctl_sends_queued_behind_a_crashing_request_are_answered_by_the_next_instance) {
  write_config(config_text(worker("w", "")));
  start_daemon();
  ASSERT_TRUE(wait_for([&] { return running("w"); }));
  const pid_t first = pid_of("w");
  const std::string started = dir_ + "/poison-started";
  // Five bodies of 7 bytes ({"n":0}): 24-byte frames, 120 bytes behind the poison.
  auto poison = std::async(std::launch::async, [&] {
    return send("w", {{"crash_when_queued_bytes", 120}, {"started", started}});
  });
  ASSERT_TRUE(wait_for([&] { return std::filesystem::exists(started); }));  // it is being handled
  std::vector<std::future<json>> behind;
  for (int i = 0; i < 5; ++i) behind.push_back(std::async(std::launch::async, [this, i] { return send("w", {{"n", i}}); }));
  const json bad = poison.get();
  EXPECT_FALSE(bad.value("ok", true));
  EXPECT_NE(bad.value("error", "").find("SIGSEGV"), std::string::npos) << bad.dump();
  for (int i = 0; i < 5; ++i) {
    const json r = behind[i].get();
    ASSERT_TRUE(r.value("ok", false)) << r.dump();
    EXPECT_EQ(r["reply"]["echo"], json({{"n", i}})) << r.dump();
    EXPECT_NE(r["reply"]["pid"].get<pid_t>(), first) << "answered by the next instance";
  }
  EXPECT_NE(pid_of("w"), first);
}

}  // namespace
