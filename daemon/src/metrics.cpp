// The counters behind /metrics (fed by lifecycle events on the loop thread) and the Prometheus
// text exposition format, written directly: one pass over the snapshot, no registry (a scrape
// of 1,000 instances must stay well under a millisecond of procsup's CPU).
#include "procsup/daemon/metrics.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <mutex>

#include <fmt/format.h>

namespace procsup::daemon {

const char* to_string(exit_cause_kind k) noexcept {
  switch (k) {
    case exit_cause_kind::exit: return "exit";
    case exit_cause_kind::signal: return "signal";
    case exit_cause_kind::hang: return "hang";
    case exit_cause_kind::unhealthy: return "unhealthy";
    case exit_cause_kind::oom: return "oom";
  }
  return "exit";
}

// The texts come from unit::exit_cause() and describe_wait_status() in the supervisor layer.
exit_cause_kind classify_exit_cause(std::string_view cause) noexcept {
  auto starts = [&](std::string_view p) { return cause.substr(0, p.size()) == p; };
  if (starts("killed by the OOM killer")) return exit_cause_kind::oom;
  if (starts("hung:")) return exit_cause_kind::hang;
  if (starts("killed by ")) return exit_cause_kind::signal;
  // Killed for not becoming ready in time, or for breaking the worker protocol.
  if (starts("did not become ready") || starts("its channel") || starts("it replied") || starts("it sent"))
    return exit_cause_kind::unhealthy;
  return exit_cause_kind::exit;  // "exited with code N", init failures, handle() threw
}

void latency_histogram::observe(double seconds) {
  ++count;
  sum += seconds;
  for (std::size_t i = 0; i < bounds.size(); ++i)
    if (seconds <= bounds[i]) {
      ++buckets[i];
      return;
    }
  // Above the last bound: only in +Inf (count).
}

void metrics_recorder::on_event(const lifecycle_event& e) {
  switch (e.kind) {
    case event_kind::exited:
    case event_kind::crashed:
      ++exits_[e.process_id][static_cast<std::size_t>(classify_exit_cause(e.cause))];
      died_[e.process_id] = e.time;
      break;
    case event_kind::spawned:
      if (auto it = died_.find(e.process_id); it != died_.end()) {
        latency_.observe(std::max(0.0, std::chrono::duration<double>(e.time - it->second).count()));
        died_.erase(it);
      }
      break;
    case event_kind::stopped:
    case event_kind::gave_up:
      died_.erase(e.process_id);  // no new instance follows
      break;
    default: break;
  }
}

void metrics_recorder::forget(const std::string& id) {
  exits_.erase(id);
  died_.erase(id);
}

void usage_cache::fill(std::vector<instance_sample>& instances, std::chrono::steady_clock::time_point now) {
  for (auto& [id, e] : entries_) e.seen = false;
  for (auto& i : instances) {
    if (i.pid == 0 && !i.cgroup) continue;  // nothing runs: nothing to show
    auto& e = entries_[i.id];
    e.seen = true;
    if (e.pid != i.pid || e.at == std::chrono::steady_clock::time_point{} || now - e.at >= usage_max_age) {
      if (i.cgroup) {
        const auto u = i.cgroup->usage();
        e.sample = {};
        e.sample.pids = static_cast<double>(u.pids);
        if (u.cpu_seconds) e.sample.cpu_seconds = *u.cpu_seconds;
        if (u.memory_bytes) e.sample.memory_bytes = static_cast<double>(*u.memory_bytes);
      } else {
        e.sample = read_proc_usage(i.pid);
      }
      e.pid = i.pid;
      e.at = now;
    }
    i.usage = e.sample;
  }
  std::erase_if(entries_, [](const auto& kv) { return !kv.second.seen; });
}

namespace {

// A small file of /proc read with one read(2): ifstream costs several times more.
std::size_t read_small(const char* path, char* buf, std::size_t size) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const ssize_t n = ::read(fd, buf, size - 1);
  ::close(fd);
  const std::size_t len = n > 0 ? static_cast<std::size_t>(n) : 0;
  buf[len] = '\0';
  return len;
}

void append_number(std::string& out, double v) {
  if (std::isnan(v)) out += "NaN";
  else if (std::isinf(v)) out += v > 0 ? "+Inf" : "-Inf";
  else if (v == std::floor(v) && std::fabs(v) < 1e15) fmt::format_to(std::back_inserter(out), "{}", static_cast<long long>(v));
  else fmt::format_to(std::back_inserter(out), "{}", v);
}

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

void append_label_value(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
}

usage_sample read_proc_usage(pid_t pid) {
  usage_sample u;
  if (pid <= 0) return u;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  char buf[1024];
  if (read_small(path, buf, sizeof buf) == 0) return u;
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return u;
  unsigned long long ut = 0, st = 0;
  long long rss = 0;
  // After ")": state(3) ... utime(14) stime(15) ... rss(24), in pages.
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %*u %*u %lld",
                  &ut, &st, &rss) == 3) {
    u.cpu_seconds = static_cast<double>(ut + st) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    u.memory_bytes = static_cast<double>(rss) * static_cast<double>(::sysconf(_SC_PAGESIZE));
    u.pids = 1;
  }
  return u;
}

process_metrics process_metrics::read_self() {
  process_metrics m;
  rusage ru{};
  if (::getrusage(RUSAGE_SELF, &ru) == 0)
    m.cpu_seconds = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                    static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  char buf[4096];
  if (read_small("/proc/self/statm", buf, sizeof buf) > 0) {
    unsigned long long size = 0, resident = 0;
    if (std::sscanf(buf, "%llu %llu", &size, &resident) == 2) {
      m.virtual_bytes = static_cast<double>(size) * page;
      m.resident_bytes = static_cast<double>(resident) * page;
    }
  }
  // Field 22 of /proc/self/stat: start time in ticks after boot; btime in /proc/stat: the boot.
  if (read_small("/proc/self/stat", buf, sizeof buf) > 0) {
    if (const char* p = std::strrchr(buf, ')')) {
      unsigned long long start = 0;
      int threads = 0;
      // After ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
      // utime stime cutime cstime priority nice num_threads(20) itrealvalue starttime(22).
      if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %d %*d %llu",
                      &threads, &start) == 2) {
        m.threads = threads;
        char stat[16384];  // /proc/stat grows with the CPU count
        if (read_small("/proc/stat", stat, sizeof stat) > 0)
          if (const char* b = std::strstr(stat, "\nbtime ")) {
            m.start_time_seconds = static_cast<double>(std::strtoull(b + 7, nullptr, 10)) + static_cast<double>(start) / ticks;
          }
      }
    }
  }
  // Listing /proc/self/fd costs ~1 µs per fd in the kernel (a dentry each), and procsup holds
  // ~5 per instance: 5 ms a scrape with 1,000 instances. Counted at most every 10 s.
  static std::mutex fds_mu;
  static std::chrono::steady_clock::time_point fds_at{};
  static double fds = 0;
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lk(fds_mu);
  if (fds_at == std::chrono::steady_clock::time_point{} || now - fds_at >= std::chrono::seconds(10)) {
    if (DIR* d = ::opendir("/proc/self/fd")) {
      int n = 0;
      while (dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') ++n;
      ::closedir(d);
      fds = n - 1;  // the directory's own fd
      fds_at = now;
    }
  }
  m.open_fds = fds;
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) m.max_fds = static_cast<double>(rl.rlim_cur);
  return m;
}

std::string render_metrics(const metrics_snapshot& s, const process_metrics& self) {
  std::string out;
  out.reserve(4096 + s.instances.size() * 1100);
  auto sample = [&out](std::string_view name, const std::string& labels, double v) {
    out += name;
    out += labels;
    out += ' ';
    append_number(out, v);
    out += '\n';
  };
  static const std::string none;

  family(out, "procsup_up", "gauge", "1 while procsup serves this endpoint.");
  sample("procsup_up", none, 1);
  family(out, "procsup_gave_up", "gauge",
         "1 once the top supervisor gave up (restart intensity exceeded): procsup exits with code 3.");
  sample("procsup_gave_up", none, s.gave_up ? 1 : 0);
  family(out, "procsup_shutting_down", "gauge", "1 while procsup stops its programs.");
  sample("procsup_shutting_down", none, s.shutting_down ? 1 : 0);

  // Per instance: `{program="...",instance="N"` once, closed by each sample.
  const auto& in = s.instances;
  std::vector<std::string> labels;
  labels.reserve(in.size());
  for (const auto& i : in) {
    std::string l = "{program=\"";
    append_label_value(l, i.program);
    l += "\",instance=\"";
    fmt::format_to(std::back_inserter(l), "{}", i.index);
    l += '"';
    labels.push_back(std::move(l));
  }
  auto each = [&](std::string_view name, std::string_view type, std::string_view help, auto&& value) {
    family(out, name, type, help);
    for (std::size_t k = 0; k < in.size(); ++k) {
      const double v = value(in[k]);
      if (std::isnan(v)) continue;  // not known for this instance now
      out += name;
      out += labels[k];
      out += "} ";
      append_number(out, v);
      out += '\n';
    }
  };
  each("procsup_program_up", "gauge", "1 while the instance has a live process.",
       [](const instance_sample& i) { return i.up ? 1.0 : 0.0; });
  each("procsup_program_ready", "gauge", "1 while the instance is running and ready.",
       [](const instance_sample& i) { return i.state == process_state::running ? 1.0 : 0.0; });
  each("procsup_program_restarts_total", "counter", "Restarts of the instance since procsup started it.",
       [](const instance_sample& i) { return static_cast<double>(i.restarts); });
  each("procsup_program_start_time_seconds", "gauge", "Start of the running process, seconds since the epoch.",
       [](const instance_sample& i) { return i.start_time_seconds; });
  each("procsup_program_cpu_seconds_total", "counter",
       "CPU time of the instance (its cgroup, else its main process), seconds; read at most every 10 s.",
       [](const instance_sample& i) { return i.usage.cpu_seconds; });
  each("procsup_program_memory_bytes", "gauge",
       "Memory of the instance (cgroup memory.current, else the resident set of its main process); read at most every 10 s.",
       [](const instance_sample& i) { return i.usage.memory_bytes; });
  each("procsup_program_pids", "gauge", "Processes of the instance; read at most every 10 s.",
       [](const instance_sample& i) { return i.usage.pids; });

  family(out, "procsup_program_state", "gauge", "The instance's state, one-hot.");
  static constexpr process_state states[] = {process_state::starting, process_state::running, process_state::stopping,
                                             process_state::stopped, process_state::failed};
  for (std::size_t k = 0; k < in.size(); ++k) {
    for (process_state st : states) {
      out += "procsup_program_state";
      out += labels[k];
      out += ",state=\"";
      out += to_string(st);
      out += in[k].state == st ? "\"} 1\n" : "\"} 0\n";
    }
  }

  family(out, "procsup_program_exits_total", "counter",
         "Ends of the instance's processes by cause (exit, signal, hang, unhealthy, oom).");
  for (std::size_t k = 0; k < in.size(); ++k) {
    auto it = s.exits.find(in[k].id);
    if (it == s.exits.end()) continue;
    for (std::size_t c = 0; c < it->second.size(); ++c) {
      if (it->second[c] == 0) continue;
      out += "procsup_program_exits_total";
      out += labels[k];
      out += ",cause=\"";
      out += to_string(static_cast<exit_cause_kind>(c));
      out += "\"} ";
      append_number(out, static_cast<double>(it->second[c]));
      out += '\n';
    }
  }

  family(out, "procsup_restart_latency_seconds", "histogram",
         "From a process's death notice to its successor's exec, backoff delay included.");
  std::uint64_t cumulative = 0;
  const auto& h = s.restart_latency;
  for (std::size_t i = 0; i < h.bounds.size(); ++i) {
    cumulative += h.buckets[i];
    fmt::format_to(std::back_inserter(out), "procsup_restart_latency_seconds_bucket{{le=\"{}\"}} {}\n", h.bounds[i],
                   cumulative);
  }
  fmt::format_to(std::back_inserter(out), "procsup_restart_latency_seconds_bucket{{le=\"+Inf\"}} {}\n", h.count);
  out += "procsup_restart_latency_seconds_sum ";
  append_number(out, h.sum);
  fmt::format_to(std::back_inserter(out), "\nprocsup_restart_latency_seconds_count {}\n", h.count);

  family(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
  sample("process_cpu_seconds_total", none, self.cpu_seconds);
  family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  sample("process_resident_memory_bytes", none, self.resident_bytes);
  family(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
  sample("process_virtual_memory_bytes", none, self.virtual_bytes);
  family(out, "process_open_fds", "gauge", "Number of open file descriptors.");
  sample("process_open_fds", none, self.open_fds);
  family(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
  sample("process_max_fds", none, self.max_fds);
  family(out, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
  sample("process_start_time_seconds", none, self.start_time_seconds);
  family(out, "process_threads", "gauge", "Number of OS threads in the process.");
  sample("process_threads", none, self.threads);
  return out;
}

}  // namespace procsup::daemon
