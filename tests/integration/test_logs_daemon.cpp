// Black-box tests of child logs on the real `procsup run`: a flooding child with a rotated file
// target neither stalls status queries nor passes the disk bound; `ctl logs -n` returns the last
// lines in order (also of a program whose output goes to procsup's log); `ctl logs -f` streams a
// new line as it comes.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "helpers/process_guard.hpp"
#include "procsup/daemon/control.hpp"
#include "procsup/supervisor/launcher.hpp"

namespace {

namespace fs = std::filesystem;
namespace pd = procsup::daemon;
using json = nlohmann::json;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr auto generous = 120s;  // the machine is shared and loaded: bounds only catch hangs

std::string read_file(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// A process launched with its stdout on a pipe that the test reads.
struct child {
  pid_t pid = -1;
  int out = -1;  // read end of its stdout, or -1
  std::string buffered;

  // Reads until `text` appears in the output (true) or until the deadline / EOF (false).
  bool wait_for(const std::string& text, std::chrono::seconds within = generous) {
    const auto deadline = steady::now() + within;
    while (buffered.find(text) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
      if (left <= 0) return false;
      pollfd p{out, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(out, buf, sizeof buf);
      if (n <= 0) return buffered.find(text) != std::string::npos;
      buffered.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }
  std::string drain() {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(out, buf, sizeof buf)) > 0) buffered.append(buf, static_cast<std::size_t>(n));
    return buffered;
  }
  int wait() {
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
    if (out >= 0) ::close(out);
    out = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
};

// Launches the procsup binary with `args`; stdout on a pipe, stderr to `err_file`.
child launch_procsup(const std::vector<std::string>& args, const std::string& err_file) {
  int out[2];
  EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
  const int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  EXPECT_GE(err, 0);
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  procsup::exec_spec spec;
  spec.path = PROCSUP_BINARY;
  spec.argv = {"procsup"};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.setup.fds = {{devnull, 0}, {out[1], 1}, {err, 2}};
  const auto r = procsup::launch_exec(spec);
  ::close(out[1]);
  ::close(err);
  ::close(devnull);
  child c;
  c.out = out[0];
  if (const auto* pid = std::get_if<pid_t>(&r)) c.pid = *pid;
  else ADD_FAILURE() << std::get<procsup::launch_error>(r).message;
  return c;
}

class logs_daemon : public procsup::testing::process_guard_test {
 protected:
  void SetUp() override {
    process_guard_test::SetUp();
    char tmpl[] = "/tmp/procsup-logs-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    socket_ = dir_ + "/procsup.sock";
  }
  void TearDown() override {
    if (daemon_.pid > 0) {
      (void)pd::control_request(socket_, {{"cmd", "shutdown"}}, 10s);
      const auto deadline = steady::now() + generous;
      int status = 0;
      pid_t done = 0;
      while ((done = ::waitpid(daemon_.pid, &status, WNOHANG)) == 0 && steady::now() < deadline)
        std::this_thread::sleep_for(50ms);
      if (done == 0) {
        ADD_FAILURE() << "procsup did not stop after shutdown";
        ::kill(daemon_.pid, SIGKILL);
        ::waitpid(daemon_.pid, &status, 0);
      }
      // 0 after a clean shutdown (a sanitizer's report would make it non-zero).
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
          << "status " << status << "\n" << read_file(dir_ + "/procsup.err").substr(0, 20000);
      daemon_.pid = -1;
      ::close(daemon_.out);
      daemon_.out = -1;
    }
    fs::remove_all(dir_);
    process_guard_test::TearDown();
  }

  // Starts `procsup run` on [supervisor] socket + `programs` and waits for its control socket.
  void start(const std::string& programs) {
    const std::string config = dir_ + "/procsup.toml";
    std::ofstream(config) << "[supervisor]\nsocket = \"" << socket_ << "\"\nintensity = 100\n\n" << programs;
    daemon_ = launch_procsup({"run", config}, dir_ + "/procsup.err");
    const auto deadline = steady::now() + generous;
    while (steady::now() < deadline) {
      if (std::holds_alternative<json>(pd::control_request(socket_, {{"cmd", "status"}}, 10s))) return;
      std::this_thread::sleep_for(20ms);
    }
    FAIL() << "procsup did not open its control socket; its stderr:\n" << read_file(dir_ + "/procsup.err");
  }

  json request(const json& r) {
    auto reply = pd::control_request(socket_, r, generous);
    if (auto* err = std::get_if<pd::control_error>(&reply)) {
      ADD_FAILURE() << err->message;
      return json::object();
    }
    return std::get<json>(reply);
  }

  // The texts of `ctl logs NAME -n N` (through the protocol).
  std::vector<std::string> log_lines(const std::string& name, int n) {
    std::vector<std::string> out;
    const auto reply = request({{"cmd", "logs"}, {"name", name}, {"lines", n}});
    EXPECT_TRUE(reply.value("ok", false)) << reply.dump();
    for (const auto& l : reply.value("lines", json::array())) out.push_back(l.value("line", ""));
    return out;
  }

  // Polls `ctl logs` until its last line is `last` (the program has printed everything).
  bool wait_for_last_line(const std::string& name, const std::string& last) {
    const auto deadline = steady::now() + generous;
    while (steady::now() < deadline) {
      const auto lines = log_lines(name, 1);
      if (!lines.empty() && lines.back() == last) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  // Polls `ctl logs` until the program's tail holds `count` lines.
  bool wait_for_line_count(const std::string& name, std::size_t count) {
    const auto deadline = steady::now() + generous;
    while (steady::now() < deadline) {
      if (log_lines(name, 1000).size() >= count) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  std::string state_of(const json& status, const std::string& name) {
    for (const auto& i : status.value("instances", json::array()))
      if (i.value("name", "") == name) return i.value("state", "");
    return "";
  }

  std::string dir_;
  std::string socket_;
  child daemon_;
};

TEST_F(logs_daemon, a_flooding_child_does_not_stall_status_queries_and_disk_stays_bounded) {
  constexpr long long flood_bytes = 400LL << 20;  // 400 MiB
  constexpr std::uintmax_t max_size = 1 << 20;
  constexpr int keep = 3;
  const std::string file = dir_ + "/flood.log";
  start("[[program]]\nname = \"flood\"\ncommand = [\"" PROCSUP_TEST_TARGET "\", \"flood-stdout\", \"" +
        std::to_string(flood_bytes) + "\"]\nstrategy = \"stop\"\nstdout = \"" + file +
        "\"\nlog_max_size = \"1MiB\"\nlog_keep = 3\n\n"
        "[[program]]\nname = \"quiet\"\ncommand = [\"/bin/sleep\", \"1000\"]\n");

  auto disk_use = [&] {
    std::uintmax_t total = 0;
    for (const auto& e : fs::directory_iterator(dir_))
      if (e.path().filename().string().rfind("flood.log", 0) == 0) {
        std::error_code ec;  // renamed or deleted by a rotation meanwhile
        const auto size = fs::file_size(e.path(), ec);
        if (!ec) total += size;
      }
    return total;
  };

  // Status calls while the child floods (and at least 20): each one must be answered.
  int calls = 0, during_flood = 0;
  std::uintmax_t max_disk = 0;
  const auto deadline = steady::now() + 4 * generous;
  for (;;) {
    const auto t0 = steady::now();
    auto reply = pd::control_request(socket_, {{"cmd", "status"}}, generous);
    ASSERT_TRUE(std::holds_alternative<json>(reply)) << "status call " << calls << ": "
                                                     << std::get<pd::control_error>(reply).message;
    const auto& status = std::get<json>(reply);
    ASSERT_TRUE(status.value("ok", false)) << status.dump();
    ++calls;
    const bool flooding = state_of(status, "flood") == "running";
    if (flooding) ++during_flood;
    max_disk = std::max(max_disk, disk_use());
    if (calls == 1 || calls % 50 == 0)
      std::printf("status call %d answered in %.1f ms (flood %s), flood files %ju bytes\n", calls,
                  std::chrono::duration<double, std::milli>(steady::now() - t0).count(),
                  flooding ? "running" : "done", disk_use());
    if (!flooding && calls >= 20) break;
    ASSERT_LT(steady::now(), deadline) << "the flood did not end";
    std::this_thread::sleep_for(10ms);
  }
  std::printf("%d status calls, %d during the flood; peak disk use %ju bytes (bound %ju)\n", calls, during_flood,
              max_disk, (keep + 1) * max_size);
  EXPECT_GE(during_flood, 1);
  EXPECT_LE(max_disk, (keep + 1) * max_size);

  // Rotation kept log_keep files of exactly log_max_size (the flood has no newlines: hard cuts).
  EXPECT_TRUE(fs::exists(file));
  for (int n = 1; n <= keep; ++n) EXPECT_EQ(fs::file_size(file + "." + std::to_string(n)), max_size) << n;
  EXPECT_FALSE(fs::exists(file + ".4"));
  // Every byte went through: 400 MiB = whole files, the current one holds the remainder.
  EXPECT_EQ(fs::file_size(file), static_cast<std::uintmax_t>(flood_bytes) % max_size == 0
                                     ? max_size
                                     : static_cast<std::uintmax_t>(flood_bytes) % max_size);
  // The tail is bounded too, and the quiet program was never disturbed.
  const auto tail = log_lines("flood", 100000);
  EXPECT_LE(tail.size(), 1000U);
  const auto status = request({{"cmd", "status"}});
  EXPECT_EQ(state_of(status, "quiet"), "running") << status.dump();
}

TEST_F(logs_daemon, ctl_logs_n_returns_the_last_lines_in_order_also_when_output_goes_to_procsups_log) {
  start(
      "[[program]]\nname = \"printer\"\n"
      "command = [\"/bin/sh\", \"-c\", \"i=1; while [ $i -le 120 ]; do echo line $i; i=$((i+1)); done; exec sleep 1000\"]\n");
  ASSERT_TRUE(wait_for_last_line("printer", "line 120"));

  std::vector<std::string> expected;
  for (int i = 116; i <= 120; ++i) expected.push_back("line " + std::to_string(i));
  EXPECT_EQ(log_lines("printer", 5), expected);
  EXPECT_EQ(log_lines("printer", 1000).size(), 120U);

  // The CLI: default -n is 50; -n 3 prints the last three lines in order, nothing else.
  auto ctl = launch_procsup({"ctl", "--socket", socket_, "logs", "printer", "-n", "3"}, dir_ + "/ctl.err");
  EXPECT_EQ(ctl.drain(), "line 118\nline 119\nline 120\n");
  EXPECT_EQ(ctl.wait(), 0) << read_file(dir_ + "/ctl.err");
  auto ctl50 = launch_procsup({"ctl", "--socket", socket_, "logs", "printer"}, dir_ + "/ctl.err");
  const std::string fifty = ctl50.drain();
  EXPECT_EQ(ctl50.wait(), 0);
  EXPECT_EQ(std::count(fifty.begin(), fifty.end(), '\n'), 50);
  EXPECT_EQ(fifty.rfind("line 71\n", 0), 0U) << fifty;

  // The same lines are in procsup's own log, prefixed with the program's name.
  EXPECT_NE(read_file(dir_ + "/procsup.err").find("[printer] line 120"), std::string::npos);
  // An unknown name is an error.
  const auto bad = request({{"cmd", "logs"}, {"name", "nope"}});
  EXPECT_FALSE(bad.value("ok", true));
}

TEST_F(logs_daemon, ctl_logs_reads_back_a_file_targets_lines_and_its_stderr) {
  const std::string file = dir_ + "/out.log";
  start("[[program]]\nname = \"filed\"\ncommand = [\"/bin/sh\", \"-c\", \"echo to-file; echo to-stderr >&2; echo done; "
        "exec sleep 1000\"]\nstdout = \"" + file + "\"\n");
  ASSERT_TRUE(wait_for_line_count("filed", 3));
  const auto reply = request({{"cmd", "logs"}, {"name", "filed"}, {"lines", 10}});
  const auto& lines = reply["lines"];
  ASSERT_EQ(lines.size(), 3U) << reply.dump();
  std::vector<std::string> texts, streams;
  for (const auto& l : lines) {
    texts.push_back(l["line"]);
    streams.push_back(l["stream"]);
    EXPECT_EQ(l["program"], "filed");
  }
  // stdout and stderr are separate pipes: their relative order is not defined, each one's is.
  EXPECT_EQ(std::count(texts.begin(), texts.end(), "to-stderr"), 1);
  EXPECT_EQ(streams[static_cast<std::size_t>(std::find(texts.begin(), texts.end(), "to-stderr") - texts.begin())],
            "stderr");
  EXPECT_LT(std::find(texts.begin(), texts.end(), "to-file"), std::find(texts.begin(), texts.end(), "done"));
  EXPECT_EQ(read_file(file), "to-file\ndone\n");
  // stdout went to the file only, not to procsup's log; stderr (default "log") did.
  const std::string log = read_file(dir_ + "/procsup.err");
  EXPECT_EQ(log.find("[filed] to-file"), std::string::npos);
  EXPECT_NE(log.find("[filed] to-stderr"), std::string::npos);
}

TEST_F(logs_daemon, ctl_logs_f_streams_a_new_line_as_it_comes) {
  // Prints "got-usr1" whenever it gets SIGUSR1 (sent with `ctl signal`).
  start("[[program]]\nname = \"waiter\"\ncommand = [\"/bin/sh\", \"-c\", "
        "\"trap 'echo got-usr1' USR1; echo ready; while :; do (trap '' USR1; exec sleep 5) & wait $!; done\"]\n");
  ASSERT_TRUE(wait_for_last_line("waiter", "ready"));

  // -n 1 prints "ready" from the tail first: once it shows, the follow is registered.
  auto follower = launch_procsup({"ctl", "--socket", socket_, "logs", "waiter", "-n", "1", "-f"}, dir_ + "/ctl.err");
  ASSERT_TRUE(follower.wait_for("ready\n")) << follower.buffered << read_file(dir_ + "/ctl.err");
  EXPECT_EQ(follower.buffered.find("got-usr1"), std::string::npos);

  const auto sig = request({{"cmd", "signal"}, {"name", "waiter"}, {"signal", "USR1"}});
  ASSERT_TRUE(sig.value("ok", false)) << sig.dump();
  EXPECT_TRUE(follower.wait_for("got-usr1\n")) << follower.buffered;

  // Ctrl-C ends the client; procsup drops the follower and keeps answering.
  ::kill(follower.pid, SIGINT);
  EXPECT_EQ(follower.wait(), 128 + SIGINT);
  EXPECT_TRUE(request({{"cmd", "status"}}).value("ok", false));
  const auto again = request({{"cmd", "signal"}, {"name", "waiter"}, {"signal", "USR1"}});
  EXPECT_TRUE(again.value("ok", false));
  EXPECT_TRUE(wait_for_last_line("waiter", "got-usr1"));
}

TEST_F(logs_daemon, the_follow_protocol_is_one_json_object_per_line) {
  start("[[program]]\nname = \"waiter\"\ncommand = [\"/bin/sh\", \"-c\", "
        "\"trap 'echo got-usr1' USR1; echo ready; while :; do (trap '' USR1; exec sleep 5) & wait $!; done\"]\n");
  ASSERT_TRUE(wait_for_last_line("waiter", "ready"));
  std::vector<json> seen;
  const auto err = pd::control_stream(
      socket_, {{"cmd", "logs"}, {"name", "waiter"}, {"lines", 0}, {"follow", true}},
      [&](const json& line) {
        seen.push_back(line);
        if (seen.size() == 1) {  // the reply: now registered
          auto s = pd::control_request(socket_, {{"cmd", "signal"}, {"name", "waiter"}, {"signal", "USR1"}}, generous);
          EXPECT_TRUE(std::holds_alternative<json>(s));
        }
        return seen.size() < 2 || line.value("stream", "") != "stdout";
      },
      generous);
  ASSERT_FALSE(err) << err->message;
  ASSERT_GE(seen.size(), 2U);
  EXPECT_EQ(seen[0], json({{"ok", true}, {"instances", {"waiter"}}, {"lines", json::array()}, {"follow", true}}));
  EXPECT_EQ(seen.back(), json({{"line", "got-usr1"}, {"program", "waiter"}, {"id", "waiter"}, {"stream", "stdout"}}));
}

}  // namespace
