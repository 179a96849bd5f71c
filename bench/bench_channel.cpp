// Issue 2 section 5: the channel against a pipe pair, an AF_UNIX socketpair and Boost.Interprocess
// message_queue, all in one run, parent <-> forked child.
//   rt/<transport>/N     round trip: request of N bytes, reply of N bytes (wall time per round trip)
//   rt/spsc_bare/N       the floor under the channel: two minimal busy-polling SPSC byte rings in
//                        a shared mapping, no validation, no ids, no wake-up (issue 17's baseline)
//   stream64/<transport> one-way 64-byte messages (items_per_second)
//   idle_reader          a child blocked in receive for PROCSUP_BENCH_IDLE_SECONDS (default 10):
//                        its CPU time and context switches over the window
//   spin_bound/<ns>      CPU burnt by one receive that times out after 1 ms, per spin budget
// bench/run_channel.sh turns the JSON output into the README table (medians and ratios).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <boost/interprocess/ipc/message_queue.hpp>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <new>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/common/fork_child.hpp"
#include "procsup/ipc/channel.hpp"

namespace {

using procsup::bench::child_process;
using procsup::bench::die;
using procsup::bench::read_full;
using procsup::bench::write_full;

using namespace procsup::ipc;
using procsup::shm::ring_status;
using namespace std::chrono_literals;

constexpr auto forever = std::chrono::nanoseconds(-1);
constexpr std::size_t stream_msg = 64;
constexpr std::size_t stream_batch = 4096;  // messages per benchmark iteration, then one ack

using procsup::shm::cpu_relax;

std::span<const std::byte> as_span(const std::vector<std::byte>& v) { return {v.data(), v.size()}; }

// ------------------------------------------------------------------ channel round trips

enum class channel_mode { hot, hot_zero_copy, wake };

// Zero-copy send: build the body in place (here: copy from a prepared buffer, as encode_into does).
ring_status send_in_place(endpoint& e, frame_kind kind, std::uint64_t id, const std::vector<std::byte>& body) {
  for (;;) {
    ring_status st;
    auto room = e.try_reserve(body.size(), st);
    if (st == ring_status::ok) {
      std::memcpy(room.data(), body.data(), body.size());
      e.commit(kind, id, body.size());
      return st;
    }
    if (st != ring_status::full) return st;
    cpu_relax();
  }
}

int channel_echo(endpoint& e, std::size_t n, channel_mode mode) {
  std::vector<std::byte> reply(n, std::byte{0x42}), scratch(n);
  for (;;) {
    message m;
    if (e.receive(m, forever) != ring_status::ok) return 2;
    if (m.kind == frame_kind::shutdown) return 0;
    if (m.body.size() != n) return 3;
    if (mode == channel_mode::hot_zero_copy) {
      // In place: touch the body where it lies (first and last byte), no copy out.
      benchmark::DoNotOptimize(m.body[0]);
      benchmark::DoNotOptimize(m.body[n - 1]);
    } else {
      std::memcpy(scratch.data(), m.body.data(), n);  // as a decoder into a value would
      benchmark::DoNotOptimize(scratch.data());
    }
    const std::uint64_t id = m.id;
    e.release();
    const auto st = mode == channel_mode::hot_zero_copy ? send_in_place(e, frame_kind::reply, id, reply)
                                                        : e.send(frame_kind::reply, id, as_span(reply), forever);
    if (st != ring_status::ok) return 4;
  }
}

void bm_rt_channel(benchmark::State& state, channel_mode mode) {
  const auto n = static_cast<std::size_t>(state.range(0));
  auto ch = channel::create({.ring_capacity = std::size_t{1} << 20});
  // hot: both sides spin with the default bounded budget (20 us): back-to-back round trips never
  // exhaust it on an idle machine, and on a loaded one a spinner yields its core instead of
  // burning a whole time slice while its peer waits to run.
  // wake: the child never spins (every request takes the futex wake) and the parent waits on its
  // eventfd through epoll.
  const procsup::shm::spin_policy child_spin{mode == channel_mode::wake ? 0ns : procsup::shm::spin_policy{}.spin};
  child_process child([&] {
    auto e = ch.child_end();
    e.set_spin(child_spin);
    return channel_echo(e, n, mode);
  });
  auto e = ch.parent_end();
  e.set_spin({mode == channel_mode::wake ? 0ns : procsup::shm::spin_policy{}.spin});
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  if (ep < 0 || ::epoll_ctl(ep, EPOLL_CTL_ADD, e.wake_fd(), &ev) != 0) die("epoll");
  const std::vector<std::byte> request(n, std::byte{0x17});
  std::vector<std::byte> scratch(n);
  std::uint64_t id = 0;
  for (auto _ : state) {
    ++id;
    const auto st = mode == channel_mode::hot_zero_copy ? send_in_place(e, frame_kind::request, id, request)
                                                        : e.send(frame_kind::request, id, as_span(request), forever);
    if (st != ring_status::ok) {
      state.SkipWithError("send failed");
      break;
    }
    message m;
    if (mode == channel_mode::wake) {
      ring_status r;
      while ((r = e.try_receive(m)) == ring_status::empty) {
        if (e.arm_wakeup()) {
          (void)::epoll_wait(ep, &ev, 1, -1);
          e.clear_wake();
        }
      }
      if (r != ring_status::ok) {
        state.SkipWithError(e.error().c_str());
        break;
      }
    } else if (e.receive(m, forever) != ring_status::ok) {
      state.SkipWithError(e.error().c_str());
      break;
    }
    if (m.id != id || m.body.size() != n) {
      state.SkipWithError("reply mismatch");
      break;
    }
    if (mode == channel_mode::hot_zero_copy) {
      benchmark::DoNotOptimize(m.body[0]);
      benchmark::DoNotOptimize(m.body[n - 1]);
    } else {
      std::memcpy(scratch.data(), m.body.data(), n);
      benchmark::DoNotOptimize(scratch.data());
    }
    e.release();
  }
  (void)e.send(frame_kind::shutdown, 0, {}, 10s);
  child.wait(&state);
  ::close(ep);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 2 * n));
}

// ------------------------------------------------------------------ the bare SPSC floor

// A minimal SPSC byte ring: positions on their own cache lines, frames of {u64 length, bytes}
// padded to 8, never wrapping a frame (the writer skips to offset 0 by a zero-length marker).
// Nothing read from the peer is checked: what the channel adds on top is validation, ids, kinds
// and the wake-up handshake.
struct bare_ring {
  static constexpr std::size_t capacity = std::size_t{1} << 20;
  alignas(64) std::atomic<std::uint64_t> head{0};
  alignas(64) std::atomic<std::uint64_t> tail{0};
  alignas(64) std::byte data[capacity];
};

struct bare_writer {
  bare_ring* r;
  std::uint64_t head = 0;
  std::uint64_t tail = 0;  // the consumer's position as last seen: re-read only when full
  void wait_room(std::uint64_t need) {
    while (head + need - tail > bare_ring::capacity) {
      tail = r->tail.load(std::memory_order_acquire);
      if (head + need - tail > bare_ring::capacity) cpu_relax();
    }
  }
  void write(const void* p, std::size_t n) {
    const std::uint64_t need = 8 + ((n + 7) & ~std::size_t{7});
    std::uint64_t off = head & (bare_ring::capacity - 1);
    if (off + need > bare_ring::capacity) {  // skip to the start
      const std::uint64_t skip = bare_ring::capacity - off;
      wait_room(skip + need);
      const std::uint64_t marker = ~std::uint64_t{0};
      std::memcpy(r->data + off, &marker, 8);
      head += skip;
      off = 0;
    }
    wait_room(need);
    const std::uint64_t len = n;
    std::memcpy(r->data + off, &len, 8);
    std::memcpy(r->data + off + 8, p, n);
    head += need;
    r->head.store(head, std::memory_order_release);
  }
};

struct bare_reader {
  bare_ring* r;
  std::uint64_t tail = 0;
  std::uint64_t head = 0;  // the producer's position as last seen: re-read only when caught up
  // Busy-polls for the next frame and copies it into `out` (which must be large enough).
  std::size_t read(void* out) {
    for (;;) {
      while (head == tail) {
        head = r->head.load(std::memory_order_acquire);
        if (head == tail) cpu_relax();
      }
      std::uint64_t off = tail & (bare_ring::capacity - 1);
      std::uint64_t len;
      std::memcpy(&len, r->data + off, 8);
      if (len == ~std::uint64_t{0}) {
        tail += bare_ring::capacity - off;
        continue;
      }
      std::memcpy(out, r->data + off + 8, len);
      tail += 8 + ((len + 7) & ~std::uint64_t{7});
      r->tail.store(tail, std::memory_order_release);
      return len;
    }
  }
};

void bm_rt_spsc_bare(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  void* mem = ::mmap(nullptr, 2 * sizeof(bare_ring), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) die("mmap");
  auto* to_child = new (mem) bare_ring;
  auto* to_parent = new (static_cast<bare_ring*>(mem) + 1) bare_ring;
  child_process child([&] {
    bare_reader in{to_child};
    bare_writer out{to_parent};
    std::vector<std::byte> buf(n + 8);
    for (;;) {
      const std::size_t got = in.read(buf.data());
      if (got == 0) return 0;  // shutdown
      out.write(buf.data(), got);
    }
  });
  bare_writer out{to_child};
  bare_reader in{to_parent};
  const std::vector<std::byte> request(n, std::byte{0x17});
  std::vector<std::byte> scratch(n + 8);
  for (auto _ : state) {
    out.write(request.data(), n);
    if (in.read(scratch.data()) != n) {
      state.SkipWithError("reply mismatch");
      break;
    }
    benchmark::DoNotOptimize(scratch.data());
  }
  out.write(nullptr, 0);
  child.wait(&state);
  ::munmap(mem, 2 * sizeof(bare_ring));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 2 * n));
}

// ------------------------------------------------------------------ pipe / socketpair round trips

int fd_echo(int in, int out, std::size_t n) {
  std::vector<char> buf(n);
  for (;;) {
    if (!read_full(in, buf.data(), n)) return 0;  // EOF: the parent is done
    if (!write_full(out, buf.data(), n)) return 2;
  }
}

void fd_round_trips(benchmark::State& state, int out, int in, std::size_t n) {
  const std::vector<char> request(n, 0x17);
  std::vector<char> reply(n);
  for (auto _ : state) {
    if (!write_full(out, request.data(), n) || !read_full(in, reply.data(), n)) {
      state.SkipWithError("pipe i/o failed");
      break;
    }
    benchmark::DoNotOptimize(reply.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 2 * n));
}

void bm_rt_pipe(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  int to_child[2], to_parent[2];
  if (::pipe2(to_child, O_CLOEXEC) != 0 || ::pipe2(to_parent, O_CLOEXEC) != 0) die("pipe2");
  child_process child([&] {
    ::close(to_child[1]);
    ::close(to_parent[0]);
    return fd_echo(to_child[0], to_parent[1], n);
  });
  ::close(to_child[0]);
  ::close(to_parent[1]);
  fd_round_trips(state, to_child[1], to_parent[0], n);
  ::close(to_child[1]);
  child.wait(&state);
  ::close(to_parent[0]);
}

void bm_rt_socketpair(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
  child_process child([&] {
    ::close(sv[0]);
    return fd_echo(sv[1], sv[1], n);
  });
  ::close(sv[1]);
  fd_round_trips(state, sv[0], sv[0], n);
  ::close(sv[0]);
  child.wait(&state);
}

// ------------------------------------------------------------------ Boost message_queue (baseline)

void bm_rt_message_queue(benchmark::State& state) {
  namespace bip = boost::interprocess;
  const auto n = static_cast<std::size_t>(state.range(0));
  static int counter = 0;
  const std::string base = "procsup_bench_mq_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
  const std::string req_name = base + "_req", rep_name = base + "_rep";
  bip::message_queue::remove(req_name.c_str());
  bip::message_queue::remove(rep_name.c_str());
  {
    bip::message_queue req(bip::create_only, req_name.c_str(), 4, n);
    bip::message_queue rep(bip::create_only, rep_name.c_str(), 4, n);
    child_process child([&] {
      bip::message_queue creq(bip::open_only, req_name.c_str());
      bip::message_queue crep(bip::open_only, rep_name.c_str());
      std::vector<char> buf(n);
      for (;;) {
        bip::message_queue::size_type got = 0;
        unsigned prio = 0;
        creq.receive(buf.data(), n, got, prio);
        if (got == 0) return 0;  // an empty message: stop
        crep.send(buf.data(), got, 0);
      }
    });
    const std::vector<char> request(n, 0x17);
    std::vector<char> reply(n);
    for (auto _ : state) {
      req.send(request.data(), n, 0);
      bip::message_queue::size_type got = 0;
      unsigned prio = 0;
      rep.receive(reply.data(), n, got, prio);
      benchmark::DoNotOptimize(reply.data());
    }
    req.send(request.data(), 0, 0);
    child.wait(&state);
  }
  // Named objects in /dev/shm outlive us otherwise (docs/platform-notes.md#named-shared-memory-outlives-its-processes).
  bip::message_queue::remove(req_name.c_str());
  bip::message_queue::remove(rep_name.c_str());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 2 * n));
}

// ------------------------------------------------------------------ one-way streaming, 64 B

void stream_channel(benchmark::State& state, bool batched) {
  auto ch = channel::create({.ring_capacity = std::size_t{1} << 20});
  child_process child([&] {
    auto e = ch.child_end();
    e.set_batching(batched);
    std::uint64_t seen = 0;  // default spin budget, as in rt/channel_hot
    for (;;) {
      message m;
      if (e.receive(m, forever) != ring_status::ok) return 2;
      const auto kind = m.kind;
      benchmark::DoNotOptimize(m.body[0]);
      e.release();
      if (kind == frame_kind::shutdown) return 0;
      if (++seen % stream_batch == 0) {
        if (e.send(frame_kind::heartbeat, seen, {}, forever) != ring_status::ok) return 3;
        e.flush();
      }
    }
  });
  auto e = ch.parent_end();
  e.set_batching(batched);
  const std::vector<std::byte> msg(stream_msg, std::byte{0x33});
  std::uint64_t id = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < stream_batch; ++i) {
      if (e.send(frame_kind::request, ++id, as_span(msg), forever) != ring_status::ok) die("stream send");
    }
    e.flush();
    message m;  // the child's ack: it has consumed the whole batch
    if (e.receive(m, forever) != ring_status::ok || m.id != id) die("stream ack");
    e.release();
  }
  (void)e.send(frame_kind::shutdown, 0, {}, 10s);
  e.flush();
  child.wait(&state);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * stream_batch));
}

void bm_stream_channel(benchmark::State& state) { stream_channel(state, false); }
// The same with batched publication on both sides (ring_writer/ring_reader::set_batching).
void bm_stream_channel_batched(benchmark::State& state) { stream_channel(state, true); }

// The reader reads as much as is there (up to 64 KiB a call): generous to the baseline; the
// writer makes one write() per message, as a message-at-a-time sender must.
void stream_fd(benchmark::State& state, int out, int ack_in) {
  const std::vector<char> msg(stream_msg, 0x33);
  for (auto _ : state) {
    for (std::size_t i = 0; i < stream_batch; ++i) {
      if (!write_full(out, msg.data(), msg.size())) die("stream write");
    }
    char ack;
    if (!read_full(ack_in, &ack, 1)) die("stream ack");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * stream_batch));
}

int stream_fd_reader(int in, int ack_out) {
  std::vector<char> buf(64 * 1024);
  std::size_t pending = 0;
  const std::size_t batch_bytes = stream_batch * stream_msg;
  for (;;) {
    const ssize_t r = ::read(in, buf.data(), buf.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return 2;
    if (r == 0) return 0;
    pending += static_cast<std::size_t>(r);
    while (pending >= batch_bytes) {
      pending -= batch_bytes;
      if (!write_full(ack_out, "k", 1)) return 3;
    }
  }
}

void bm_stream_pipe(benchmark::State& state) {
  int data[2], ack[2];
  if (::pipe2(data, O_CLOEXEC) != 0 || ::pipe2(ack, O_CLOEXEC) != 0) die("pipe2");
  child_process child([&] {
    ::close(data[1]);
    ::close(ack[0]);
    return stream_fd_reader(data[0], ack[1]);
  });
  ::close(data[0]);
  ::close(ack[1]);
  stream_fd(state, data[1], ack[0]);
  ::close(data[1]);
  child.wait(&state);
  ::close(ack[0]);
}

void bm_stream_socketpair(benchmark::State& state) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
  child_process child([&] {
    ::close(sv[0]);
    return stream_fd_reader(sv[1], sv[1]);
  });
  ::close(sv[1]);
  stream_fd(state, sv[0], sv[0]);
  ::shutdown(sv[0], SHUT_WR);
  child.wait(&state);
  ::close(sv[0]);
}

// ------------------------------------------------------------------ idle reader, bounded spin

struct proc_usage {
  double cpu_ms = 0;
  double voluntary = 0, involuntary = 0;
};

// CPU time from /proc/<pid>/schedstat (ns on CPU), context switches from /proc/<pid>/status.
proc_usage usage_of(pid_t pid) {
  proc_usage u;
  const std::string dir = "/proc/" + std::to_string(pid);
  std::ifstream sched(dir + "/schedstat");
  double ns = 0;
  if (sched >> ns) u.cpu_ms = ns / 1e6;
  std::ifstream status(dir + "/status");
  std::string line;
  while (std::getline(status, line)) {
    std::istringstream in(line);
    std::string key;
    double v = 0;
    in >> key >> v;
    if (key == "voluntary_ctxt_switches:") u.voluntary = v;
    if (key == "nonvoluntary_ctxt_switches:") u.involuntary = v;
  }
  return u;
}

double idle_seconds() {
  const char* s = std::getenv("PROCSUP_BENCH_IDLE_SECONDS");
  const double v = s ? std::atof(s) : 10.0;
  return v > 0 ? v : 10.0;
}

void bm_idle_reader(benchmark::State& state) {
  const double seconds = idle_seconds();
  auto ch = channel::create();
  child_process child([&] {
    auto e = ch.child_end();  // default spin policy (20 us)
    if (e.send(frame_kind::ready, 0, {}, 10s) != ring_status::ok) return 2;
    message m;
    if (e.receive(m, forever) != ring_status::ok || m.kind != frame_kind::shutdown) return 3;
    return 0;
  });
  auto e = ch.parent_end();
  message m;
  if (e.receive(m, 10s) != ring_status::ok) die("idle ready");
  e.release();
  std::this_thread::sleep_for(50ms);  // let the child pass its spin budget and block
  proc_usage before{}, after{};
  for (auto _ : state) {
    before = usage_of(child.pid());
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    after = usage_of(child.pid());
  }
  (void)e.send(frame_kind::shutdown, 0, {}, 10s);
  child.wait(&state);
  state.counters["window_s"] = seconds;
  state.counters["child_cpu_ms"] = after.cpu_ms - before.cpu_ms;
  state.counters["child_voluntary_ctxsw"] = after.voluntary - before.voluntary;
  state.counters["child_involuntary_ctxsw"] = after.involuntary - before.involuntary;
}

double thread_cpu_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// CPU burnt by one receive on an idle channel that times out after 1 ms, for a given spin budget:
// about the budget plus a few microseconds of system calls, never the whole millisecond.
void bm_spin_bound(benchmark::State& state) {
  auto ch = channel::create({.ring_capacity = 4096});
  auto e = ch.child_end();
  e.set_spin({std::chrono::nanoseconds(state.range(0))});
  double cpu = 0;
  for (auto _ : state) {
    message m;
    const double t0 = thread_cpu_ns();
    if (e.receive(m, 1ms) != ring_status::timeout) die("spin_bound");
    cpu += thread_cpu_ns() - t0;
  }
  state.counters["spin_us"] = static_cast<double>(state.range(0)) / 1e3;
  state.counters["cpu_us_per_wait"] = cpu / 1e3 / static_cast<double>(state.iterations());
}

}  // namespace

BENCHMARK_CAPTURE(bm_rt_channel, hot, channel_mode::hot)
    ->Name("rt/channel_hot")->Arg(64)->Arg(4096)->Arg(65536)->UseRealTime();
BENCHMARK(bm_rt_spsc_bare)->Name("rt/spsc_bare")->Arg(64)->Arg(4096)->UseRealTime();
BENCHMARK_CAPTURE(bm_rt_channel, hot_zero_copy, channel_mode::hot_zero_copy)
    ->Name("rt/channel_hot_zero_copy")->Arg(64)->Arg(4096)->Arg(65536)->UseRealTime();
BENCHMARK_CAPTURE(bm_rt_channel, wake, channel_mode::wake)
    ->Name("rt/channel_wake")->Arg(64)->Arg(4096)->Arg(65536)->UseRealTime();
BENCHMARK(bm_rt_pipe)->Name("rt/pipe")->Arg(64)->Arg(4096)->Arg(65536)->UseRealTime();
BENCHMARK(bm_rt_socketpair)->Name("rt/socketpair")->Arg(64)->Arg(4096)->Arg(65536)->UseRealTime();
BENCHMARK(bm_rt_message_queue)->Name("rt/message_queue")->Arg(64)->Arg(4096)->Arg(65536)->UseRealTime();
BENCHMARK(bm_stream_channel)->Name("stream64/channel")->UseRealTime();
BENCHMARK(bm_stream_channel_batched)->Name("stream64/channel_batched")->UseRealTime();
BENCHMARK(bm_stream_pipe)->Name("stream64/pipe")->UseRealTime();
BENCHMARK(bm_stream_socketpair)->Name("stream64/socketpair")->UseRealTime();
BENCHMARK(bm_spin_bound)->Name("spin_bound")->Arg(0)->Arg(20'000)->Arg(200'000)->Iterations(200)->Repetitions(1);
BENCHMARK(bm_idle_reader)->Name("idle_reader")->Iterations(1)->Repetitions(1)->UseRealTime()->Unit(benchmark::kSecond);

BENCHMARK_MAIN();
