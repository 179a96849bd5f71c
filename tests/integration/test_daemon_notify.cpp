// sd_notify against a datagram socket the test owns (filesystem path and abstract name).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

#include "helpers/process_guard.hpp"
#include "procsup/daemon/notify.hpp"

namespace {

namespace pd = procsup::daemon;
using namespace std::chrono_literals;

// A bound SOCK_DGRAM socket: the part of systemd this test plays.
class fake_systemd {
 public:
  explicit fake_systemd(std::string name) : name_(std::move(name)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, name_.data(), name_.size());
    if (name_[0] == '@') addr.sun_path[0] = '\0';
    else ::unlink(name_.c_str());
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size() + (name_[0] == '@' ? 0 : 1));
    EXPECT_EQ(::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), len), 0) << std::strerror(errno);
  }
  ~fake_systemd() {
    ::close(fd_);
    if (name_[0] != '@') ::unlink(name_.c_str());
  }
  std::string receive() {  // blocks until a datagram is there (send() already happened)
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    return n < 0 ? std::string("<nothing: ") + std::strerror(errno) + ">" : std::string(buf, static_cast<std::size_t>(n));
  }

 private:
  std::string name_;
  int fd_ = -1;
};

class daemon_notify : public procsup::testing::process_guard_test {};

TEST_F(daemon_notify, datagrams_reach_a_filesystem_socket) {
  const std::string path = "/tmp/procsup-notify-" + std::to_string(::getpid()) + ".sock";
  {
    fake_systemd systemd(path);
    pd::notifier n(path);
    ASSERT_TRUE(n.enabled());
    EXPECT_EQ(n.ready(), 0);
    EXPECT_EQ(systemd.receive(), "READY=1");
    EXPECT_EQ(n.status("3 programs\nrunning"), 0);
    EXPECT_EQ(systemd.receive(), "STATUS=3 programs running");
    EXPECT_EQ(n.stopping(), 0);
    EXPECT_EQ(systemd.receive(), "STOPPING=1");
    EXPECT_EQ(n.watchdog(), 0);
    EXPECT_EQ(systemd.receive(), "WATCHDOG=1");
    EXPECT_EQ(n.reloading(), 0);
    const std::string reload = systemd.receive();
    EXPECT_EQ(reload.rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0U) << reload;
    EXPECT_GT(std::stoll(reload.substr(reload.find('=', 12) + 1)), 0);
  }  // the notifier's socket is closed here: the guard sees no leaked fd
}

TEST_F(daemon_notify, datagrams_reach_an_abstract_socket) {
  const std::string name = "@procsup-notify-test-" + std::to_string(::getpid());
  fake_systemd systemd(name);
  pd::notifier n(name);
  EXPECT_EQ(n.ready(), 0);
  EXPECT_EQ(systemd.receive(), "READY=1");
}

TEST_F(daemon_notify, without_notify_socket_sends_are_no_ops) {
  pd::notifier n;
  EXPECT_FALSE(n.enabled());
  EXPECT_EQ(n.ready(), 0);
  EXPECT_FALSE(n.watchdog_interval().has_value());
}

TEST_F(daemon_notify, a_missing_socket_is_an_error_value) {
  pd::notifier n("/tmp/procsup-no-such-notify.sock");
  EXPECT_EQ(n.ready(), ENOENT);
}

TEST_F(daemon_notify, watchdog_honours_watchdog_pid) {
  ::setenv("NOTIFY_SOCKET", "@procsup-x", 1);
  ::setenv("WATCHDOG_USEC", "30000000", 1);
  ::unsetenv("WATCHDOG_PID");
  EXPECT_EQ(pd::notifier::from_env().watchdog_timeout(), std::chrono::microseconds(30s));
  EXPECT_EQ(pd::notifier::from_env().watchdog_interval(), std::chrono::microseconds(15s));
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  EXPECT_TRUE(pd::notifier::from_env().watchdog_interval().has_value());
  ::setenv("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str(), 1);  // meant for someone else
  EXPECT_FALSE(pd::notifier::from_env().watchdog_interval().has_value());
  EXPECT_EQ(pd::notifier::from_env().socket_path(), "@procsup-x");
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
  EXPECT_FALSE(pd::notifier::from_env().enabled());
}

TEST(daemon_notify_env, systemd_variables_are_stripped_from_child_environments) {
  const auto env = pd::strip_notify_environment(
      {"PATH=/bin", "NOTIFY_SOCKET=/run/systemd/notify", "WATCHDOG_USEC=1", "WATCHDOG_PID=3", "LISTEN_FDS=2",
       "LISTEN_PID=3", "LISTEN_FDNAMES=a", "HOME=/root", "MY_NOTIFY_SOCKET=keep"});
  EXPECT_EQ(env, (std::vector<std::string>{"PATH=/bin", "HOME=/root", "MY_NOTIFY_SOCKET=keep"}));
}

}  // namespace
