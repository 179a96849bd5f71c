// cgroup v2 mechanics: find the hierarchy, create / kill / watch / remove one cgroup. See
// cgroup.hpp.
#include "procsup/supervisor/cgroup.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <algorithm>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>

#include "procsup/sys/error.hpp"

namespace procsup {
namespace {

using sys::errno_text;

// The whole of a small cgroupfs file (they are read with one read at offset 0).
std::optional<std::string> slurp_fd(int fd) {
  std::string out;
  char buf[4096];
  off_t at = 0;
  for (;;) {
    const ssize_t n = sys::retry_eintr([&] { return ::pread(fd, buf, sizeof buf, at); });
    if (n < 0) return std::nullopt;
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
    at += n;
  }
}

std::optional<std::string> slurp(const std::string& file) {
  sys::unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  return slurp_fd(fd.get());
}

std::optional<std::uint64_t> key_in(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string k;
  std::uint64_t v = 0;
  while (in >> k >> v)
    if (k == key) return v;
  return std::nullopt;
}

// The directories directly below `dir` (cgroups), or empty.
std::vector<std::string> subdirs(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    if (e->d_type == DT_DIR) out.push_back(dir + "/" + e->d_name);
  }
  ::closedir(d);
  return out;
}

}  // namespace

bool cgroup_host::has_controller(const std::string& name) const {
  std::istringstream in(controllers);
  std::string c;
  while (in >> c)
    if (c == name) return true;
  return false;
}

namespace {

struct mount_entry {
  std::string fstype, root, mountpoint, superopts;
};

// The mounts of cgroup filesystems, from /proc/self/mountinfo:
// "id parent major:minor root mountpoint options ... - fstype source superopts".
std::vector<mount_entry> cgroup_mounts() {
  std::vector<mount_entry> out;
  std::ifstream mi("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mi, line)) {
    const auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    mount_entry m;
    std::string source;
    std::istringstream post(line.substr(dash + 3));
    post >> m.fstype >> source >> m.superopts;
    if (m.fstype != "cgroup" && m.fstype != "cgroup2") continue;
    std::istringstream pre(line.substr(0, dash));
    std::string id, parent, dev;
    pre >> id >> parent >> dev >> m.root >> m.mountpoint;
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace

bool cgroup_v1_has(const std::string& controller) {
  for (const auto& m : cgroup_mounts()) {
    if (m.fstype != "cgroup") continue;
    std::istringstream o(m.superopts);
    std::string opt;
    while (std::getline(o, opt, ','))
      if (opt == controller) return true;
  }
  return false;
}

std::optional<cgroup_host> find_cgroup_host() {
  cgroup_host h;
  for (const auto& m : cgroup_mounts()) {
    if (m.fstype != "cgroup2") continue;
    // A bind mount of a subtree (root != "/") is not the hierarchy's top: keep looking.
    if (m.root != "/" && !h.mount.empty()) continue;
    h.mount = m.mountpoint;
    if (m.root == "/") break;
  }
  if (h.mount.empty()) return std::nullopt;
  std::string line;
  std::ifstream cg("/proc/self/cgroup");
  bool found = false;
  while (std::getline(cg, line)) {
    if (line.rfind("0::", 0) == 0) {
      h.own = line.substr(3);
      found = true;
      break;
    }
  }
  if (!found || h.own.empty()) return std::nullopt;
  // " (deleted)": our cgroup was removed under us; nothing to build on.
  if (h.own.find(" (deleted)") != std::string::npos) return std::nullopt;
  if (auto c = slurp(h.own_dir() + "/cgroup.controllers")) h.controllers = *c;
  return h;
}

std::optional<cgroup> cgroup::open(const std::string& path, std::string& error) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    error = "cannot create cgroup " + path + ": " + errno_text(errno);
    return std::nullopt;
  }
  if (::access((path + "/cgroup.procs").c_str(), W_OK) != 0) {
    error = "cannot use cgroup " + path + ": cgroup.procs: " + errno_text(errno);
    return std::nullopt;
  }
  return cgroup(path);
}

struct cgroup::kept_files {
  // A file of the cgroup opened at its first read and kept. `missing`: it does not exist here
  // (no such controller), so it is not looked up again; any other failure (EMFILE) is retried
  // at the next read.
  struct kept_file {
    explicit kept_file(const char* n) : name(n) {}
    const char* name;
    sys::unique_fd fd;
    bool missing = false;
  };

  std::mutex mu;  // guards the opening (reads go through pread on the fd: no shared offset)
  kept_file events{"cgroup.events"};
  kept_file cpu_stat{"cpu.stat"};
  kept_file memory_current{"memory.current"};
  kept_file memory_events{"memory.events"};
  kept_file procs{"cgroup.procs"};
  bool procs_writable = false;  // procs.fd was opened O_RDWR by procs_fd(): the launcher writes to it

  // The fd of `f`, opened now if it is not yet; -1 if it cannot be (errno set).
  int get(const std::string& dir, kept_file& f) {
    std::lock_guard lk(mu);
    if (f.fd || f.missing) return f.fd.get();
    f.fd.reset(::open((dir + "/" + f.name).c_str(), O_RDONLY | O_CLOEXEC));
    if (!f.fd && errno == ENOENT) f.missing = true;
    return f.fd.get();
  }
};

cgroup::cgroup(std::string path) : path_(std::move(path)), files_(std::make_unique<kept_files>()) {}
cgroup::cgroup(cgroup&&) noexcept = default;
cgroup& cgroup::operator=(cgroup&&) noexcept = default;
cgroup::~cgroup() = default;

namespace {

// A small flat-keyed or single-value file read through a kept fd: one pread at offset 0 into a
// buffer on the stack (cpu.stat, the largest, is a few hundred bytes). nullopt when unreadable.
std::optional<std::string> pread_small(int fd) {
  if (fd < 0) return std::nullopt;
  char buf[2048];
  const ssize_t n = sys::retry_eintr([&] { return ::pread(fd, buf, sizeof buf, 0); });
  if (n < 0) return std::nullopt;
  if (static_cast<std::size_t>(n) < sizeof buf) return std::string(buf, static_cast<std::size_t>(n));
  return slurp_fd(fd);  // larger than expected: the whole of it
}

std::optional<std::uint64_t> number_in(const std::optional<std::string>& text) {
  if (!text || text->empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text->c_str(), &end, 10);
  if (errno != 0 || end == text->c_str()) return std::nullopt;
  return v;
}

}  // namespace

int cgroup::dir_fd() {
  if (!dir_) dir_.reset(::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return dir_.get();
}

int cgroup::procs_fd() {
  // Opened read-write where it can be, and kept as the fd pids() reads too: the stop (signal())
  // and every exit read cgroup.procs, and a path walk through cgroupfs per instance at the
  // stop was the main part of what cgroups added to stopping 1,000 instances (issue 17).
  {
    std::lock_guard lk(files_->mu);
    if (files_->procs_writable) return files_->procs.fd.get();
    if (!files_->procs.fd) {
      files_->procs.fd.reset(::open((path_ + "/cgroup.procs").c_str(), O_RDWR | O_CLOEXEC));
      files_->procs_writable = static_cast<bool>(files_->procs.fd);
      if (files_->procs_writable) return files_->procs.fd.get();
    }
  }
  // Read-only already (a read came first) or no read-write open: a write-only fd of its own.
  if (!procs_) procs_.reset(::open((path_ + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
  return procs_.get();
}

int cgroup::events_fd() { return files_->get(path_, files_->events); }

bool cgroup::tracks_memory() const {
  if (!tracks_memory_) tracks_memory_ = ::access((path_ + "/memory.events").c_str(), F_OK) == 0;
  return *tracks_memory_;
}

bool cgroup::populated() const {
  auto text = pread_small(files_->get(path_, files_->events));
  if (!text) return false;
  return key_in(*text, "populated").value_or(0) != 0;
}

namespace {

// The pids in cgroup.procs text (one a line).
void parse_pids(const char* p, const char* end, std::vector<pid_t>& out) {
  while (p < end) {
    while (p < end && (*p < '0' || *p > '9')) ++p;
    long v = 0;
    while (p < end && *p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
    if (v > 0) out.push_back(static_cast<pid_t>(v));
  }
}

}  // namespace

std::vector<pid_t> cgroup::pids() const {
  std::vector<pid_t> out;
  const int fd = files_->get(path_, files_->procs);
  if (fd < 0) return out;
  // One pread at offset 0 (the kernel starts the list over) into a stack buffer: an instance's
  // cgroup holds a few processes, so the list is a few lines. The stop and every exit read it;
  // reading until EOF took a second read each time. A longer list: the whole of it.
  char buf[1024];
  const ssize_t n = sys::retry_eintr([&] { return ::pread(fd, buf, sizeof buf, 0); });
  if (n < 0) return out;
  if (static_cast<std::size_t>(n) < sizeof buf) {
    parse_pids(buf, buf + n, out);
    return out;
  }
  auto text = slurp_fd(fd);  // one pid a line, any length
  if (text) parse_pids(text->data(), text->data() + text->size(), out);
  return out;
}

std::size_t cgroup::signal(int sig) const {
  std::size_t n = 0;
  for (pid_t p : pids())
    if (p > 0 && ::kill(p, sig) == 0) ++n;
  return n;
}

bool cgroup::kill_for_good() const {
  if (!kill_) kill_.reset(::open((path_ + "/cgroup.kill").c_str(), O_WRONLY | O_CLOEXEC));
  if (kill_ && sys::retry_eintr([&] { return ::write(kill_.get(), "1", 1); }) == 1) return true;
  return kill();
}

bool cgroup::kill() const {
  if (!populated()) return true;
  // One SIGKILL per process; a process forking meanwhile is caught by the next pass (bounded:
  // a fork bomb outpacing us is what pids.max is for; a stop also waits for the cgroup to be
  // empty and kills again at its timeout).
  bool any = false;
  for (int round = 0; round < 3; ++round) {
    const auto ps = pids();
    if (ps.empty()) return true;
    for (pid_t p : ps)
      if (p > 0 && ::kill(p, SIGKILL) == 0) any = true;
  }
  return any;
}

cgroup_usage cgroup::usage() const {
  cgroup_usage u;
  if (auto text = pread_small(files_->get(path_, files_->cpu_stat)))
    if (auto v = key_in(*text, "usage_usec")) u.cpu_seconds = static_cast<double>(*v) / 1e6;
  u.memory_bytes = number_in(pread_small(files_->get(path_, files_->memory_current)));
  u.oom_kills = oom_kills();
  // Processes, as cgroup.procs lists them (pids.current would count threads too).
  u.pids = pids().size();
  return u;
}

std::uint64_t cgroup::oom_kills() const {
  auto text = pread_small(files_->get(path_, files_->memory_events));
  return text ? key_in(*text, "oom_kill").value_or(0) : 0;
}

std::string cgroup::write(const std::string& file, const std::string& value) const {
  const std::string full = path_ + "/" + file;
  sys::unique_fd fd(::open(full.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return "cannot open " + full + ": " + errno_text(errno);
  if (sys::retry_eintr([&] { return ::write(fd.get(), value.data(), value.size()); }) !=
      static_cast<ssize_t>(value.size()))
    return "cannot write \"" + value + "\" to " + full + ": " + errno_text(errno);
  return {};
}

bool cgroup::remove() const { return ::rmdir(path_.c_str()) == 0 || errno == ENOENT; }

std::optional<std::uint64_t> read_cgroup_key(const std::string& file, const std::string& key) {
  auto text = slurp(file);
  if (!text) return std::nullopt;
  return key_in(*text, key);
}

std::vector<pid_t> sweep_cgroup_tree(const std::string& dir, int wait_ms, std::string& error) {
  std::vector<pid_t> found;
  for (const auto& sub : subdirs(dir)) {
    auto more = sweep_cgroup_tree(sub, wait_ms, error);
    found.insert(found.end(), more.begin(), more.end());
  }
  std::string err;
  auto cg = cgroup::open(dir, err);
  if (!cg) {
    if (error.empty()) error = err;
    return found;
  }
  const auto alive = cg->pids();
  found.insert(found.end(), alive.begin(), alive.end());
  if (cg->populated()) {
    cg->kill_for_good();
    // populated changes to 0 once the last process has exited (a zombie does not count).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    while (cg->populated()) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) break;
      pollfd p{cg->events_fd(), POLLPRI, 0};
      if (p.fd < 0) break;
      sys::retry_eintr([&] { return ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 50))); });
    }
  }
  if (!cg->remove() && error.empty()) error = "cannot remove cgroup " + dir + ": " + errno_text(errno);
  return found;
}

}  // namespace procsup
