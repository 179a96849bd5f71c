// The channel across real forks: many requests in flight with ids matched (futex-woken child),
// a parent driven by epoll on wake_fd() that really sleeps when idle, corrupt frames from a child,
// and a child that attaches from inherited fds. Children end with _exit; the parent checks the
// wait status; nothing sleeps to await an event.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "helpers/process_guard.hpp"
#include "procsup/ipc/codec.hpp"
#include "procsup/shm/ring.hpp"

using namespace procsup::ipc;
using procsup::shm::ring_status;
using namespace std::chrono_literals;

namespace {

// Fails a test that leaves a child, an fd or a /dev/shm entry behind.
class ipc_fork : public procsup::testing::process_guard_test {};

using procsup::testing::fork_child;

// Reaps pid and expects a clean exit 0.
void expect_clean_exit(pid_t pid) {
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

std::uint64_t checksum(std::span<const std::byte> b) {
  std::uint64_t h = 1469598103934665603ULL;
  for (auto x : b) h = (h ^ std::to_integer<std::uint64_t>(x)) * 1099511628211ULL;
  return h;
}

// The child's echo loop: each request's reply carries its id and the checksum of its body;
// stops on shutdown. Returns 0 if all went well.
int echo_server(endpoint& e) {
  for (;;) {
    message m;
    if (e.receive(m, 10s) != ring_status::ok) return 2;
    if (m.kind == frame_kind::shutdown) {
      e.release();
      return 0;
    }
    if (m.kind != frame_kind::request) return 3;
    const std::uint64_t sum = checksum(m.body) + m.body.size();
    const std::uint64_t id = m.id;
    e.release();
    if (send_value(e, frame_kind::reply, id, sum, 10s) != ring_status::ok) return 4;
  }
}

}  // namespace

TEST_F(ipc_fork, many_requests_in_flight_get_replies_matched_by_id) {
  auto ch = channel::create({.ring_capacity = 1 << 14});
  const pid_t pid = fork_child([&] {
    auto e = ch.child_end();
    e.set_spin({0ns});  // every wait takes the futex path
    return echo_server(e);
  });
  auto e = ch.parent_end();
  constexpr std::uint64_t total = 20000;
  constexpr std::uint64_t window = 64;
  std::vector<std::uint64_t> expected(total);
  std::vector<bool> answered(total, false);
  std::uint64_t next = 0, done = 0;
  std::vector<std::byte> body;
  while (done < total) {
    while (next < total && next - done < window) {
      body.assign(next % 700, static_cast<std::byte>(next & 0xff));
      expected[next] = checksum(body) + body.size();
      const auto st = e.try_send(frame_kind::request, next, body);
      if (st == ring_status::full) break;
      ASSERT_EQ(st, ring_status::ok);
      ++next;
    }
    message m;
    const auto st = e.receive(m, 10s);
    ASSERT_EQ(st, ring_status::ok) << e.error();
    ASSERT_EQ(m.kind, frame_kind::reply);
    ASSERT_LT(m.id, next);
    ASSERT_FALSE(answered[m.id]) << "duplicate reply " << m.id;
    EXPECT_EQ(m.id, done) << "replies come in request order";
    EXPECT_EQ(decode<std::uint64_t>(m.body), expected[m.id]);
    answered[m.id] = true;
    ++done;
    e.release();
  }
  ASSERT_EQ(e.send(frame_kind::shutdown, 0, {}, 10s), ring_status::ok);
  expect_clean_exit(pid);
}

TEST_F(ipc_fork, the_child_can_request_and_the_parent_replies) {
  auto ch = channel::create({.ring_capacity = 1 << 12});
  const pid_t pid = fork_child([&] {
    auto e = ch.child_end();
    for (std::uint64_t id = 1; id <= 500; ++id) {
      if (send_value(e, frame_kind::request, id, nlohmann::json{{"n", id}}, 10s) != ring_status::ok) return 2;
      message m;
      if (e.receive(m, 10s) != ring_status::ok || m.kind != frame_kind::reply || m.id != id) return 3;
      if (decode<std::string>(m.body) != "ack " + std::to_string(id)) return 4;
      e.release();
    }
    return 0;
  });
  auto e = ch.parent_end();
  for (std::uint64_t n = 1; n <= 500; ++n) {
    message m;
    ASSERT_EQ(e.receive(m, 10s), ring_status::ok);
    ASSERT_EQ(m.kind, frame_kind::request);
    const auto j = decode<nlohmann::json>(m.body);
    ASSERT_EQ(j["n"].get<std::uint64_t>(), m.id);
    const auto id = m.id;
    e.release();
    ASSERT_EQ(send_value(e, frame_kind::reply, id, "ack " + std::to_string(id), 10s), ring_status::ok);
  }
  expect_clean_exit(pid);
}

TEST_F(ipc_fork, an_epoll_driven_parent_sleeps_when_idle_and_wakes_on_replies_and_space) {
  // A small ring, so the parent also has to wait for space (arm_wakeup(pending_send)).
  auto ch = channel::create({.ring_capacity = 1024});
  const pid_t pid = fork_child([&] {
    auto e = ch.child_end();
    return echo_server(e);
  });
  auto e = ch.parent_end();
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ASSERT_EQ(::epoll_ctl(ep, EPOLL_CTL_ADD, e.wake_fd(), &ev), 0);

  // Idle: nothing was sent, so nothing wakes the parent.
  ASSERT_TRUE(e.arm_wakeup());
  EXPECT_EQ(::epoll_wait(ep, &ev, 1, 200), 0);

  constexpr std::uint64_t total = 3000;
  const std::vector<std::byte> body(300, std::byte{0x5a});  // 3 frames fill half the ring
  const std::uint64_t want = checksum(body) + body.size();
  std::uint64_t next = 0, done = 0, sleeps = 0;
  while (done < total) {
    while (next < total) {
      const auto st = e.try_send(frame_kind::request, next, body);
      if (st == ring_status::full) break;
      ASSERT_EQ(st, ring_status::ok);
      ++next;
    }
    message m;
    ring_status st;
    while ((st = e.try_receive(m)) == ring_status::ok) {
      ASSERT_EQ(m.id, done);
      EXPECT_EQ(decode<std::uint64_t>(m.body), want);
      ++done;
      e.release();
    }
    ASSERT_EQ(st, ring_status::empty) << e.error();
    if (done == total) break;
    if (e.arm_wakeup(next < total ? body.size() : 0)) {
      ++sleeps;
      const int n = ::epoll_wait(ep, &ev, 1, 10'000);
      ASSERT_EQ(n, 1) << "no wake within 10 s";
      e.clear_wake();
    }
  }
  EXPECT_GT(sleeps, 0u);
  ASSERT_EQ(e.try_send(frame_kind::shutdown, 0, {}), ring_status::ok);
  expect_clean_exit(pid);
  // The child is gone and nothing more was sent: idle again. A wake the child sent after the
  // parent's last clear_wake() (the parent found the replies without sleeping: a late wake is by
  // design, it only costs a system call) is drained first; after that nothing may come.
  e.clear_wake();
  ASSERT_TRUE(e.arm_wakeup());
  EXPECT_EQ(::epoll_wait(ep, &ev, 1, 50), 0);
  ::close(ep);
}

TEST_F(ipc_fork, a_frame_of_unknown_kind_from_the_child_breaks_the_channel_with_a_message) {
  auto ch = channel::create({.ring_capacity = 4096});
  const pid_t pid = fork_child([&] {
    auto e = ch.child_end();
    const std::byte junk[3]{};
    return e.send(static_cast<frame_kind>(42), 1, junk, 10s) == ring_status::ok ? 0 : 2;
  });
  expect_clean_exit(pid);
  auto e = ch.parent_end();
  message m;
  EXPECT_EQ(e.receive(m, 10s), ring_status::corrupt);
  EXPECT_TRUE(e.broken());
  EXPECT_NE(e.error().find("unknown kind 42"), std::string::npos) << e.error();
  // Broken for good.
  EXPECT_EQ(e.try_receive(m), ring_status::corrupt);
  EXPECT_EQ(e.try_send(frame_kind::request, 1, {}), ring_status::corrupt);
  EXPECT_FALSE(e.arm_wakeup());
}

TEST_F(ipc_fork, a_frame_shorter_than_its_id_breaks_the_channel_with_a_message) {
  auto ch = channel::create({.ring_capacity = 4096});
  const pid_t pid = fork_child([&] {
    // A raw ring writer on the child -> parent ring, as a buggy child could have.
    channel_header h;
    if (::pread(ch.memfd(), &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) return 2;
    void* base = ::mmap(nullptr, h.total_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, ch.memfd(), 0);
    if (base == MAP_FAILED) return 3;
    procsup::shm::ring_writer w(static_cast<std::byte*>(base) + h.to_parent_offset,
                                procsup::shm::ring_bytes(h.ring_capacity));
    const std::byte three[3]{std::byte{1}, std::byte{2}, std::byte{3}};
    return w.try_write(static_cast<std::uint32_t>(frame_kind::reply), three) == ring_status::ok ? 0 : 4;
  });
  expect_clean_exit(pid);
  auto e = ch.parent_end();
  message m;
  EXPECT_EQ(e.try_receive(m), ring_status::corrupt);
  EXPECT_NE(e.error().find("reply frame of 3 bytes, shorter than its 8-byte request id"), std::string::npos)
      << e.error();
}

TEST_F(ipc_fork, a_child_attaching_from_inherited_fds_serves_requests) {
  auto ch = channel::create({.ring_capacity = 1 << 12});
  const pid_t pid = fork_child([&] {
    // As an exec'd worker would: only the two fds, no inherited channel object.
    auto mine = channel::attach(::dup(ch.memfd()), ::dup(ch.parent_eventfd()));
    auto e = mine.child_end();
    return echo_server(e);
  });
  auto e = ch.parent_end();
  const std::string hello = "hello";
  for (std::uint64_t id = 1; id <= 100; ++id) {
    ASSERT_EQ(e.send(frame_kind::request, id, std::as_bytes(std::span(hello.data(), hello.size())), 10s),
              ring_status::ok);
    message m;
    ASSERT_EQ(e.receive(m, 10s), ring_status::ok) << e.error();
    EXPECT_EQ(m.id, id);
    e.release();
  }
  ASSERT_EQ(e.send(frame_kind::shutdown, 0, {}, 10s), ring_status::ok);
  expect_clean_exit(pid);
}
