// The parts of a scrape inside procsup, with 1,000 instances (Google Benchmark): rendering the
// exposition text from a snapshot, reading procsup's own process_* metrics, and one /proc usage
// read (what an instance without a cgroup costs when its cached reading is refreshed).
#include <unistd.h>

#include <benchmark/benchmark.h>

#include "procsup/daemon/metrics.hpp"

namespace {

using namespace procsup;
using namespace procsup::daemon;

metrics_snapshot snapshot(int n) {
  metrics_snapshot s;
  for (int i = 0; i < n; ++i) {
    instance_sample m;
    m.program = "worker";
    m.index = i;
    m.id = "worker:" + std::to_string(i);
    m.state = process_state::running;
    m.up = true;
    m.restarts = i % 7;
    m.start_time_seconds = 1.7e9 + i * 0.001;
    m.usage = {12.34 + i, 1.5e6 + i * 4096, 1};
    s.instances.push_back(std::move(m));
    if (i % 10 == 0) s.exits[m.id][1] = 3;
  }
  return s;
}

void bm_render(benchmark::State& st) {
  const auto s = snapshot(static_cast<int>(st.range(0)));
  const auto self = process_metrics::read_self();
  std::size_t bytes = 0;
  for (auto _ : st) {
    auto text = render_metrics(s, self);
    bytes = text.size();
    benchmark::DoNotOptimize(text);
  }
  st.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(bm_render)->Arg(1000)->Unit(benchmark::kMicrosecond);

void bm_read_self(benchmark::State& st) {
  for (auto _ : st) benchmark::DoNotOptimize(process_metrics::read_self());
}
BENCHMARK(bm_read_self)->Unit(benchmark::kMicrosecond);

void bm_read_proc_usage(benchmark::State& st) {
  for (auto _ : st) benchmark::DoNotOptimize(read_proc_usage(::getpid()));
}
BENCHMARK(bm_read_proc_usage)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
