// The counters behind /metrics (fed by lifecycle events on the loop thread) and the Prometheus
// text exposition format, written directly: one pass over the snapshot, no registry (a scrape
// of 1,000 instances must stay well under a millisecond of procsup's CPU).
#include "procsup/daemon/metrics.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
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
        if (e.pid != i.pid || !e.stat_fd) {
          char path[64];
          std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(i.pid));
          e.stat_fd.reset(i.pid > 0 ? ::open(path, O_RDONLY | O_CLOEXEC) : -1);
        }
        e.sample = read_proc_usage_fd(e.stat_fd.get());
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
  sys::unique_fd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return 0;
  const ssize_t n = ::read(fd.get(), buf, size - 1);
  const std::size_t len = n > 0 ? static_cast<std::size_t>(n) : 0;
  buf[len] = '\0';
  return len;
}

// The same through a kept fd: one pread at offset 0 (a /proc file is generated afresh on it).
std::size_t pread_small(int fd, char* buf, std::size_t size) {
  const ssize_t n = fd < 0 ? -1 : ::pread(fd, buf, size - 1, 0);
  const std::size_t len = n > 0 ? static_cast<std::size_t>(n) : 0;
  buf[len] = '\0';
  return len;
}

// A file of /proc/self kept open for this process (re-opened in a forked copy, whose "self"
// is another directory). One thread at a time: read_self's callers hold self_mu.
class self_file {
 public:
  explicit self_file(const char* path) : path_(path) {}
  int fd() {
    if (owner_ != ::getpid() || !fd_) {
      (void)fd_.release();  // a forked copy's number may be another file by now: not ours to close
      fd_.reset(::open(path_, O_RDONLY | O_CLOEXEC));
      owner_ = ::getpid();
    }
    return fd_.get();
  }

 private:
  const char* path_;
  sys::unique_fd fd_;
  pid_t owner_ = 0;
};

// Skips `n` space-separated fields of /proc/PID/stat text; nullptr when it runs out.
const char* skip_fields(const char* p, int n) {
  for (; n > 0; --n) {
    while (*p == ' ') ++p;
    if (*p == '\0') return nullptr;
    while (*p != ' ' && *p != '\0') ++p;
  }
  while (*p == ' ') ++p;
  return *p == '\0' ? nullptr : p;
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

namespace {

usage_sample parse_proc_stat(const char* buf) {
  usage_sample u;
  const char* p = std::strrchr(buf, ')');  // the command may hold spaces and parentheses
  if (p == nullptr) return u;
  // After ")": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
  // utime(14) stime(15) cutime cstime priority nice num_threads itrealvalue starttime vsize
  // rss(24), in pages. Parsed by hand: sscanf's %*d skipping cost more than the read.
  const char* f = skip_fields(p + 1, 11);  // to utime
  if (f == nullptr) return u;
  char* end = nullptr;
  const unsigned long long ut = std::strtoull(f, &end, 10);
  const unsigned long long st = std::strtoull(end, &end, 10);
  f = skip_fields(end, 8);  // cutime .. vsize
  if (f == nullptr) return u;
  const long long rss = std::strtoll(f, &end, 10);
  if (end == f) return u;
  static const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  static const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  u.cpu_seconds = static_cast<double>(ut + st) / ticks;
  u.memory_bytes = static_cast<double>(rss) * page;
  u.pids = 1;
  return u;
}

}  // namespace

usage_sample read_proc_usage(pid_t pid) {
  if (pid <= 0) return {};
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  char buf[1024];
  if (read_small(path, buf, sizeof buf) == 0) return {};
  return parse_proc_stat(buf);
}

usage_sample read_proc_usage_fd(int stat_fd) {
  char buf[1024];
  if (pread_small(stat_fd, buf, sizeof buf) == 0) return {};
  return parse_proc_stat(buf);
}

namespace {

// The boot time (btime of /proc/stat), read once: it does not change, and /proc/stat (a line
// per CPU and per interrupt) is the most expensive file read_self would read otherwise.
double boot_time_seconds() {
  static const double btime = [] {
    char stat[16384];  // /proc/stat grows with the CPU count
    if (read_small("/proc/stat", stat, sizeof stat) > 0)
      if (const char* b = std::strstr(stat, "\nbtime ")) return static_cast<double>(std::strtoull(b + 7, nullptr, 10));
    return 0.0;
  }();
  return btime;
}

// Open fds without listing them: since Linux 6.2, stat(/proc/PID/fd) gives their count as st_size.
// Before (st_size 0), /proc/self/fd is listed, which costs ~1 us per fd in the kernel (a dentry
// each; procsup holds ~5 per instance: 5 ms with 1,000 instances), so at most every 10 s.
double count_open_fds() {
  struct stat st {};
  if (::stat("/proc/self/fd", &st) == 0 && st.st_size > 0) return static_cast<double>(st.st_size);
  static std::chrono::steady_clock::time_point listed_at{};
  static double listed = 0;
  const auto now = std::chrono::steady_clock::now();
  if (listed_at == std::chrono::steady_clock::time_point{} || now - listed_at >= std::chrono::seconds(10)) {
    if (DIR* d = ::opendir("/proc/self/fd")) {
      int n = 0;
      while (dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') ++n;
      ::closedir(d);
      listed = n - 1;  // the directory's own fd
      listed_at = now;
    }
  }
  return listed;
}

}  // namespace

process_metrics process_metrics::read_self() {
  static std::mutex self_mu;  // the kept fds and the fd count's cache
  static self_file statm_file("/proc/self/statm");
  static self_file stat_file("/proc/self/stat");
  std::lock_guard lk(self_mu);
  process_metrics m;
  rusage ru{};
  if (::getrusage(RUSAGE_SELF, &ru) == 0)
    m.cpu_seconds = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                    static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  char buf[4096];
  if (pread_small(statm_file.fd(), buf, sizeof buf) > 0) {
    unsigned long long size = 0, resident = 0;
    if (std::sscanf(buf, "%llu %llu", &size, &resident) == 2) {
      m.virtual_bytes = static_cast<double>(size) * page;
      m.resident_bytes = static_cast<double>(resident) * page;
    }
  }
  // Field 22 of /proc/self/stat: start time in ticks after boot; btime in /proc/stat: the boot.
  if (pread_small(stat_file.fd(), buf, sizeof buf) > 0) {
    if (const char* p = std::strrchr(buf, ')')) {
      // After ")": state(3) ... num_threads(20) itrealvalue starttime(22).
      if (const char* f = skip_fields(p + 1, 17)) {
        char* end = nullptr;
        m.threads = static_cast<int>(std::strtol(f, &end, 10));
        if (const char* g = skip_fields(end, 1)) {
          const unsigned long long start = std::strtoull(g, nullptr, 10);
          m.start_time_seconds = boot_time_seconds() + static_cast<double>(start) / ticks;
        }
      }
    }
  }
  m.open_fds = count_open_fds();
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
