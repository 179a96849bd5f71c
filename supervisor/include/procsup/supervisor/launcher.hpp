// The launcher: procsup's only fork/exec code. Starts a child (exec'd or forked) with a clean
// signal state, its own session, rlimits, a privilege drop, exactly the fds it is meant to have
// and a parent-death signal (docs/platform-notes.md#the-childs-setup-sequence).
//
// Threading: call from the thread that owns the children (the supervisor's event loop): the
// parent-death signal fires when the *thread* that forked exits, not the process
// (docs/platform-notes.md#the-parent-death-signal). Between fork
// and exec/body the child makes only async-signal-safe calls; everything is prebuilt here.
//
// Reaping: the launcher reaps a child only when it reports a failure through the error pipe
// (then the child is known to be exiting and nobody else knows its pid yet). A child that was
// launched successfully is the caller's to reap.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <csignal>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "procsup/shm/region.hpp"

namespace procsup {

struct rlimit_setting {
  int resource;  // RLIMIT_NOFILE, RLIMIT_AS, RLIMIT_CPU, ...
  rlim_t soft;
  rlim_t hard;
};

// What every child (exec'd or forked) gets, applied in this order in the child: its cgroup
// (when asked), signal dispositions to SIG_DFL + empty mask, (forked: `maps`), setsid, rlimits,
// setgroups/setgid/setuid, parent-death signal (+ getppid check), chdir, dup2 of `fds`, close
// every other fd >= 3, and last a soft RLIMIT_NOFILE lower than the parent's (so that the
// parent's fds can still be moved before that).
struct child_setup {
  // The cgroup.procs file of the instance's cgroup (cgroup::procs_fd()), or -1: the child
  // writes its pid there as its very first step, so it and everything it starts belong to that
  // cgroup before it runs any code of its own. Not passed to the child.
  int cgroup_procs_fd = -1;
  // The cgroup's directory (O_RDONLY | O_DIRECTORY), or -1: the exec path then creates the
  // child in that cgroup (clone3 with CLONE_INTO_CGROUP, Linux 5.7, x86-64) instead of moving
  // it there: a move takes the kernel's cgroup-wide write lock (milliseconds per restart while
  // anything forks), a clone into the cgroup only its read side. cgroup_procs_fd is the
  // fallback where clone3 cannot do it.
  int cgroup_dir_fd = -1;
  bool new_session = true;            // setsid(): own session + process group (pgid == pid)
  int parent_death_signal = SIGKILL;  // 0 = none; set after the uid change (which clears it)
  // Every signal disposition back to SIG_DFL in the child: 64 system calls, ~20 µs of every
  // launch. false only in a process that ignores and catches no signal at all (the procsup
  // program resets its dispositions at start and reads its signals from a signalfd): there the
  // child already has the default dispositions, and exec resets caught ones anyway. A handler
  // installed while this is false could run in a child that shares the parent's memory (the
  // exec path) between its unblocking of signals and its exec. The mask is emptied either way.
  bool reset_signal_dispositions = true;
  std::vector<rlimit_setting> limits;
  std::optional<uid_t> uid;  // privilege drop; when uid or gid is set, supplementary groups
  std::optional<gid_t> gid;  // are replaced by `groups` (possibly none)
  std::vector<gid_t> groups;
  // {parent_fd, child_fd}: the child gets parent_fd as child_fd (inheritable). Overlaps and
  // swaps ({3,4},{4,3}) and parent_fd == child_fd are handled. Fds 0, 1, 2 are kept as they
  // are unless mapped here; every other fd is closed in the child.
  std::vector<std::pair<int, int>> fds;
  std::string cwd;  // chdir (after the privilege drop) if non-empty
  // Forked children only (exec drops every mapping): shared memory the child maps first thing,
  // each exactly at `addr` (MAP_FIXED_NOREPLACE: the parent's mapping there is MADV_DONTFORK, so
  // the address is free in the child) and kept out of the child's own forks. A pooled channel's
  // region (ipc::channel::region_source()); the fd is closed with the others afterwards.
  std::vector<shm::region_source> maps;
  // Exec'd children: variables whose value is the child's own pid ("LISTEN_PID", "WATCHDOG_PID"),
  // added to the environment by the child itself between clone and execve (the parent cannot
  // know the pid before). Names only; a same-named variable already in the environment stays.
  std::vector<std::string> pid_env;
};

struct exec_spec {
  // Absolute (or at least containing '/') path of the program. A bare name is resolved with
  // resolve_executable() against PATH from `env` (or procsup's own PATH) in the parent.
  std::string path;
  std::vector<std::string> argv;  // argv[0] included; empty means {path}
  std::vector<std::string> env;   // the complete environment, "NAME=value" (see current_environment())
  child_setup setup;
  // A restart: once the child has exec'd, the calling thread yields its CPU (sched_yield) so the
  // child's start goes first. A vfork parent resumes halfway through the child's execve, mostly
  // on the child's CPU and ahead of it, and would otherwise do its own work there first.
  bool child_first = false;
};

struct launch_error {
  int error = 0;        // errno
  std::string stage;    // "fork", "pipe", "resolve", "setsid", "setrlimit", "setgroups", "setgid",
                        // "setuid", "prctl", "parent died", "chdir", "dup2", "close_range", "exec",
                        // "mmap",
                        // "cgroup"
  std::string message;  // e.g. "exec /usr/bin/nope: No such file or directory"
};

// Resolves `name` to an absolute path: with a '/' relative to procsup's cwd, else against the
// ':'-separated `path_env` (an empty PATH means the usual default; an empty entry means the
// cwd). The result exists, is a regular file and executable (access(X_OK)). On failure returns
// "" and sets `error` (ENOENT, EACCES, ...); on success sets `error` to 0. Parent side only.
std::string resolve_executable(const std::string& name, const std::string& path_env, int& error);

// The child setup + execve in a child made by clone(CLONE_VM | CLONE_VFORK) (no copy of the
// parent's memory: the exec path costs the same whatever the parent's size). Returns the pid once
// the exec has happened (or the child failed): a failing execve or setup step comes back as a
// launch_error, and that child has then been reaped already. The child ends with _exit(127) on
// failure, never exit() (no stdio doubling).
std::variant<pid_t, launch_error> launch_exec(const exec_spec& spec);
// The same with `setup` and `child_first` in place of the spec's own (which are ignored): for a
// caller that builds the setup per launch (fds of this run) around a spec it keeps, so that the
// spec's argv and environment are not copied on every restart.
std::variant<pid_t, launch_error> launch_exec(const exec_spec& spec, const child_setup& setup, bool child_first);

// fork + the same child setup (no exec), then _exit(body()) in the child. Returns the pid once
// the setup has succeeded, or a launch_error (fork failure: EAGAIN, ...; setup failure: the
// child has been reaped). body() runs in a forked copy of the parent: only the calling thread
// exists there, and locks other threads held stay held, so no parent loggers and no waiting on
// the parent's threads (docs/library.md#what-is-safe-in-a-forked-child,
// docs/platform-notes.md#forking-a-multi-threaded-process). An exception escaping body()
// terminates the child (SIGABRT), which the supervisor sees as a crash.
std::variant<pid_t, launch_error> launch_fork(const child_setup& setup, const std::function<int()>& body);

// launch_fork without waiting for the child's setup (which then runs while the caller goes on:
// closing the parent's other fds is most of it when the parent has many). report_fd is the read
// end of the child's setup pipe (O_CLOEXEC | O_NONBLOCK), the caller's to watch and close: it
// becomes readable when the setup is done; read_setup_report() says how it went. A child whose
// setup failed _exits(127): the caller reaps it as any other child.
struct forked_child {
  pid_t pid = -1;
  int report_fd = -1;
};
std::variant<forked_child, launch_error> launch_fork_async(const child_setup& setup, const std::function<int()>& body);

enum class setup_report { pending, succeeded, failed };
// One read of a setup pipe: pending (nothing yet), succeeded (EOF), or failed (`error` filled).
setup_report read_setup_report(int report_fd, launch_error& error);

// Reserves now, for the calling thread, the few low fds launch_exec() passes a child's fds
// through (otherwise reserved at the thread's first launch_exec): a child copies only the fds
// below the highest one it is given, so that the cost of a launch does not grow with the number
// of fds the parent has open. Call it early in a thread that will open many fds before its first
// launch. The fds (close-on-exec placeholders on /dev/null) are closed when the thread exits.
void reserve_launch_fds();

// procsup's own environment as a vector of "NAME=value" (for exec_spec::env).
std::vector<std::string> current_environment();

}  // namespace procsup
