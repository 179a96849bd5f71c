// The cost of a Prometheus scrape of procsup (issue 16: < 1 ms of procsup's CPU per scrape with
// 1,000 instances). Starts the real procsup with N instances of /bin/sleep and http on loopback,
// waits until they all run, then GETs /metrics M times back to back and reads procsup's CPU time
// (every thread's, /proc/PID/task/*/schedstat) before and after; the same wall time idle is
// measured after and subtracted. Also /status and /healthz (the fixed cost of a request), for comparison.
//
//   bench_scrape --procsup build/release/daemon/procsup [--instances 1000] [--scrapes 200] [--cgroups true|false]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/helpers/http_client.hpp"

namespace {

// CPU time of every thread of `pid`, from /proc/PID/task/*/schedstat (nanoseconds on CPU: the
// tick-based utime/stime of /proc/PID/stat are 10 ms coarse, too coarse for one scrape).
double cpu_seconds(pid_t pid) {
  double total = 0;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::ifstream f(e.path() / "schedstat");
    unsigned long long ns = 0;
    if (f >> ns) total += static_cast<double>(ns) / 1e9;
  }
  return total;
}

std::string arg(int argc, char** argv, const std::string& name, const std::string& def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  return def;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace std::chrono;
  const std::string procsup = arg(argc, argv, "--procsup", "build/release/daemon/procsup");
  const int instances = std::stoi(arg(argc, argv, "--instances", "1000"));
  const int scrapes = std::stoi(arg(argc, argv, "--scrapes", "200"));
  const std::string cgroups = arg(argc, argv, "--cgroups", "true");

  char tmpl[] = "/tmp/procsup-bench-scrape-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string cfg = dir + "/bench.toml";
  std::ofstream(cfg) << "[supervisor]\nsocket = \"" << dir << "/ctl.sock\"\nhttp = \"127.0.0.1:0\"\ncgroups = " << cgroups
                     << "\n\n[[program]]\nname = \"s\"\ncommand = [\"/bin/sleep\", \"100000\"]\ninstances = " << instances
                     << "\n";
  const std::string log = dir + "/procsup.log";
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execl(procsup.c_str(), procsup.c_str(), "run", cfg.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  auto stop = [&](int code) {
    ::kill(pid, SIGTERM);
    int st = 0;
    ::waitpid(pid, &st, 0);
    std::filesystem::remove_all(dir);
    return code;
  };
  // The address from "http listening address=..." in the log, then every instance running.
  std::string addr;
  for (int i = 0; i < 600 && addr.empty(); ++i) {
    std::ifstream f(log);
    std::string line;
    while (std::getline(f, line))
      if (auto p = line.find("http listening address="); p != std::string::npos) addr = line.substr(p + 23);
    if (addr.empty()) std::this_thread::sleep_for(50ms);
  }
  if (addr.empty()) {
    std::cerr << "procsup did not start; log: " << log << "\n";
    return stop(1);
  }
  for (int i = 0;; ++i) {
    auto r = procsup::testing::http_get(addr, "/readyz");
    if (r.status == 200) break;
    if (i > 1200) {
      std::cerr << "not every instance became ready\n";
      return stop(1);
    }
    std::this_thread::sleep_for(100ms);
  }
  std::this_thread::sleep_for(1s);  // the start's log writes are done

  auto measure = [&](const std::string& target, std::size_t& bytes) {
    const double c0 = cpu_seconds(pid);
    const auto t0 = steady_clock::now();
    for (int i = 0; i < scrapes; ++i) {
      auto r = procsup::testing::http_get(addr, target);
      if (r.status != 200) {
        std::cerr << target << ": status " << r.status << "\n";
        std::exit(stop(1));
      }
      bytes = r.body.size();
    }
    const auto wall = steady_clock::now() - t0;
    const double busy = cpu_seconds(pid) - c0;
    // The same wall time idle, for what procsup spends anyway (its own timers: none when idle).
    const double i0 = cpu_seconds(pid);
    std::this_thread::sleep_for(wall);
    const double idle = cpu_seconds(pid) - i0;
    return std::make_pair((busy - idle) / scrapes * 1e3, duration<double, std::milli>(wall).count() / scrapes);
  };
  std::size_t bytes = 0;
  auto [m_cpu, m_wall] = measure("/metrics", bytes);
  std::printf("instances=%d scrapes=%d cgroups=%s\n", instances, scrapes, cgroups.c_str());
  std::printf("/metrics: %.3f ms procsup CPU per scrape, %.3f ms wall per scrape, %zu bytes\n", m_cpu, m_wall, bytes);
  auto [s_cpu, s_wall] = measure("/status", bytes);
  std::printf("/status:  %.3f ms procsup CPU per request, %.3f ms wall per request, %zu bytes\n", s_cpu, s_wall, bytes);
  // The fixed part of any request (connection, parse, one trip through the loop).
  auto [h_cpu, h_wall] = measure("/healthz", bytes);
  std::printf("/healthz: %.3f ms procsup CPU per request, %.3f ms wall per request, %zu bytes\n", h_cpu, h_wall, bytes);
  // CPU, memory and pids are re-read at most every 10 s: one scrape in ten (at a 1 s interval)
  // pays for reading them all. Measured once after the cache has expired.
  std::this_thread::sleep_for(11s);
  const double r0 = cpu_seconds(pid);
  if (procsup::testing::http_get(addr, "/metrics").status != 200) return stop(1);
  const double refresh = (cpu_seconds(pid) - r0) * 1e3;
  std::printf("/metrics refreshing every instance's usage: %.3f ms procsup CPU (once per 10 s)\n", refresh);
  std::printf("=> scraped every second: %.3f ms procsup CPU per scrape on average\n", m_cpu + (refresh - m_cpu) / 10);
  return stop(0);
}
