// `pid_namespace = true` / `procsup run --pid-namespace`: procsup runs as PID 1 of a new PID
// (and mount, for its own /proc) namespace, so the kernel kills every descendant the moment it
// dies, whatever killed it. The caller of unshare(CLONE_NEWPID) cannot itself be that PID 1, so
// two processes take part:
//
//   outer (the pid the caller started)      forwards signals, passes the exit code through
//     └─ inner procsup = PID 1 of the new namespace, PR_SET_PDEATHSIG = SIGKILL tied to outer
//
// A SIGKILL of either ends everything: inner's death kills the namespace; outer's death
// SIGKILLs inner (the lifeline pipe covers an outer that died before the prctl).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace procsup::daemon {

// In the outer process: runs until the inner one has exited and returns the exit code to
// exit with (its code, or 128 + signal). In the inner one (now PID 1 with a fresh /proc):
// returns nullopt and the caller goes on to supervise. On failure (no privilege for
// CLONE_NEWPID) returns nullopt too, with `error` set and nothing changed.
std::optional<int> enter_pid_namespace(std::string& error);

// True in the inner process of enter_pid_namespace().
bool in_own_pid_namespace() noexcept;

// The pid of `pid` (a pid of this namespace) as the host sees it, through the /proc of the
// host kept open at the switch; `pid` itself outside a namespace of ours, or when unknown.
pid_t host_pid(pid_t pid) noexcept;

}  // namespace procsup::daemon
