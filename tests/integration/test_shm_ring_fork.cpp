// The ring across a real fork: a million checksummed, numbered frames each way with the blocking
// (futex) calls; the eventfd wake path an epoll loop uses; an idle consumer that really sleeps;
// and no shared memory object outliving both processes, however they end.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "helpers/process_guard.hpp"
#include "procsup/shm/region.hpp"
#include "procsup/shm/ring.hpp"

using namespace procsup::shm;
using namespace std::chrono_literals;
using procsup::testing::describe_wait_status;
using procsup::testing::fork_child;
using procsup::testing::wait_child;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr std::uint64_t million = 200'000;  // scaled down under ASan; the release build runs 1e6
#else
constexpr std::uint64_t million = 1'000'000;
#endif

// ---- numbered, checksummed frames: [u64 seq][body][u32 fnv1a(seq..body)], tag = f(seq)

std::uint32_t fnv1a(const std::byte* p, std::size_t n) {
  std::uint32_t h = 2166136261u;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ std::to_integer<std::uint32_t>(p[i])) * 16777619u;
  return h;
}
std::uint32_t tag_of(std::uint64_t seq) { return static_cast<std::uint32_t>(seq * 2654435761u) & 0x7fffffffu; }
std::size_t size_of(std::uint64_t seq) {
  if (seq % 997 == 0) return 12 + 1500;  // now and then a big one: more wraps with padding
  return 12 + static_cast<std::size_t>((seq * 40503u >> 3) % 117);
}
std::byte body_byte(std::uint64_t seq, std::size_t i) { return std::byte(static_cast<unsigned char>(seq * 31 + i * 7)); }

void encode(std::uint64_t seq, std::vector<std::byte>& out) {
  out.resize(size_of(seq));
  std::memcpy(out.data(), &seq, 8);
  for (std::size_t i = 8; i < out.size() - 4; ++i) out[i] = body_byte(seq, i);
  const std::uint32_t sum = fnv1a(out.data(), out.size() - 4);
  std::memcpy(out.data() + out.size() - 4, &sum, 4);
}

// 0 if the frame is exactly frame `seq`; else a code saying what is wrong.
int check(std::uint64_t seq, const frame_view& f) {
  if (f.payload.size() != size_of(seq)) return 11;
  std::uint64_t got = 0;
  std::memcpy(&got, f.payload.data(), 8);
  if (got != seq) return got < seq ? 12 : 13;  // duplicated / lost or reordered
  std::uint32_t sum = 0;
  std::memcpy(&sum, f.payload.data() + f.payload.size() - 4, 4);
  if (sum != fnv1a(f.payload.data(), f.payload.size() - 4)) return 14;
  for (std::size_t i = 8; i < f.payload.size() - 4; ++i)
    if (f.payload[i] != body_byte(seq, i)) return 15;
  if (f.tag != tag_of(seq)) return 16;
  return 0;
}

const char* check_meaning(int code) {
  switch (code) {
    case 11: return "wrong size";
    case 12: return "a frame was duplicated (or went backwards)";
    case 13: return "a frame was lost or reordered";
    case 14: return "bad checksum";
    case 15: return "bad body";
    case 16: return "wrong tag";
    default: return "?";
  }
}

// A region holding one formatted ring.
struct shared_ring {
  explicit shared_ring(std::size_t capacity, const char* name = "procsup-test-ring")
      : region(shared_region::create(ring_bytes(capacity), name)),
        header(format_ring(region.data(), region.size(), capacity)) {}
  shared_region region;
  ring_header* header;
};

// Producer loop (child or parent): `n` frames with the blocking write. 0 on success.
int produce(ring_writer& w, std::uint64_t n, std::uint64_t first = 0) {
  std::vector<std::byte> buf;
  for (std::uint64_t seq = first; seq < first + n; ++seq) {
    encode(seq, buf);
    const auto st = w.write(tag_of(seq), buf, 20s);
    if (st != ring_status::ok) {
      std::fprintf(stderr, "producer: frame %llu: %s %s\n", static_cast<unsigned long long>(seq), to_string(st),
                   w.error().c_str());
      return 20;
    }
  }
  return 0;
}

// Consumer loop in a child: `n` frames with the blocking read. 0 on success.
int consume(ring_reader& r, std::uint64_t n) {
  for (std::uint64_t seq = 0; seq < n; ++seq) {
    frame_view f;
    const auto st = r.read(f, 20s);
    if (st != ring_status::ok) {
      std::fprintf(stderr, "consumer: frame %llu: %s %s\n", static_cast<unsigned long long>(seq), to_string(st),
                   r.error().c_str());
      return 21;
    }
    if (const int bad = check(seq, f); bad != 0) {
      std::fprintf(stderr, "consumer: frame %llu: %s\n", static_cast<unsigned long long>(seq), check_meaning(bad));
      return bad;
    }
    r.pop();
  }
  frame_view f;
  return r.try_read(f) == ring_status::empty ? 0 : 22;  // nothing extra
}

void expect_exit_code(pid_t pid, int code) {
  const int status = wait_child(pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == code)
      << "child " << pid << " " << describe_wait_status(status) << ", expected exit code " << code;
}

// Who maps or holds an fd of the memfd called `name` (any process): "pid: where" lines.
std::vector<std::string> holders_of_memfd(const std::string& name) {
  std::vector<std::string> out;
  const std::string needle = "/memfd:" + name + " ";  // "/memfd:NAME (deleted)"
  for (const auto& p : procsup::testing::detail::list_dir("/proc")) {
    if (p.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream maps("/proc/" + p + "/maps");
    for (std::string line; std::getline(maps, line);)
      if ((line + " ").find(needle) != std::string::npos) out.push_back(p + ": mapping " + line);
    const std::string fd_dir = "/proc/" + p + "/fd";
    for (const auto& fd : procsup::testing::detail::list_dir(fd_dir.c_str())) {
      char buf[256];
      const ssize_t n = ::readlink((fd_dir + "/" + fd).c_str(), buf, sizeof buf - 1);
      if (n > 0 && (std::string(buf, static_cast<std::size_t>(n)) + " ").find(needle) != std::string::npos)
        out.push_back(p + ": fd " + fd);
    }
  }
  return out;
}

std::string unique_name() {
  static int counter = 0;
  return "procsup-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

// utime + stime (clock ticks) and voluntary context switches of process `pid`.
struct cpu_use {
  long ticks = -1;
  long voluntary_switches = -1;
};
cpu_use cpu_use_of(pid_t pid) {
  cpu_use u;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto close = line.rfind(')');
  if (close != std::string::npos) {
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stol(field);
      if (i == 15) stime = std::stol(field);
    }
    u.ticks = utime + stime;
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string l; std::getline(status, l);)
    if (l.rfind("voluntary_ctxt_switches:", 0) == 0) u.voluntary_switches = std::stol(l.substr(24));
  return u;
}

char process_state(pid_t pid) {
  pid_t ppid = 0;
  char state = '?';
  (void)procsup::testing::detail::read_stat(pid, ppid, state);
  return state;
}

class ring_fork : public procsup::testing::process_guard_test {};

}  // namespace

TEST_F(ring_fork, a_million_frames_from_parent_to_child_arrive_whole_once_and_in_order) {
  shared_ring ring(16 * 1024);
  const pid_t child = fork_child([&] {
    ring_reader r(ring.region.data(), ring.region.size());
    return consume(r, million);
  });
  ASSERT_GT(child, 0);
  ring_writer w(ring.region.data(), ring.region.size());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(produce(w, million), 0);
  expect_exit_code(child, 0);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  std::printf("%llu frames parent -> child in %lld ms\n", static_cast<unsigned long long>(million),
              static_cast<long long>(ms.count()));
}

TEST_F(ring_fork, a_million_frames_from_child_to_parent_arrive_whole_once_and_in_order) {
  shared_ring ring(16 * 1024);
  const pid_t child = fork_child([&] {
    ring_writer w(ring.region.data(), ring.region.size());
    return produce(w, million);
  });
  ASSERT_GT(child, 0);
  ring_reader r(ring.region.data(), ring.region.size());
  for (std::uint64_t seq = 0; seq < million; ++seq) {
    frame_view f;
    const auto st = r.read(f, 20s);
    ASSERT_EQ(st, ring_status::ok) << "frame " << seq << ": " << r.error();
    const int bad = check(seq, f);
    ASSERT_EQ(bad, 0) << "frame " << seq << ": " << check_meaning(bad);
    r.pop();
  }
  expect_exit_code(child, 0);
  frame_view f;
  EXPECT_EQ(r.try_read(f), ring_status::empty);
}

// The parent side as a supervisor's event loop runs it: non-blocking reads, arm_wakeup, and
// epoll on the eventfd the producer signals when (and only when) the consumer sleeps.
TEST_F(ring_fork, an_epoll_consumer_is_woken_through_the_eventfd) {
  constexpr std::uint64_t n = million / 5;
  shared_ring ring(8 * 1024);
  const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  int go[2];
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  const pid_t child = fork_child([&] {
    ::close(go[1]);
    ring_writer w(ring.region.data(), ring.region.size(), wakeup::futex(), wakeup::event(efd));
    if (const int rc = produce(w, n / 2); rc != 0) return rc;
    char c;  // half-way: wait until the parent is asleep on the eventfd
    if (::read(go[0], &c, 1) != 1) return 30;
    return produce(w, n - n / 2, n / 2);
  });
  ASSERT_GT(child, 0);
  ::close(go[0]);
  ring_reader r(ring.region.data(), ring.region.size(), wakeup::event(efd), wakeup::futex());
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = efd;
  ASSERT_EQ(::epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev), 0);

  std::uint64_t seq = 0, sleeps = 0;
  bool released = false;
  while (seq < n) {
    frame_view f;
    const auto st = r.try_read(f);
    if (st == ring_status::ok) {
      const int bad = check(seq, f);
      ASSERT_EQ(bad, 0) << "frame " << seq << ": " << check_meaning(bad);
      r.pop();
      ++seq;
      continue;
    }
    ASSERT_EQ(st, ring_status::empty) << r.error();
    if (!r.arm_wakeup()) continue;  // a frame arrived meanwhile
    if (seq == n / 2 && !released) {
      // Armed on an empty ring while the producer is parked: from now on only the eventfd can
      // wake us, and it must.
      ASSERT_EQ(ring.header->reader_sleeping.load(), 1u);
      ASSERT_EQ(::write(go[1], "g", 1), 1);
      released = true;
    }
    epoll_event out{};
    const int k = ::epoll_wait(ep, &out, 1, 20'000);
    ASSERT_EQ(k, 1) << "no wake within 20 s at frame " << seq;
    std::uint64_t v;
    ASSERT_EQ(::read(efd, &v, sizeof v), 8);
    ++sleeps;
  }
  expect_exit_code(child, 0);
  EXPECT_TRUE(released);
  EXPECT_GE(sleeps, 1u);
  std::printf("%llu frames, the consumer slept %llu times\n", static_cast<unsigned long long>(n),
              static_cast<unsigned long long>(sleeps));
  ::close(go[1]);
  ::close(ep);
  ::close(efd);
}

// An idle consumer is asleep in the kernel: no CPU time, no wake-ups, until a frame comes.
TEST_F(ring_fork, an_idle_consumer_sleeps_without_cpu_or_wakeups) {
  shared_ring ring(4096);
  int ack[2];
  ASSERT_EQ(::pipe2(ack, O_CLOEXEC), 0);
  const pid_t child = fork_child([&] {
    ::close(ack[0]);
    ring_reader r(ring.region.data(), ring.region.size());
    for (std::uint64_t seq = 0; seq < 2; ++seq) {
      frame_view f;
      if (r.read(f, 30s) != ring_status::ok) return 40;
      if (const int bad = check(seq, f); bad != 0) return bad;
      r.pop();
      if (::write(ack[1], "a", 1) != 1) return 41;
    }
    return 0;
  });
  ASSERT_GT(child, 0);
  ::close(ack[1]);
  ring_writer w(ring.region.data(), ring.region.size());
  std::vector<std::byte> buf;
  encode(0, buf);
  ASSERT_EQ(w.try_write(tag_of(0), buf), ring_status::ok);
  char c;
  ASSERT_EQ(::read(ack[0], &c, 1), 1);

  // Falling asleep is a state, not an event: look for it (the spin phase lasts ~20 us).
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (!(ring.header->reader_sleeping.load() == 1 && process_state(child) == 'S') &&
         std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(1ms);
  ASSERT_EQ(ring.header->reader_sleeping.load(), 1u) << "the consumer never went to sleep";
  const cpu_use before = cpu_use_of(child);
  // The idle window is the thing measured here, not a wait for an event.
  std::this_thread::sleep_for(300ms);
  const cpu_use after = cpu_use_of(child);
  EXPECT_EQ(process_state(child), 'S');
  EXPECT_LE(after.ticks - before.ticks, 1) << "an idle consumer used CPU";
  EXPECT_EQ(after.voluntary_switches, before.voluntary_switches) << "an idle consumer was woken";

  encode(1, buf);
  ASSERT_EQ(w.try_write(tag_of(1), buf), ring_status::ok);  // the wake: the consumer slept
  EXPECT_EQ(ring.header->reader_sleeping.load(), 0u);
  ASSERT_EQ(::read(ack[0], &c, 1), 1);
  expect_exit_code(child, 0);
  ::close(ack[0]);
}

TEST_F(ring_fork, an_idle_epoll_consumer_gets_no_eventfd_wakeups) {
  shared_ring ring(4096);
  const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  int go[2];
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  const pid_t child = fork_child([&] {
    ::close(go[1]);
    ring_writer w(ring.region.data(), ring.region.size(), wakeup::futex(), wakeup::event(efd));
    char c;
    if (::read(go[0], &c, 1) != 1) return 50;  // idle until told
    return produce(w, 1);
  });
  ASSERT_GT(child, 0);
  ::close(go[0]);
  ring_reader r(ring.region.data(), ring.region.size(), wakeup::event(efd), wakeup::futex());
  ASSERT_TRUE(r.arm_wakeup());
  rusage before{}, after{};
  ::getrusage(RUSAGE_THREAD, &before);
  pollfd p{efd, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 300), 0) << "woken while nothing was sent";
  ::getrusage(RUSAGE_THREAD, &after);
  EXPECT_LE(after.ru_nvcsw - before.ru_nvcsw, 1);
  ASSERT_EQ(::write(go[1], "g", 1), 1);
  EXPECT_EQ(::poll(&p, 1, 20'000), 1) << "not woken when a frame was sent";
  frame_view f;
  ASSERT_EQ(r.try_read(f), ring_status::ok);
  EXPECT_EQ(check(0, f), 0);
  r.pop();
  expect_exit_code(child, 0);
  ::close(go[1]);
  ::close(efd);
}

TEST_F(ring_fork, the_memfd_is_gone_once_both_sides_have_exited_normally) {
  const std::string name = unique_name();
  {
    shared_ring ring(4096, name.c_str());
    const pid_t child = fork_child([&] {
      ring_writer w(ring.region.data(), ring.region.size());
      return produce(w, 1000);
    });
    ASSERT_GT(child, 0);
    ring_reader r(ring.region.data(), ring.region.size());
    for (std::uint64_t seq = 0; seq < 1000; ++seq) {
      frame_view f;
      ASSERT_EQ(r.read(f, 20s), ring_status::ok);
      ASSERT_EQ(check(seq, f), 0);
      r.pop();
    }
    expect_exit_code(child, 0);
    EXPECT_FALSE(holders_of_memfd(name).empty());  // the check below can see it while it exists
  }
  const auto holders = holders_of_memfd(name);
  EXPECT_TRUE(holders.empty()) << holders.front();
}

TEST_F(ring_fork, the_memfd_is_gone_once_both_sides_are_sigkilled) {
  // A middle process creates the ring and forks its peer; both are SIGKILLed while they use it.
  const std::string name = unique_name();
  int report[2];
  ASSERT_EQ(::pipe2(report, O_CLOEXEC), 0);
  const pid_t middle = fork_child([&] {
    ::close(report[0]);
    shared_ring ring(4096, name.c_str());
    const pid_t peer = ::fork();
    if (peer == 0) {
      ring_writer w(ring.region.data(), ring.region.size());
      (void)produce(w, ~std::uint64_t{0} >> 1);  // until killed (blocks when full)
      ::_exit(60);
    }
    ring_reader r(ring.region.data(), ring.region.size());
    frame_view f;
    if (r.read(f, 20s) != ring_status::ok) return 61;  // both sides are using it now
    if (::write(report[1], &peer, sizeof peer) != static_cast<ssize_t>(sizeof peer)) return 62;
    for (;;) ::pause();
  });
  ASSERT_GT(middle, 0);
  ::close(report[1]);
  pid_t peer = 0;
  ASSERT_EQ(::read(report[0], &peer, sizeof peer), static_cast<ssize_t>(sizeof peer));
  ::close(report[0]);
  ASSERT_FALSE(holders_of_memfd(name).empty());
  // The peer is our grandchild: a pidfd tells us when it is dead (files and mappings released).
  const int peer_fd = static_cast<int>(::syscall(SYS_pidfd_open, peer, 0));
  ASSERT_GE(peer_fd, 0) << std::strerror(errno);
  ASSERT_EQ(::kill(peer, SIGKILL), 0);
  ASSERT_EQ(::kill(middle, SIGKILL), 0);
  const int status = wait_child(middle);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << describe_wait_status(status);
  pollfd p{peer_fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 20'000), 1) << "the grandchild did not die";
  ::close(peer_fd);
  const auto holders = holders_of_memfd(name);
  EXPECT_TRUE(holders.empty()) << holders.front();
}
