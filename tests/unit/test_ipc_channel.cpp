// The channel in one process: shared layout pinned, framing (kinds, ids, sizes, zero copy),
// attach() validation of a bad memfd / eventfd, and no fd or /dev/shm left behind.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>

#include "helpers/process_guard.hpp"
#include "procsup/ipc/channel.hpp"

using namespace procsup::ipc;
using procsup::shm::ring_status;

namespace {

// Fails a test that leaves an fd or a /dev/shm entry behind.
class ipc_channel : public procsup::testing::process_guard_test {};

std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }
std::string text_of(std::span<const std::byte> b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

// A sealed memfd holding `size` bytes copied from `src` (or zeros): a hand-made "channel".
int make_memfd(std::size_t size, const void* src = nullptr, bool seal = true) {
  int fd = ::memfd_create("test-ipc-bad", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
  if (src) {
    EXPECT_EQ(::pwrite(fd, src, size, 0), static_cast<ssize_t>(size));
  }
  if (seal) {
    EXPECT_EQ(::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
  }
  return fd;
}

std::string attach_error(int memfd, int efd) {
  try {
    (void)channel::attach(memfd, efd);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(ipc_channel_layout, header_size_and_offsets_are_pinned) {
  EXPECT_EQ(sizeof(channel_header), 64u);
  EXPECT_EQ(offsetof(channel_header, magic), 0u);
  EXPECT_EQ(offsetof(channel_header, version), 8u);
  EXPECT_EQ(offsetof(channel_header, header_size), 12u);
  EXPECT_EQ(offsetof(channel_header, ring_capacity), 16u);
  EXPECT_EQ(offsetof(channel_header, to_child_offset), 24u);
  EXPECT_EQ(offsetof(channel_header, to_parent_offset), 32u);
  EXPECT_EQ(offsetof(channel_header, total_bytes), 40u);
  EXPECT_EQ(offsetof(channel_header, handling), 48u);
  EXPECT_EQ(channel_layout_version, 2u);
  EXPECT_EQ(channel_bytes(4096), 64u + 2 * (320u + 4096u));
}

TEST_F(ipc_channel, frames_carry_kind_id_and_body_both_ways) {
  auto ch = channel::create({.ring_capacity = 4096});
  auto parent = ch.parent_end();
  auto child = ch.child_end();
  EXPECT_GE(parent.wake_fd(), 0);
  EXPECT_EQ(child.wake_fd(), -1);
  EXPECT_EQ(parent.max_body(), 4096u / 2 - 8 - 8);
  const std::string body = "hello";
  ASSERT_EQ(parent.try_send(frame_kind::request, 0xdeadbeefcafeULL, bytes_of(body)), ring_status::ok);
  ASSERT_EQ(parent.try_send(frame_kind::shutdown, 2, {}), ring_status::ok);
  message m;
  ASSERT_EQ(child.try_receive(m), ring_status::ok);
  EXPECT_EQ(m.kind, frame_kind::request);
  EXPECT_EQ(m.id, 0xdeadbeefcafeULL);
  EXPECT_EQ(text_of(m.body), body);
  child.release();
  ASSERT_EQ(child.try_receive(m), ring_status::ok);
  EXPECT_EQ(m.kind, frame_kind::shutdown);
  EXPECT_TRUE(m.body.empty());
  child.release();
  EXPECT_EQ(child.try_receive(m), ring_status::empty);

  const std::string err = "boom: \xe2\x9c\x97";
  ASSERT_EQ(child.try_send(frame_kind::error, 7, bytes_of(err)), ring_status::ok);
  ASSERT_EQ(parent.try_receive(m), ring_status::ok);
  EXPECT_EQ(m.kind, frame_kind::error);
  EXPECT_EQ(m.id, 7u);
  EXPECT_EQ(text_of(m.body), err);
  parent.release();
  EXPECT_FALSE(parent.broken());
  EXPECT_STREQ(to_string(frame_kind::heartbeat), "heartbeat");
  EXPECT_STREQ(to_string(static_cast<frame_kind>(99)), "unknown");
}

TEST_F(ipc_channel, the_request_the_child_publishes_as_in_progress_is_what_the_parent_reads) {
  auto ch = channel::create({.ring_capacity = 4096});
  auto parent = ch.parent_end();
  auto child = ch.child_end();
  EXPECT_EQ(parent.published_handling(), 0u);  // a fresh channel: nothing in progress
  child.publish_handling(42);
  EXPECT_EQ(parent.published_handling(), 42u);
  child.publish_handling(0);
  EXPECT_EQ(parent.published_handling(), 0u);
  EXPECT_EQ(endpoint().published_handling(), 0u);  // a default endpoint has no channel
  EXPECT_STREQ(to_string(frame_kind::rejected), "rejected");
  EXPECT_STREQ(to_string(frame_kind::start), "start");
}

TEST_F(ipc_channel, the_largest_body_fits_and_a_larger_one_is_refused_not_split) {
  auto ch = channel::create({.ring_capacity = 1024});
  auto parent = ch.parent_end();
  auto child = ch.child_end();
  const std::string big(parent.max_body(), 'z');
  EXPECT_EQ(parent.try_send(frame_kind::request, 1, bytes_of(big + "!")), ring_status::too_large);
  ring_status st;
  EXPECT_TRUE(parent.try_reserve(parent.max_body() + 1, st).empty());
  EXPECT_EQ(st, ring_status::too_large);
  ASSERT_EQ(parent.try_send(frame_kind::request, 1, bytes_of(big)), ring_status::ok);
  message m;
  ASSERT_EQ(child.try_receive(m), ring_status::ok);
  EXPECT_EQ(text_of(m.body), big);
  child.release();
  EXPECT_FALSE(parent.broken());
}

TEST_F(ipc_channel, a_full_ring_says_full_until_the_reader_releases) {
  auto ch = channel::create({.ring_capacity = 256});
  auto parent = ch.parent_end();
  auto child = ch.child_end();
  const std::string body(40, 'a');  // 8 + 8 + 40 = 56 bytes a frame
  int sent = 0;
  while (parent.try_send(frame_kind::request, static_cast<std::uint64_t>(sent), bytes_of(body)) == ring_status::ok) ++sent;
  EXPECT_EQ(sent, 4);
  EXPECT_EQ(parent.try_send(frame_kind::request, 99, bytes_of(body)), ring_status::full);
  EXPECT_EQ(parent.send(frame_kind::request, 99, bytes_of(body), std::chrono::milliseconds(1)), ring_status::timeout);
  message m;
  ASSERT_EQ(child.try_receive(m), ring_status::ok);
  EXPECT_EQ(m.id, 0u);
  child.release();
  EXPECT_EQ(parent.try_send(frame_kind::request, 4, bytes_of(body)), ring_status::ok);
  for (std::uint64_t id = 1; id <= 4; ++id) {
    ASSERT_EQ(child.receive(m, std::chrono::seconds(5)), ring_status::ok);
    EXPECT_EQ(m.id, id);
    child.release();
  }
  EXPECT_EQ(child.receive(m, std::chrono::milliseconds(1)), ring_status::timeout);
}

TEST_F(ipc_channel, zero_copy_reserve_commit_and_in_place_read) {
  auto ch = channel::create({.ring_capacity = 1 << 18});
  auto parent = ch.parent_end();
  auto child = ch.child_end();
  for (std::uint64_t round = 0; round < 20; ++round) {  // several wraps of the ring
    ring_status st;
    auto room = parent.try_reserve(64 * 1024, st);
    ASSERT_EQ(st, ring_status::ok);
    ASSERT_EQ(room.size(), 64u * 1024);
    const std::size_t used = 1000 + round * 3000;
    for (std::size_t i = 0; i < used; ++i) room[i] = static_cast<std::byte>((i + round) & 0xff);
    parent.commit(frame_kind::reply, round, used);
    message m;
    ASSERT_EQ(child.try_receive(m), ring_status::ok);
    EXPECT_EQ(m.id, round);
    ASSERT_EQ(m.body.size(), used);
    for (std::size_t i = 0; i < used; ++i) ASSERT_EQ(m.body[i], static_cast<std::byte>((i + round) & 0xff));
    child.release();
  }
  EXPECT_THROW(parent.commit(frame_kind::reply, 1, 0), std::logic_error);
}

TEST_F(ipc_channel, arm_wakeup_is_false_while_there_is_work_and_true_when_idle) {
  auto ch = channel::create({.ring_capacity = 256});
  auto parent = ch.parent_end();
  auto child = ch.child_end();
  EXPECT_TRUE(parent.arm_wakeup());
  ASSERT_EQ(child.try_send(frame_kind::heartbeat, 0, {}), ring_status::ok);
  // The child saw the parent asleep and signalled the eventfd.
  std::uint64_t v = 0;
  ASSERT_EQ(::read(parent.wake_fd(), &v, sizeof v), static_cast<ssize_t>(sizeof v));
  EXPECT_EQ(v, 1u);
  EXPECT_FALSE(parent.arm_wakeup());
  message m;
  ASSERT_EQ(parent.try_receive(m), ring_status::ok);
  parent.release();
  // Fill the outgoing ring: idle in, but a pending send of 40 bytes cannot go.
  const std::string body(40, 'b');
  while (parent.try_send(frame_kind::request, 1, bytes_of(body)) == ring_status::ok) {
  }
  EXPECT_TRUE(parent.arm_wakeup(40));
  ASSERT_EQ(child.try_receive(m), ring_status::ok);
  child.release();  // frees space: wakes the parent through the eventfd
  ASSERT_EQ(::read(parent.wake_fd(), &v, sizeof v), static_cast<ssize_t>(sizeof v));
  EXPECT_FALSE(parent.arm_wakeup(40));
  EXPECT_THROW(parent.arm_wakeup(parent.max_body() + 1), std::invalid_argument);
  parent.clear_wake();
  // No wake pending: the parent is not re-signalled while it is not asleep.
  EXPECT_EQ(::read(parent.wake_fd(), &v, sizeof v), -1);
}

TEST_F(ipc_channel, attach_from_duplicated_fds_talks_to_the_creator) {
  auto ch = channel::create({.ring_capacity = 4096});
  auto parent = ch.parent_end();
  auto attached = channel::attach(::fcntl(ch.memfd(), F_DUPFD_CLOEXEC, 0), ::fcntl(ch.parent_eventfd(), F_DUPFD_CLOEXEC, 0));
  EXPECT_EQ(attached.ring_capacity(), 4096u);
  auto child = attached.child_end();
  ASSERT_EQ(child.try_send(frame_kind::ready, 0, {}), ring_status::ok);
  message m;
  ASSERT_EQ(parent.try_receive(m), ring_status::ok);
  EXPECT_EQ(m.kind, frame_kind::ready);
  parent.release();
}

TEST_F(ipc_channel, attach_rejects_a_bad_memfd_with_a_clear_error) {
  auto ch = channel::create({.ring_capacity = 4096});
  const auto size = channel_bytes(4096);
  std::vector<std::byte> good(size);
  ASSERT_EQ(::pread(ch.memfd(), good.data(), size, 0), static_cast<ssize_t>(size));
  auto efd = [] { return ::eventfd(0, EFD_CLOEXEC); };

  // Not a memfd at all.
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  ::close(p[1]);
  EXPECT_NE(attach_error(p[0], efd()).find("not a memfd"), std::string::npos);
  // A memfd that is not sealed.
  EXPECT_NE(attach_error(make_memfd(size, good.data(), false), efd()).find("not sealed"), std::string::npos);
  // Wrong magic.
  auto bad = good;
  bad[0] = std::byte{'X'};
  EXPECT_NE(attach_error(make_memfd(size, bad.data()), efd()).find("bad magic"), std::string::npos);
  // Wrong layout version.
  bad = good;
  bad[8] = std::byte{9};
  EXPECT_NE(attach_error(make_memfd(size, bad.data()), efd()).find("layout version 9"), std::string::npos);
  // Too small for what the header claims.
  EXPECT_NE(attach_error(make_memfd(4096, good.data()), efd()).find("needs"), std::string::npos);
  // A ring header scribbled over.
  bad = good;
  bad[sizeof(channel_header)] = std::byte{0};
  EXPECT_NE(attach_error(make_memfd(size, bad.data()), efd()).find("parent->child ring: bad magic"), std::string::npos);
  // The eventfd is not an eventfd.
  int q[2];
  ASSERT_EQ(::pipe2(q, O_CLOEXEC), 0);
  ::close(q[1]);
  EXPECT_NE(attach_error(make_memfd(size, good.data()), q[0]).find("not a writable eventfd"), std::string::npos);
}

TEST_F(ipc_channel, create_rejects_a_capacity_that_is_not_a_power_of_two) {
  EXPECT_THROW(channel::create({.ring_capacity = 1000}), std::invalid_argument);
  EXPECT_THROW(channel::create({.ring_capacity = 32}), std::invalid_argument);
}

TEST_F(ipc_channel, many_channels_leave_nothing_behind) {
  for (int i = 0; i < 50; ++i) {
    auto ch = channel::create({.ring_capacity = 4096});
    auto moved = std::move(ch);
    auto e = moved.parent_end();
    EXPECT_EQ(e.try_send(frame_kind::heartbeat, 0, {}), ring_status::ok);
  }
}
