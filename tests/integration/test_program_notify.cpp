// procsup run under systemd's notify protocol: the test owns the $NOTIFY_SOCKET datagram socket
// and reads what procsup sends: READY=1 once the programs are up, STATUS= lines, WATCHDOG=1
// while the loop turns (WATCHDOG_USEC), STOPPING=1 at shutdown; the programs never see the
// systemd variables.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>


#include "helpers/program_harness.hpp"

namespace {

using namespace procsup::testing;

// A datagram socket bound in the test's temp dir, playing systemd.
class notify_socket {
 public:
  explicit notify_socket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("bind");
  }
  ~notify_socket() { ::close(fd_); }

  // Reads datagrams until one contains `what` (bounded); returns every datagram seen.
  bool wait_for(const std::string& what, std::vector<std::string>& seen, std::chrono::milliseconds deadline = 30s) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) continue;
      seen.emplace_back(buf, static_cast<std::size_t>(n));
      if (seen.back().find(what) != std::string::npos) return true;
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
};

class program_notify : public program_test {};

TEST_F(program_notify, ready_status_watchdog_and_stopping_reach_the_notify_socket) {
  notify_socket sd(dir_.file("notify"));
  const std::string env_dump = dir_.file("env");
  const std::string cfg = dir_.write("procsup.toml",
      "[supervisor]\nsocket = " + toml_str(dir_.socket()) +
      "\n[[program]]\nname = \"sleeper\"\ncommand = " + toml_argv({test_target, "sleep", "60"}) +
      "\n[[program]]\nname = \"env\"\ncommand = " +
      toml_argv({"/bin/sh", "-c", "env > " + env_dump + "; echo env-written; exec sleep 60"}) + "\n");
  // env(1) execs procsup in place (same pid) with systemd's variables set (WATCHDOG_USEC 200 ms:
  // procsup pings every 100 ms).
  procsup_process p({"--log-format", "json", "run", cfg},
                    {"/usr/bin/env", "NOTIFY_SOCKET=" + dir_.file("notify"), "WATCHDOG_USEC=200000"});
  std::vector<std::string> seen;
  ASSERT_TRUE(sd.wait_for("READY=1", seen)) << p.output();
  // READY=1 comes once both programs run, with a STATUS line counting them.
  ASSERT_TRUE(sd.wait_for("STATUS=2 running", seen)) << ::testing::PrintToString(seen);
  ASSERT_TRUE(sd.wait_for("WATCHDOG=1", seen)) << ::testing::PrintToString(seen);
  ASSERT_TRUE(sd.wait_for("WATCHDOG=1", seen)) << "the watchdog pings repeatedly";

  // The programs do not inherit systemd's variables (they could talk to systemd for procsup).
  ASSERT_TRUE(p.wait_line([](const std::string& l) { return l.find("[env] env-written") != std::string::npos; },
                          "[env] env-written"));
  const std::string env = read_file(env_dump);
  EXPECT_NE(env.find("PATH="), std::string::npos);
  EXPECT_EQ(env.find("NOTIFY_SOCKET"), std::string::npos) << env;
  EXPECT_EQ(env.find("WATCHDOG_USEC"), std::string::npos) << env;

  p.kill(SIGTERM);
  EXPECT_TRUE(sd.wait_for("STOPPING=1", seen)) << ::testing::PrintToString(seen);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

}  // namespace
