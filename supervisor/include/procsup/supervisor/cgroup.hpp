// Kernel containment with cgroup v2: one directory per supervised instance. Membership is set
// in the child before exec (the launcher writes its pid to cgroup.procs), so nothing the
// instance starts (setsid daemons, double forks) can leave it; cgroup.kill ends everything in
// it at once, and cgroup.events says when it is empty (pollable: EPOLLPRI).
//
// Threads: a cgroup object is used from the thread that owns the instance (the event loop);
// usage(), oom_kills(), populated() and pids() may also be called from another thread (the
// metrics' HTTP thread) at the same time.
//
// Files it reads (cgroup.events, cpu.stat, memory.current, memory.events, cgroup.procs) are
// opened at their first read and kept: every later read is one pread(fd, 0), no path walk
// through cgroupfs on the way of a restart (populated() runs at every exit of an instance) or of
// a scrape. Up to 8 fds per instance, all close-on-exec. Nothing caches the values: each call
// reads them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "procsup/sys/unique_fd.hpp"

namespace procsup {

// Where the unified (v2) hierarchy is and where this process sits in it.
struct cgroup_host {
  std::string mount;     // "/sys/fs/cgroup" or, on a hybrid host, "/sys/fs/cgroup/unified"; "" if none
  std::string own;       // this process's cgroup, relative to the mount ("/" or "/system.slice/x.service")
  std::string controllers;  // the own cgroup's cgroup.controllers ("memory pids cpu io", maybe "")
  std::string own_dir() const { return mount + (own == "/" ? "" : own); }
  bool has_controller(const std::string& name) const;
};

// Reads /proc/self/mountinfo (fstype cgroup2) and /proc/self/cgroup (the "0::" line). nullopt
// when there is no cgroup2 mount or this process has no v2 cgroup.
std::optional<cgroup_host> find_cgroup_host();
// Is `controller` ("memory") bound to a cgroup v1 hierarchy here (a hybrid host)?
bool cgroup_v1_has(const std::string& controller);

// Usage of one cgroup (and of what the kernel accounts there). Absent fields: not available
// on this host (no controller); the caller may fall back to /proc.
struct cgroup_usage {
  std::optional<std::uint64_t> memory_bytes;  // memory.current
  std::optional<double> cpu_seconds;          // cpu.stat usage_usec (always there on v2)
  std::uint64_t pids = 0;                     // processes in it (cgroup.procs lines)
  std::uint64_t oom_kills = 0;                // memory.events oom_kill (0 without memory)
};

class cgroup {
 public:
  // Creates (or adopts, when it exists) the directory `path` (absolute, inside cgroupfs).
  // nullopt + `error` (text naming the path) when it cannot be made or is no cgroup.
  static std::optional<cgroup> open(const std::string& path, std::string& error);

  cgroup(cgroup&&) noexcept;
  cgroup& operator=(cgroup&&) noexcept;
  ~cgroup();

  const std::string& path() const noexcept { return path_; }
  // cgroup.procs, opened read-write at the first call and kept (also the fd pids() reads, so
  // that a stop walks no path through cgroupfs): the launcher's child writes
  // "0" there (child_setup::cgroup_procs_fd). -1 with errno set when it cannot be opened (out
  // of fds: the launch fails and is retried, it never runs outside its cgroup).
  int procs_fd();
  // The directory itself (O_RDONLY | O_DIRECTORY), opened at the first call and kept: the
  // launcher creates the child in the cgroup with it (child_setup::cgroup_dir_fd). -1 + errno.
  int dir_fd();
  // cgroup.events, opened at the first call and kept: readable-priority (EPOLLPRI) whenever
  // "populated" changes. -1 if it cannot be opened.
  int events_fd();
  // memory.events exists (the memory controller is on for it): OOM kills can be told apart.
  // Looked up once (every launch asks): procsup enables controllers at start, before any
  // instance runs.
  bool tracks_memory() const;

  // One read of cgroup.events (through the kept fd: events_fd()'s, so the read also re-arms its
  // EPOLLPRI).
  bool populated() const;
  std::vector<pid_t> pids() const;
  // Sends `sig` to every process in it (stop signals: each process gets it, whatever group or
  // session it made for itself). Returns how many were signalled.
  std::size_t signal(int sig) const;
  // SIGKILL to every process in it, one by one from cgroup.procs (a few passes, for processes
  // forked meanwhile). Nothing when it is empty (one read). Not cgroup.kill: on Linux 6.18 a
  // process later cloned into a cgroup that has seen a cgroup.kill (CLONE_INTO_CGROUP, how
  // the launcher starts the next instance) is killed at birth, measured with a probe; the
  // cgroups procsup reuses for restarts never get one.
  bool kill() const;
  // cgroup.kill (Linux 5.14; the one-by-one kill before that): for a cgroup that is about to
  // be removed (the sweep, procsup's exit, a program removed by a reload).
  bool kill_for_good() const;
  cgroup_usage usage() const;
  // memory.events oom_kill alone (0 without the memory controller): what an exit needs to tell
  // an OOM kill from a SIGKILL, without usage()'s other reads (cpu.stat flushes statistics).
  std::uint64_t oom_kills() const;
  // Writes `value` to the control file `file` ("memory.max"): "" or the error naming both.
  std::string write(const std::string& file, const std::string& value) const;
  // rmdir (only an empty cgroup can go): false with errno set otherwise.
  bool remove() const;

 private:
  struct kept_files;  // the files read through kept fds, and the mutex that guards their opening
  explicit cgroup(std::string path);
  std::string path_;
  sys::unique_fd procs_;           // cgroup.procs, once asked for
  sys::unique_fd dir_;             // the directory, once asked for
  mutable sys::unique_fd kill_;    // cgroup.kill (absent before Linux 5.14)
  std::unique_ptr<kept_files> files_;
  mutable std::optional<bool> tracks_memory_;
};

// Reads one "key value" line's value from a flat-keyed cgroup file ("populated", "oom_kill").
std::optional<std::uint64_t> read_cgroup_key(const std::string& file, const std::string& key);
// Removes `dir` and every cgroup below it, deepest first, after killing what is in them;
// returns the pids that were found alive (for the log). Waits at most `wait_ms` for each to empty.
std::vector<pid_t> sweep_cgroup_tree(const std::string& dir, int wait_ms, std::string& error);

}  // namespace procsup
