// Issue 3 benchmarks: the supervisor's costs against bare baselines measured in the same run.
//   restart/supervised          a child's crash (it SIGKILLs itself) -> the first reply served by
//                               its new instance (manual time per restart)
//   restart/fork_waitpid        baseline: fork, child _exit(0), waitpid
//   rt/send_get/64              process::send().get() round trip, 64 B each way, one caller, hot
//   rt/socketpair/64            baseline: AF_UNIX socketpair round trip to a forked echo child
//   rt/channel/64               baseline: the raw ipc channel (both sides spin, as bench_channel hot)
//   pipelined/send_get          256 sends in flight, then 256 gets (items_per_second)
//   pipelined/socketpair        reference: 256 writes then 256 reads on a socketpair
//   lifecycle/N                 supervisor.spawn() N trivial children, then supervisor.stop()
//   lifecycle_many/N            the same with one supervisor.spawn_many(N, ...)
//                               (counters spawn_ms, stop_ms per iteration)
//   idle/100_children           a supervisor with 100 idle children for PROCSUP_BENCH_IDLE_SECONDS
//                               (default 3): the process's CPU time, context switches, timers
//   launch/exec/fds:N           procsup::launch_exec of /bin/true + waitpid, with N extra fds open
//                               in the parent (close-on-exec, as a supervisor's own fds are)
//   launch/posix_spawn/fds:N    baseline: posix_spawn of /bin/true + waitpid, same N fds
//   big_parent/...              restart and fork+waitpid again after the process allocated and
//                               touched 200 MB of heap (registered last: the ballast stays)
// bench/run_supervisor.sh turns the JSON output into the README table (medians, ratios, targets).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/common/fork_child.hpp"
#include "procsup/ipc/channel.hpp"
#include "procsup/procsup.hpp"

namespace {

using procsup::bench::child_process;
using procsup::bench::die;
using procsup::bench::read_full;
using procsup::bench::write_full;

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using procsup::shm::ring_status;

constexpr std::size_t message_bytes = 64;
constexpr std::size_t pipeline_depth = 256;
constexpr std::size_t ballast_bytes = std::size_t{200} << 20;
constexpr auto forever = std::chrono::nanoseconds(-1);

double seconds_since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

// ------------------------------------------------------------------ behaviors

// Echoes its request; "crash" makes the child die abnormally (SIGKILL: no core dump, no
// cleanup, the way an OOM kill or a fatal bug ends a process).
struct echo_behavior {
  std::string handle(std::string request) {
    if (request == "crash") ::kill(::getpid(), SIGKILL);
    return request;
  }
};

// The smallest behavior for spawn / stop costs.
struct trivial_behavior {
  int handle(int x) { return x; }
};

// A supervisor that restarts at once, every time: no backoff, effectively no intensity limit,
// and no logging (the benchmark measures the mechanism, not spdlog).
procsup::supervisor_options bench_supervisor_options(const char* name) {
  procsup::supervisor_options o;
  o.name = name;
  o.intensity = INT_MAX;
  o.period = 1ms;
  o.backoff.initial = 0ms;
  o.backoff.step = 0ms;
  o.log = false;
  return o;
}

// ------------------------------------------------------------------ the 200 MB parent

std::vector<char>& ballast() {
  static std::vector<char> b;
  return b;
}

// Allocates and touches 200 MB of heap in this process (once): every later fork copies the page
// tables that map it.
void ensure_ballast() {
  auto& b = ballast();
  if (!b.empty()) return;
  b.resize(ballast_bytes);
  for (std::size_t i = 0; i < b.size(); i += 4096) b[i] = static_cast<char>(i >> 12);
  benchmark::DoNotOptimize(b.data());
}

// ------------------------------------------------------------------ restart latency

void bm_restart_supervised(benchmark::State& state) {
  procsup::supervisor sup(bench_supervisor_options("bench-restart"));
  auto p = sup.spawn(echo_behavior{}, {.name = "echo"});
  const std::string ping(message_bytes, 'p');
  if (p.send(ping).get() != ping) state.SkipWithError("first ping");
  std::int64_t retries = 0;
  for (auto _ : state) {
    const auto t0 = clock_type::now();
    try {
      p.send("crash").get();
      state.SkipWithError("the crash request was answered");
      break;
    } catch (const procsup::process_error&) {
      // The child died; its failure is how the parent learns it.
    }
    // The new instance's first reply. Sent after the failure, so it waits in the parent's queue
    // and goes to the new instance (it cannot land in the dying one).
    bool served = false;
    for (int attempt = 0; attempt < 100 && !served; ++attempt) {
      try {
        served = p.send(ping).get() == ping;
      } catch (const procsup::process_error&) {
        ++retries;
      }
    }
    state.SetIterationTime(seconds_since(t0));
    if (!served) {
      state.SkipWithError("the restarted child never answered");
      break;
    }
  }
  state.counters["restarts"] = static_cast<double>(p.info().restart_count);
  state.counters["retries"] = static_cast<double>(retries);
  sup.stop();
}

void reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

void bm_fork_waitpid(benchmark::State& state) {
  for (auto _ : state) {
    const pid_t pid = ::fork();
    if (pid < 0) die("fork");
    if (pid == 0) ::_exit(0);
    reap(pid);
  }
}

// ------------------------------------------------------------------ launch cost vs open fds

// N close-on-exec fds open while it lives: a supervisor's pidfds, pipes and channels.
class fd_ballast {
 public:
  explicit fd_ballast(int n) {
    rlimit rl{};  // the usual soft limit of 1024 is too low: the hard one, as procsup itself does
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = rl.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &rl);
    }
    for (int i = 0; i < n; ++i) {
      const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) die("open /dev/null (raise ulimit -n)");
      fds_.push_back(fd);
    }
  }
  ~fd_ballast() {
    for (int fd : fds_) ::close(fd);
  }
  fd_ballast(const fd_ballast&) = delete;
  fd_ballast& operator=(const fd_ballast&) = delete;

 private:
  std::vector<int> fds_;
};

void bm_launch_exec(benchmark::State& state) {
  const fd_ballast ballast(static_cast<int>(state.range(0)));
  procsup::exec_spec spec;
  spec.path = "/bin/true";
  const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  spec.setup.fds = {{devnull, 0}, {devnull, 1}, {devnull, 2}};  // as the daemon passes stdio
  for (auto _ : state) {
    auto r = procsup::launch_exec(spec);
    if (auto* err = std::get_if<procsup::launch_error>(&r)) {
      state.SkipWithError(err->message.c_str());
      break;
    }
    reap(std::get<pid_t>(r));
  }
  ::close(devnull);
}

void bm_launch_posix_spawn(benchmark::State& state) {
  const fd_ballast ballast(static_cast<int>(state.range(0)));
  char path[] = "/bin/true";
  char* argv[] = {path, nullptr};
  char* envp[] = {nullptr};
  for (auto _ : state) {
    pid_t pid = -1;
    if (::posix_spawn(&pid, path, nullptr, nullptr, argv, envp) != 0) {
      state.SkipWithError("posix_spawn /bin/true");
      break;
    }
    reap(pid);
  }
}

// ------------------------------------------------------------------ round trips, 64 B

void bm_rt_send_get(benchmark::State& state) {
  procsup::supervisor sup(bench_supervisor_options("bench-rt"));
  auto p = sup.spawn(echo_behavior{}, {.name = "echo"});
  const std::string request(message_bytes, 'r');
  for (auto _ : state) {
    std::string reply = p.send(request).get();
    benchmark::DoNotOptimize(reply.data());
    if (reply.size() != message_bytes) {
      state.SkipWithError("short reply");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  sup.stop();
}

int fd_echo(int fd, std::size_t n) {
  std::vector<char> buf(n);
  for (;;) {
    if (!read_full(fd, buf.data(), n)) return 0;  // EOF: the parent is done
    if (!write_full(fd, buf.data(), n)) return 2;
  }
}

void bm_rt_socketpair(benchmark::State& state) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
  child_process child([&] {
    ::close(sv[0]);
    return fd_echo(sv[1], message_bytes);
  });
  ::close(sv[1]);
  const std::vector<char> request(message_bytes, 'r');
  std::vector<char> reply(message_bytes);
  for (auto _ : state) {
    if (!write_full(sv[0], request.data(), message_bytes) || !read_full(sv[0], reply.data(), message_bytes)) {
      state.SkipWithError("socketpair i/o failed");
      break;
    }
    benchmark::DoNotOptimize(reply.data());
  }
  ::close(sv[0]);
  child.wait(&state);
  state.SetItemsProcessed(state.iterations());
}

// The raw channel under the supervisor: both ends spin with the default bounded budget, the
// child copies the request out (as a decoder would) and sends a 64 B reply.
void bm_rt_channel(benchmark::State& state) {
  using namespace procsup::ipc;
  auto ch = channel::create();
  child_process child([&] {
    auto e = ch.child_end();
    std::vector<std::byte> scratch(message_bytes);
    for (;;) {
      message m;
      if (e.receive(m, forever) != ring_status::ok) return 2;
      if (m.kind == frame_kind::shutdown) return 0;
      const std::size_t n = std::min(m.body.size(), scratch.size());
      std::memcpy(scratch.data(), m.body.data(), n);
      const std::uint64_t id = m.id;
      e.release();
      if (e.send(frame_kind::reply, id, std::span<const std::byte>(scratch.data(), n), forever) != ring_status::ok) return 3;
    }
  });
  auto e = ch.parent_end();
  const std::vector<std::byte> request(message_bytes, std::byte{0x72});
  std::vector<std::byte> reply(message_bytes);
  std::uint64_t id = 0;
  for (auto _ : state) {
    if (e.send(frame_kind::request, ++id, request, forever) != ring_status::ok) {
      state.SkipWithError("channel send");
      break;
    }
    message m;
    if (e.receive(m, forever) != ring_status::ok || m.id != id) {
      state.SkipWithError("channel receive");
      break;
    }
    std::memcpy(reply.data(), m.body.data(), std::min(m.body.size(), reply.size()));
    benchmark::DoNotOptimize(reply.data());
    e.release();
  }
  (void)e.send(frame_kind::shutdown, 0, {}, 10s);
  child.wait(&state);
  state.SetItemsProcessed(state.iterations());
}

// ------------------------------------------------------------------ pipelined throughput

void bm_pipelined_send_get(benchmark::State& state) {
  procsup::supervisor sup(bench_supervisor_options("bench-pipelined"));
  auto p = sup.spawn(echo_behavior{}, {.name = "echo"});
  const std::string request(message_bytes, 'q');
  std::vector<procsup::reply<std::string>> replies;
  replies.reserve(pipeline_depth);
  for (auto _ : state) {
    replies.clear();
    for (std::size_t i = 0; i < pipeline_depth; ++i) replies.push_back(p.send(request));
    for (auto& r : replies) {
      std::string reply = r.get();
      benchmark::DoNotOptimize(reply.data());
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * pipeline_depth));
  sup.stop();
}

void bm_pipelined_socketpair(benchmark::State& state) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
  child_process child([&] {
    ::close(sv[0]);
    return fd_echo(sv[1], message_bytes);
  });
  ::close(sv[1]);
  const std::vector<char> request(message_bytes, 'q');
  std::vector<char> reply(message_bytes);
  for (auto _ : state) {
    // 256 x 64 B = 16 KiB fits the socket buffers, so writing all first cannot deadlock.
    for (std::size_t i = 0; i < pipeline_depth; ++i)
      if (!write_full(sv[0], request.data(), message_bytes)) die("socketpair write");
    for (std::size_t i = 0; i < pipeline_depth; ++i)
      if (!read_full(sv[0], reply.data(), message_bytes)) die("socketpair read");
    benchmark::DoNotOptimize(reply.data());
  }
  ::close(sv[0]);
  child.wait(&state);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * pipeline_depth));
}

// ------------------------------------------------------------------ spawn and stop N children

// Spawns N children with `spawn_all(supervisor, N)`, then stops the supervisor.
template <class SpawnAll>
void lifecycle(benchmark::State& state, const char* name, SpawnAll spawn_all) {
  const auto n = static_cast<std::size_t>(state.range(0));
  double spawn_total = 0, stop_total = 0;
  for (auto _ : state) {
    procsup::supervisor sup(bench_supervisor_options(name));
    const auto t0 = clock_type::now();
    std::vector<procsup::process<int, int>> children = spawn_all(sup, n);
    const double spawned = seconds_since(t0);
    const auto t1 = clock_type::now();
    sup.stop();
    const double stopped = seconds_since(t1);
    state.SetIterationTime(spawned + stopped);
    spawn_total += spawned;
    stop_total += stopped;
    for (const auto& c : children)
      if (c.state() != procsup::process_state::stopped) {
        state.SkipWithError("a child is not stopped after supervisor.stop()");
        break;
      }
  }
  const auto iters = static_cast<double>(state.iterations());
  state.counters["spawn_ms"] = 1e3 * spawn_total / iters;
  state.counters["stop_ms"] = 1e3 * stop_total / iters;
  state.counters["children"] = static_cast<double>(n);
}

// One spawn() after the other: each returns once its child's init() has finished.
void bm_lifecycle(benchmark::State& state) {
  lifecycle(state, "bench-lifecycle", [](procsup::supervisor& sup, std::size_t n) {
    std::vector<procsup::process<int, int>> children;
    children.reserve(n);
    for (std::size_t i = 0; i < n; ++i) children.push_back(sup.spawn(trivial_behavior{}));
    return children;
  });
}

// spawn_many(): each child's setup and init() run while the next one is forked.
void bm_lifecycle_many(benchmark::State& state) {
  lifecycle(state, "bench-lifecycle-many",
            [](procsup::supervisor& sup, std::size_t n) { return sup.spawn_many(n, trivial_behavior{}); });
}

// ------------------------------------------------------------------ idle CPU

double idle_seconds() {
  const char* s = std::getenv("PROCSUP_BENCH_IDLE_SECONDS");
  const double v = s ? std::atof(s) : 3.0;
  return v > 0 ? v : 3.0;
}

double cpu_seconds(const rusage& r) {
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) * 1e-6;
}

// utime + stime of a live process from /proc/<pid>/stat, in seconds (0 if unreadable).
double proc_cpu_seconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return 0;
  const auto close_paren = line.rfind(')');
  if (close_paren == std::string::npos) return 0;
  std::istringstream rest(line.substr(close_paren + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {  // fields 14 and 15: utime, stime
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

void bm_idle(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const double window = idle_seconds();
  procsup::supervisor sup(bench_supervisor_options("bench-idle"));
  std::vector<procsup::process<int, int>> children;
  for (std::size_t i = 0; i < n; ++i) children.push_back(sup.spawn(trivial_behavior{}));
  for (auto& c : children) (void)c.send(1).get();  // every child served once, then idles
  std::this_thread::sleep_for(200ms);              // let every spinner fall asleep
  for (auto _ : state) {
    double children_before = 0, children_after = 0;
    for (auto& c : children) children_before += proc_cpu_seconds(c.pid());
    rusage r0{}, r1{};
    ::getrusage(RUSAGE_SELF, &r0);
    std::this_thread::sleep_for(std::chrono::duration<double>(window));
    ::getrusage(RUSAGE_SELF, &r1);
    for (auto& c : children) children_after += proc_cpu_seconds(c.pid());
    state.counters["window_s"] = window;
    state.counters["supervisor_cpu_ms"] = 1e3 * (cpu_seconds(r1) - cpu_seconds(r0));
    state.counters["supervisor_voluntary_ctxsw"] = static_cast<double>(r1.ru_nvcsw - r0.ru_nvcsw);
    state.counters["children_cpu_ms"] = 1e3 * (children_after - children_before);
  }
  state.counters["timers"] = static_cast<double>(sup.loop().call([&] { return sup.loop().timer_count(); }));
  state.counters["children"] = static_cast<double>(n);
  sup.stop();
}

// ------------------------------------------------------------------ the 200 MB parent

void bm_big_restart(benchmark::State& state) {
  ensure_ballast();
  bm_restart_supervised(state);
  state.counters["ballast_mb"] = static_cast<double>(ballast().size() >> 20);
}

void bm_big_fork_waitpid(benchmark::State& state) {
  ensure_ballast();
  bm_fork_waitpid(state);
  state.counters["ballast_mb"] = static_cast<double>(ballast().size() >> 20);
}

}  // namespace

BENCHMARK(bm_restart_supervised)->Name("restart/supervised")->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(bm_fork_waitpid)->Name("restart/fork_waitpid")->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(bm_launch_exec)->Name("launch/exec/fds")->Arg(0)->Arg(3000)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(bm_launch_posix_spawn)->Name("launch/posix_spawn/fds")->Arg(0)->Arg(3000)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(bm_rt_send_get)->Name("rt/send_get/64")->UseRealTime();
BENCHMARK(bm_rt_socketpair)->Name("rt/socketpair/64")->UseRealTime();
BENCHMARK(bm_rt_channel)->Name("rt/channel/64")->UseRealTime();
BENCHMARK(bm_pipelined_send_get)->Name("pipelined/send_get")->UseRealTime();
BENCHMARK(bm_pipelined_socketpair)->Name("pipelined/socketpair")->UseRealTime();
BENCHMARK(bm_lifecycle)->Name("lifecycle")->Arg(1)->Arg(100)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bm_lifecycle)->Name("lifecycle")->Arg(1000)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bm_lifecycle_many)->Name("lifecycle_many")->Arg(100)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bm_lifecycle_many)->Name("lifecycle_many")->Arg(1000)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bm_idle)->Name("idle/children")->Arg(100)->Iterations(1)->Repetitions(1)->UseRealTime()->Unit(benchmark::kSecond);
// Last: the ballast stays allocated for the rest of the run.
BENCHMARK(bm_big_restart)->Name("big_parent/restart/supervised")->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(bm_big_fork_waitpid)->Name("big_parent/restart/fork_waitpid")->UseRealTime()->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
