// The unit's transition table (detail/unit_phase.hpp): a pure function of phase, event, facts.
#include "procsup/supervisor/detail/unit_phase.hpp"

namespace procsup::detail {

namespace {
bool live(unit_phase p) {
  return p == unit_phase::starting || p == unit_phase::running || p == unit_phase::exiting;
}
bool down(unit_phase p) {
  return p == unit_phase::idle || p == unit_phase::restarting || p == unit_phase::stopped ||
         p == unit_phase::failed || p == unit_phase::fatal;
}
unit_phase goal_phase(stop_goal g) { return g == stop_goal::restart ? unit_phase::restarting : unit_phase::stopped; }
}  // namespace

unit_phase phase_of(exit_decision::kind k) noexcept {
  switch (k) {
    case exit_decision::kind::restart: return unit_phase::restarting;
    case exit_decision::kind::final_stopped: return unit_phase::stopped;
    case exit_decision::kind::final_failed: return unit_phase::failed;
    case exit_decision::kind::fatal: return unit_phase::fatal;
  }
  return unit_phase::failed;
}

unit_transition unit_step(unit_phase from, unit_event ev, const step_facts& f) noexcept {
  using P = unit_phase;
  using A = unit_action;
  const unit_transition ignore{from, A::none};
  switch (ev) {
    case unit_event::launch:
      return down(from) ? unit_transition{P::starting, A::start} : ignore;
    case unit_event::launch_failed:
      return down(from) ? unit_transition{phase_of(f.decided), A::end_launch} : ignore;
    case unit_event::ready:
      return from == P::starting ? unit_transition{P::running, A::become_ready} : ignore;
    case unit_event::setup_failed:
      return from == P::starting ? unit_transition{P::setup_failed, A::remember_setup} : ignore;
    case unit_event::start_timeout:
      return from == P::starting ? unit_transition{from, A::kill} : ignore;
    case unit_event::hang_timeout:
      return from == P::running ? unit_transition{from, A::kill} : ignore;
    case unit_event::corrupt_channel:
      return from == P::starting || from == P::running || from == P::exiting ? unit_transition{from, A::kill} : ignore;
    case unit_event::kill_requested:
      return has_instance(from) ? unit_transition{from, A::kill} : ignore;
    case unit_event::will_restart:
      if (live(from)) return {P::exiting, A::queue_sends};
      return down(from) ? unit_transition{P::restarting, A::queue_sends} : ignore;
    case unit_event::error_frame:
      return from == P::running ? unit_transition{P::exiting, A::queue_sends} : ignore;
    case unit_event::stop_requested:
      if (live(from)) return {f.shutdown_frame_sent ? P::stop_shutdown : P::stop_sigterm, A::ask_stop};
      if (from == P::setup_failed) return {P::stop_sigterm, A::ask_stop};
      if (is_stop_phase(from)) return {from, A::retarget_stop};
      // down: a restart's stop leaves it restarting (sends queue for the next instance); else a
      // failed or fatal unit stays so (info() keeps saying so) and any other is stopped.
      if (f.goal == stop_goal::restart) return {P::restarting, A::stop_now};
      if (from == P::failed || from == P::fatal) return {from, A::stop_now};
      return {P::stopped, A::stop_now};
    case unit_event::stop_timeout:
      if (from == P::stop_shutdown) return {P::stop_sigterm, A::escalate_sigterm};
      if (from == P::stop_sigterm) return {P::stop_sigkill, A::escalate_sigkill};
      if (from == P::stop_cgroup) return {goal_phase(f.goal), A::kill_cgroup_end};
      return ignore;
    case unit_event::exited:
      if (live(from)) return {phase_of(f.decided), A::end_instance};
      if (from == P::setup_failed) return {phase_of(f.decided), A::end_launch};
      if (from == P::stop_shutdown || from == P::stop_sigterm || from == P::stop_sigkill)
        return f.leftovers ? unit_transition{P::stop_cgroup, A::wait_cgroup} : unit_transition{goal_phase(f.goal), A::end_stop};
      return ignore;
    case unit_event::cgroup_empty:
      return from == P::stop_cgroup ? unit_transition{goal_phase(f.goal), A::end_stop} : ignore;
  }
  return ignore;
}

process_state public_state(unit_phase p, stop_goal goal) noexcept {
  switch (p) {
    case unit_phase::idle: return process_state::stopped;
    case unit_phase::starting: return process_state::starting;
    case unit_phase::running: return process_state::running;
    case unit_phase::exiting: return process_state::starting;
    case unit_phase::setup_failed: return process_state::starting;
    case unit_phase::stop_shutdown:
    case unit_phase::stop_sigterm:
    case unit_phase::stop_sigkill:
    case unit_phase::stop_cgroup: return goal == stop_goal::restart ? process_state::starting : process_state::stopping;
    case unit_phase::restarting: return process_state::starting;
    case unit_phase::stopped: return process_state::stopped;
    case unit_phase::failed: return process_state::failed;
    case unit_phase::fatal: return process_state::fatal;
  }
  return process_state::failed;
}

const char* to_string(unit_phase p) noexcept {
  switch (p) {
    case unit_phase::idle: return "idle";
    case unit_phase::starting: return "starting";
    case unit_phase::running: return "running";
    case unit_phase::exiting: return "exiting";
    case unit_phase::setup_failed: return "setup_failed";
    case unit_phase::stop_shutdown: return "stop_shutdown";
    case unit_phase::stop_sigterm: return "stop_sigterm";
    case unit_phase::stop_sigkill: return "stop_sigkill";
    case unit_phase::stop_cgroup: return "stop_cgroup";
    case unit_phase::restarting: return "restarting";
    case unit_phase::stopped: return "stopped";
    case unit_phase::failed: return "failed";
    case unit_phase::fatal: return "fatal";
  }
  return "?";
}

const char* to_string(unit_event e) noexcept {
  switch (e) {
    case unit_event::launch: return "launch";
    case unit_event::launch_failed: return "launch_failed";
    case unit_event::ready: return "ready";
    case unit_event::setup_failed: return "setup_failed";
    case unit_event::exited: return "exited";
    case unit_event::start_timeout: return "start_timeout";
    case unit_event::stop_timeout: return "stop_timeout";
    case unit_event::hang_timeout: return "hang_timeout";
    case unit_event::corrupt_channel: return "corrupt_channel";
    case unit_event::error_frame: return "error_frame";
    case unit_event::stop_requested: return "stop_requested";
    case unit_event::cgroup_empty: return "cgroup_empty";
    case unit_event::kill_requested: return "kill_requested";
    case unit_event::will_restart: return "will_restart";
  }
  return "?";
}

const char* to_string(unit_action a) noexcept {
  switch (a) {
    case unit_action::none: return "none";
    case unit_action::start: return "start";
    case unit_action::become_ready: return "become_ready";
    case unit_action::kill: return "kill";
    case unit_action::remember_setup: return "remember_setup";
    case unit_action::queue_sends: return "queue_sends";
    case unit_action::ask_stop: return "ask_stop";
    case unit_action::escalate_sigterm: return "escalate_sigterm";
    case unit_action::escalate_sigkill: return "escalate_sigkill";
    case unit_action::retarget_stop: return "retarget_stop";
    case unit_action::stop_now: return "stop_now";
    case unit_action::end_instance: return "end_instance";
    case unit_action::end_launch: return "end_launch";
    case unit_action::wait_cgroup: return "wait_cgroup";
    case unit_action::end_stop: return "end_stop";
    case unit_action::kill_cgroup_end: return "kill_cgroup_end";
  }
  return "?";
}

const char* to_string(exit_decision::kind k) noexcept {
  switch (k) {
    case exit_decision::kind::restart: return "restart";
    case exit_decision::kind::final_stopped: return "final_stopped";
    case exit_decision::kind::final_failed: return "final_failed";
    case exit_decision::kind::fatal: return "fatal";
  }
  return "?";
}

}  // namespace procsup::detail
