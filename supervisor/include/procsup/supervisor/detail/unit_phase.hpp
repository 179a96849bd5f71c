// The states of one supervised unit and its transitions: one table, one pure function
// (unit_step), used by unit::on() and tested without a fork (test_supervisor_unit_phase.cpp).
//
// A unit is always in exactly one phase. The phases, with the process_state that info() and
// send() see (the stop phases are named as systemd names a service's):
//
//   phase          public    what is true
//   idle           stopped   never launched
//   starting       starting  an instance runs, not ready yet; the start timeout runs
//   running        running   ready: sends go to its ring; hang detection runs
//   exiting        starting  it sent an error frame (handle() threw): on its way out, sends queue
//   setup_failed   starting  a setup step failed in the forked child; it exits 127 (a failed launch)
//   stop_shutdown  stopping  stop: a worker got the shutdown frame; the stop timer runs
//   stop_sigterm   stopping  stop: SIGTERM (a program's stop_signal) sent; the stop timer runs
//   stop_sigkill   stopping  stop: SIGKILL sent; waiting for the exit
//   stop_cgroup    stopping  stop: the main process is gone, its cgroup not empty yet (timer)
//   restarting     starting  no instance; the owner launches the next one (after its backoff)
//   stopped        stopped   final: stopped (asked for, or a clean end the owner leaves down)
//   failed         failed    final: failed and left down
//   fatal          fatal     final: over its own restart budget; down until started by hand
//
// A stop for a restart (a sibling's group restart) runs through the same stop phases; its goal
// (unit::stop_goal) makes them say `starting` instead of `stopping` and sends keep queueing.
//
// The table (state × event → next state, action). "live" = starting, running, exiting;
// "stop_*" = stop_shutdown, stop_sigterm, stop_sigkill; "down" = idle, restarting, stopped,
// failed, fatal. Any pair not listed is ignored (a stale timer, a ready frame of an instance
// being stopped): next = the same phase, action none.
//
//   from            event            next                               action
//   down            launch           starting                           fork/exec, arm start timer
//   down            launch_failed    by the owner's decision (*)        spawn_failed, owner carries out
//   starting        ready            running                            cancel timer, flush queue, emit ready
//   starting        start_timeout    starting                           SIGKILL, cause "did not become ready"
//   starting        setup_failed     setup_failed                       remember the failed step
//   live            corrupt_channel  the same                           SIGKILL, cause "channel is corrupt"
//   any with a pid  kill_requested   the same                           SIGKILL, the caller's cause
//   running         hang_timeout     running                            SIGKILL, cause "hung"
//   running         error_frame      exiting                            sends queue for the next instance
//   live            will_restart     exiting                            sends queue for the next instance
//   down            will_restart     restarting                         sends queue for the next instance
//   live            stop_requested   stop_shutdown (a worker's frame    shutdown frame (or stop_signal),
//                                    went in) or stop_sigterm           arm the stop timer
//   setup_failed    stop_requested   stop_sigterm                       stop_signal, arm the stop timer
//   stop_shutdown   stop_timeout     stop_sigterm                       SIGTERM, arm the stop timer
//   stop_sigterm    stop_timeout     stop_sigkill                       SIGKILL
//   stop_*          stop_requested   the same                           the newest request sets the goal
//   down            stop_requested   restarting (for a restart), else   done at once; the queue fails
//                                    stopped (failed, fatal stay)       unless for a restart
//   live            exited           by the owner's decision (*)        exit event, owner carries out
//   setup_failed    exited           by the owner's decision (*)        spawn_failed, owner carries out
//   stop_*          exited           stop_cgroup (cgroup not empty)     wait for the cgroup
//                                    or the goal (stopped | restarting) exit event, stop waiters
//   stop_cgroup     cgroup_empty     the goal (stopped | restarting)    exit event, stop waiters
//   stop_cgroup     stop_timeout     the goal (stopped | restarting)    cgroup.kill, exit event, waiters
//   stop_cgroup     stop_requested   stop_cgroup                        the newest request sets the goal
//
//   (*) the owner's exit_decision: restart → restarting; final_stopped → stopped;
//       final_failed → failed; fatal → fatal. Without an owner: stopped if clean, else failed.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "procsup/supervisor/types.hpp"

namespace procsup::detail {

enum class unit_phase : std::uint8_t {
  idle,
  starting,
  running,
  exiting,
  setup_failed,
  stop_shutdown,
  stop_sigterm,
  stop_sigkill,
  stop_cgroup,
  restarting,
  stopped,
  failed,
  fatal,
};
inline constexpr int unit_phase_count = 13;
const char* to_string(unit_phase p) noexcept;

enum class unit_event : std::uint8_t {
  launch,           // the owner launches an instance (and the fork/exec succeeded)
  launch_failed,    // the launch failed before the instance ran (fork, pipes, cgroup, pidfd)
  ready,            // the ready frame, the exec (plain programs), or mark_ready()
  setup_failed,     // the forked child's setup pipe reported a failed step
  exited,           // the main process exited (pidfd)
  start_timeout,    // not ready within start_timeout
  stop_timeout,     // a stop phase's shutdown_timeout ran out
  hang_timeout,     // a request got no reply within request_timeout
  corrupt_channel,  // the child broke the protocol or its ring
  error_frame,      // handle() threw: the instance is on its way out
  stop_requested,   // request_stop()
  cgroup_empty,     // the stopped instance's cgroup is empty
  kill_requested,   // kill_with_cause() (the daemon's watchdog, health checks)
  will_restart,     // the owner restarts it (a group restart): sends queue for the next instance
};
inline constexpr int unit_event_count = 14;
const char* to_string(unit_event e) noexcept;

// What a stop is for: the unit ends stopped, or the owner starts it again (a group restart).
enum class stop_goal : std::uint8_t { stopped, restart };

// The owner's answer to an instance's end (or a failed launch), from supervisor_core::child_ended
// (the restart governor's decision, mapped). The unit applies it to itself (phase, queued sends);
// the owner then carries out its part (events, the group, the backoff timer).
struct exit_decision {
  enum class kind : std::uint8_t {
    restart,        // a new instance after `delay` (sends queue meanwhile)
    final_stopped,  // left down, stopped
    final_failed,   // left down, failed (with go_down: the supervisor goes down with it)
    fatal,          // over its own budget: left down until started by hand
  };
  kind what = kind::final_failed;
  std::chrono::milliseconds delay{0};  // restart
  bool take_group = false;             // restart: siblings restart with it (one_for_all, rest_for_one)
  bool counts_as_restart = true;       // restart: false for a launch retried after EAGAIN/EMFILE
  bool go_down = false;                // final_failed: escalate / give up: the owner stops every child
  std::string why;                     // final: what queued sends fail with
};
const char* to_string(exit_decision::kind k) noexcept;

// Facts an event's transition depends on (unit_step reads only those of its row).
struct step_facts {
  stop_goal goal = stop_goal::stopped;        // stop_*, stop_requested: what the stop is for
  bool shutdown_frame_sent = false;           // stop_requested: a worker's shutdown frame went in
  bool leftovers = false;                     // exited in stop_*: its cgroup is not empty yet
  exit_decision::kind decided = exit_decision::kind::final_failed;  // exited/launch_failed, not a stop
};

// What unit::on() does on the way to the next phase.
enum class unit_action : std::uint8_t {
  none,             // ignored in this phase
  start,            // an instance runs: arm the start timer (or ready at once)
  become_ready,     // cancel the start timer, flush the queue, emit ready
  kill,             // SIGKILL everything of the instance; its end carries the cause
  remember_setup,   // keep the failed setup step: its exit is a failed launch
  queue_sends,      // sends wait for the next instance
  ask_stop,         // shutdown frame or stop_signal, arm the stop timer
  escalate_sigterm, // SIGTERM, arm the stop timer
  escalate_sigkill, // SIGKILL
  retarget_stop,    // a stop under way: the newest request sets the goal
  stop_now,         // no instance: the queue fails (unless for a restart), done at once
  end_instance,     // apply the owner's decision; exit event; the owner carries out
  end_launch,       // a failed launch: apply the owner's decision; spawn_failed; owner carries out
  wait_cgroup,      // the main process is gone: wait for the cgroup to empty
  end_stop,         // the stop is complete: exit event, stop waiters, the goal
  kill_cgroup_end,  // the cgroup did not empty in time: cgroup.kill, then as end_stop
};
const char* to_string(unit_action a) noexcept;

struct unit_transition {
  unit_phase next;
  unit_action action;
  bool operator==(const unit_transition&) const = default;
};

// The table above as a function: pure, total over phase × event.
unit_transition unit_step(unit_phase from, unit_event ev, const step_facts& facts) noexcept;

// The phase as process_state (what send() and info().state go by).
process_state public_state(unit_phase p, stop_goal goal) noexcept;
// The phase reached by a decision (restart → restarting, final_* → stopped / failed, fatal).
unit_phase phase_of(exit_decision::kind k) noexcept;

inline bool is_stop_phase(unit_phase p) noexcept {
  return p == unit_phase::stop_shutdown || p == unit_phase::stop_sigterm || p == unit_phase::stop_sigkill ||
         p == unit_phase::stop_cgroup;
}
// An instance of it exists (a pid) in this phase.
inline bool has_instance(unit_phase p) noexcept {
  return p == unit_phase::starting || p == unit_phase::running || p == unit_phase::exiting ||
         p == unit_phase::setup_failed || p == unit_phase::stop_shutdown || p == unit_phase::stop_sigterm ||
         p == unit_phase::stop_sigkill;
}

}  // namespace procsup::detail
