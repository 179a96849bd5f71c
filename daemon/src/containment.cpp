// One cgroup per program instance under procsup's own subtree; the sweep of a predecessor's
// leftovers; limits the host cannot enforce as config errors. See containment.hpp.
#include "procsup/daemon/containment.hpp"

#include <dirent.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "procsup/daemon/logging.hpp"

namespace procsup::daemon {
namespace {

// FNV-1a: a stable short name for the subtree of the procsup that owns `socket`.
std::string subtree_name(const std::string& socket) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char ch : socket) {
    h ^= ch;
    h *= 1099511628211ULL;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "procsup-%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string absolute(const std::string& path) {
  if (!path.empty() && path.front() == '/') return path;
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd) == nullptr) return path;
  return std::string(cwd) + "/" + path;
}

struct needed_controller {
  const char* controller;
  const char* what;
};

std::vector<needed_controller> controllers_for(const cgroup_limits& l) {
  std::vector<needed_controller> out;
  if (l.memory_max || l.memory_high) out.push_back({"memory", l.memory_max ? "memory" : "memory_high"});
  if (l.cpu_percent) out.push_back({"cpu", "cpu"});
  if (l.pids_max) out.push_back({"pids", "pids"});
  if (l.io_weight) out.push_back({"io", "io_weight"});
  return out;
}

std::string why_missing(const std::optional<cgroup_host>& host, const std::string& controller) {
  if (!host) return "this host has no cgroup2 filesystem mounted";
  if (cgroup_v1_has(controller)) return "this host has it on cgroup v1";
  return "it is not available to procsup's cgroup " + host->own_dir() + " (cgroup.controllers: \"" +
         [&] {
           std::string c = host->controllers;
           while (!c.empty() && (c.back() == '\n' || c.back() == ' ')) c.pop_back();
           return c;
         }() +
         "\"); delegate it to procsup (systemd: Delegate=yes)";
}

// Enables `controllers` ("+memory +pids") for the children of `dir`.
std::string enable(const std::string& dir, const std::string& controllers) {
  std::ofstream f(dir + "/cgroup.subtree_control");
  f << controllers;
  f.flush();
  if (!f) return "cannot enable " + controllers + " in " + dir + "/cgroup.subtree_control: " + std::strerror(errno);
  return {};
}

}  // namespace

std::vector<config_error> containment_errors(const config& cfg) {
  std::vector<config_error> errors;
  std::optional<cgroup_host> host;
  bool looked = false;
  for (std::size_t i = 0; i < cfg.programs.size(); ++i) {
    const auto& p = cfg.programs[i];
    if (!p.resources.any()) continue;
    if (!looked) {
      host = find_cgroup_host();
      looked = true;
    }
    const std::string key = "program[" + std::to_string(i) + "].limits";
    for (const auto& need : controllers_for(p.resources)) {
      std::string reason;
      if (!cfg.supervisor.cgroups) reason = "[supervisor] cgroups = false";
      else if (!host || !host->has_controller(need.controller)) reason = why_missing(host, need.controller);
      else if (::access(host->own_dir().c_str(), W_OK) != 0)
        reason = "procsup cannot create cgroups in " + host->own_dir() + " (run it as root, or delegate the cgroup)";
      if (reason.empty()) continue;
      errors.push_back({cfg.path, p.resources.line, p.resources.column, key + "." + need.what,
                        std::string(need.what) + " limit needs the cgroup v2 " + need.controller + " controller; " +
                            reason});
    }
  }
  return errors;
}

containment::containment(const config& cfg) {
  if (!cfg.supervisor.cgroups) {
    reason_ = "[supervisor] cgroups = false";
    return;
  }
  auto host = find_cgroup_host();
  if (!host) {
    reason_ = "no cgroup2 filesystem is mounted (or procsup has no cgroup v2)";
    return;
  }
  const std::string root = host->own_dir() + "/" + subtree_name(absolute(cfg.supervisor.socket));
  struct stat st {};
  if (::stat(root.c_str(), &st) == 0) {
    // A predecessor with the same control socket left this (it was SIGKILLed, or its host
    // crashed): what runs there is nobody's now. The socket, which we hold, makes it ours.
    std::string error;
    std::vector<std::string> subs;
    if (DIR* d = ::opendir(root.c_str())) {
      while (dirent* e = ::readdir(d))
        if (e->d_name[0] != '.' && e->d_type == DT_DIR) subs.push_back(root + "/" + e->d_name);
      ::closedir(d);
    }
    for (const auto& sub : subs) {
      auto pids = sweep_cgroup_tree(sub, 2000, error);
      swept_.insert(swept_.end(), pids.begin(), pids.end());
    }
    if (!error.empty()) log_event(spdlog::level::warn, "cgroup sweep incomplete", {{"error", error}});
  } else if (::mkdir(root.c_str(), 0755) != 0) {
    reason_ = "cannot create " + root + ": " + std::strerror(errno);
    return;
  }
  // Controllers for the limits: enabled on the way down. cgroup v2 lets a cgroup that has
  // processes enable none for its children (no internal processes), so procsup moves itself
  // into a leaf of its subtree first when its own cgroup refuses (EBUSY), as systemd advises
  // for delegated subtrees.
  std::string wanted;
  for (const auto& p : cfg.programs)
    for (const auto& need : controllers_for(p.resources))
      if (wanted.find(std::string("+") + need.controller) == std::string::npos)
        wanted += std::string(wanted.empty() ? "" : " ") + "+" + need.controller;
  if (!wanted.empty() && host->own != "/") {
    if (auto err = enable(host->own_dir(), wanted); !err.empty()) {
      std::string leaf_error;
      if (auto leaf = procsup::cgroup::open(root + "/supervisor", leaf_error)) {
        std::ofstream(root + "/supervisor/cgroup.procs") << ::getpid() << std::flush;
      }
      if (auto again = enable(host->own_dir(), wanted); !again.empty()) limit_error_ = again;
    }
  }
  if (!wanted.empty() && limit_error_.empty())
    if (auto err = enable(root, wanted); !err.empty()) limit_error_ = err;
  root_ = root;
}

std::shared_ptr<procsup::cgroup> containment::instance(const std::string& id, const cgroup_limits& limits,
                                                       std::string& error) {
  if (!active()) {
    error = reason_;
    return nullptr;
  }
  if (auto it = instances_.find(id); it != instances_.end()) return it->second;
  if (limits.any() && !limit_error_.empty()) {
    error = limit_error_;
    return nullptr;
  }
  auto cg = procsup::cgroup::open(root_ + "/p." + id, error);
  if (!cg) return nullptr;
  // Something still in it (a reload reuses the id of an instance whose leftovers linger).
  if (cg->populated()) cg->kill();
  auto set = [&](const char* file, const std::string& value) {
    if (!error.empty()) return;
    error = cg->write(file, value);
  };
  if (limits.memory_max) set("memory.max", std::to_string(*limits.memory_max));
  if (limits.memory_high) set("memory.high", std::to_string(*limits.memory_high));
  if (limits.cpu_percent) set("cpu.max", std::to_string(*limits.cpu_percent * 1000) + " 100000");
  if (limits.pids_max) set("pids.max", std::to_string(*limits.pids_max));
  if (limits.io_weight) set("io.weight", "default " + std::to_string(*limits.io_weight));
  if (!error.empty()) {
    cg->remove();
    return nullptr;
  }
  auto shared = std::make_shared<procsup::cgroup>(std::move(*cg));
  instances_[id] = shared;
  return shared;
}

std::shared_ptr<procsup::cgroup> containment::find(const std::string& id) const {
  auto it = instances_.find(id);
  return it == instances_.end() ? nullptr : it->second;
}

void containment::release(const std::string& id) {
  auto it = instances_.find(id);
  if (it == instances_.end()) return;
  it->second->kill_for_good();
  // Its processes have their SIGKILL; if they are not gone yet, the next sweep removes it.
  it->second->remove();
  instances_.erase(it);
}

std::vector<pid_t> containment::finish(int wait_ms) {
  std::vector<pid_t> left;
  if (!active()) return left;
  for (auto& [id, cg] : instances_) {
    if (!cg->populated()) continue;
    auto pids = cg->pids();
    left.insert(left.end(), pids.begin(), pids.end());
    cg->kill_for_good();
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  for (auto& [id, cg] : instances_) {
    while (cg->populated() && std::chrono::steady_clock::now() < deadline) {
      pollfd p{cg->events_fd(), POLLPRI, 0};
      if (p.fd < 0) break;
      ::poll(&p, 1, 20);
    }
    cg->remove();
  }
  instances_.clear();
  ::rmdir(root_.c_str());  // fails while procsup itself sits in root_/supervisor: that is fine
  return left;
}

}  // namespace procsup::daemon
