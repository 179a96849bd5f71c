// An instance's end: how it ended, what becomes of its requests in flight, the owner's decision,
// the exit event. See detail/unit.hpp; the transitions are in detail/unit_phase.hpp.
#include <sys/wait.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <iterator>

#include "procsup/supervisor/detail/unit.hpp"
#include "procsup/worker/behavior.hpp"
#include "procsup/worker/main.hpp"

namespace procsup::detail {

exit_decision unit::default_decision(bool clean, const std::string& why) const {
  exit_decision d;
  d.what = clean ? exit_decision::kind::final_stopped : exit_decision::kind::final_failed;
  d.why = why;
  return d;
}

void unit::apply_decision_locked(const exit_decision& d) {
  phase_ = phase_of(d.what);
  goal_ = stop_goal::stopped;
  // Final: whatever waits for a next instance fails. A restart keeps the queue for it.
  if (d.what != exit_decision::kind::restart) fail_all_locked(pending_, d.why);
}

void unit::on_exit(int status, exit_context& ctx) {
  cancel_phase_timer();
  if (hang_timer_) loop_.cancel_timer(std::exchange(hang_timer_, 0));
  hang_timer_on_ = false;
  // The child is gone, so its setup report (a failed step, or EOF) is in the pipe by now.
  if (setup_report_fd_ >= 0) on_setup_report();
  if (setup_report_fd_ >= 0) close_setup_report();
  unit_phase from;
  pid_t dead;
  {
    std::lock_guard lk(mu_);
    from = phase_;
    dead = pid_;
  }
  if (from == unit_phase::setup_failed) {
    // A setup step failed: the instance never ran. Handled as a failed launch, like a fork
    // that failed (spawn_failed, then the owner's retry / give-up), not as a crash.
    {
      std::lock_guard rk(path_.reader);
      std::lock_guard lk(mu_);
      drop_channel_locked();
      pid_ = 0;
      last_exit_status_ = status;
    }
    fail_launch(setup_error_, from, &ctx);
    return;
  }
  // Stragglers of its process group (grandchildren) go with it.
  if (spec_.setup.new_session && dead > 0) ::kill(-dead, SIGKILL);
  // And everything else it started, wherever it went (setsid, double fork): the cgroup.
  // One read of cgroup.events decides both: empty (the usual case, its only process was the one
  // that exited) leaves nothing to kill and, for a stop, nothing to wait for (nothing can join
  // an empty cgroup before the next launch).
  const bool cgroup_held = spec_.cgroup && spec_.cgroup->populated();
  if (cgroup_held) spec_.cgroup->kill();
  const bool requested = is_stop_phase(from);

  // How it ended, and what it leaves: the replies written before it died are good; its requests
  // in flight are `lost` until the decision says whether a next instance takes them.
  instance_end end;
  end.wait_status = status;
  end.requested = requested;
  std::map<std::uint64_t, pending_send> lost;
  std::uint64_t handling = 0;
  bool trusted = false;
  // The dead instance's channel, kept while the owner's carry_out may launch the next instance:
  // that one then allocates its region while this one still holds the pool chunk, so the chunk
  // is neither unmapped nor mapped again per restart (memfd_create + ftruncate + mmap + madvise
  // + munmap: 30-60 us of a forked restart, issue 17). Safe: its child is dead, nothing writes
  // the region any more. Released (zeroed) right after carry_out, or before anyone hears of the
  // end when no next instance follows from here.
  std::optional<ipc::channel> dead_channel;
  {
    std::lock_guard rk(path_.reader);
    drain_locked();
    end.cause = exit_cause(status);
    std::lock_guard lk(mu_);
    // What the child said it was handling, and whether its channel is sound (before it goes).
    handling = has_channel() ? ep_.published_handling() : 0;
    trusted = has_channel() && !ep_.broken() && protocol_error_.empty();
    if (chan_) dead_channel = std::move(chan_);
    drop_channel_locked();  // sends made from now on queue (or are refused) by the phase
    lost = inflight_.take_all();
    end.uptime = std::chrono::steady_clock::now() - started_mono_;
    const bool success_code =
        WIFEXITED(status) && !spec_.body && !spec_.protocol &&
        std::find(spec_.success_codes.begin(), spec_.success_codes.end(), WEXITSTATUS(status)) != spec_.success_codes.end();
    end.clean = end.requested || (success_code && kill_reason_.empty());
    pid_ = 0;
    last_exit_status_ = status;
    if (!end.clean) last_error_ = end.cause;
  }

  // The table's facts: for a stop, whether its cgroup still holds something (the SIGKILL above
  // takes a moment to land: the main process's exit alone does not complete the stop); else the
  // owner's answer.
  step_facts facts;
  exit_decision decision;
  if (requested) {
    facts.leftovers = cgroup_held && spec_.cgroup->populated();
    std::lock_guard lk(mu_);
    facts.goal = goal_;
  } else {
    decision = on_end ? on_end(*this, end)
                      : default_decision(end.clean, "process " + spec_.id + (end.clean ? " stopped: " : " failed: ") + end.cause);
    facts.decided = decision.what;
  }
  const unit_transition t = unit_step(from, unit_event::exited, facts);
  {
    std::lock_guard lk(mu_);
    if (t.action == unit_action::end_instance) apply_decision_locked(decision);
    else if (t.action == unit_action::end_stop && facts.goal == stop_goal::stopped)
      fail_all_locked(pending_, "process " + spec_.id + " was stopped");
    phase_ = t.next;
    if (t.action == unit_action::end_stop) goal_ = stop_goal::stopped;
    // The requests it never started wait for the next instance; the one in progress fails.
    if (phase_ == unit_phase::restarting || (phase_ == unit_phase::stop_cgroup && facts.goal == stop_goal::restart))
      requeue_unstarted_locked(lost, handling, trusted);
  }
  told(from, unit_event::exited, t.next);
  // Whoever learns of the end from here on finds the process reaped; the event sink hears of it
  // first (for a restart the zombie may stay until the next instance is launched).
  const bool final = t.next == unit_phase::stopped || t.next == unit_phase::failed || t.next == unit_phase::fatal;
  // No next instance from this handler: the dead channel goes before anyone hears of the end
  // (whoever does may check that nothing of the instance is left, or tear the supervisor down).
  if (t.action != unit_action::end_instance || final) dead_channel.reset();
  if (!lost.empty() || !start_waiters_.empty() || requested || final || !async_.empty()) ctx.reap_now();
  for (auto& [id, r] : lost) r.state->fail("process " + spec_.id + " " + end.cause);
  lifecycle_event exit_event{end.clean ? event_kind::exited : event_kind::crashed,
                             spec_.id,
                             dead,
                             std::chrono::system_clock::now(),
                             end.cause,
                             restarts_,
                             {},
                             status};
  // A stop that waits for its cgroup to empty tells of the exit once nothing is left: whoever
  // hears "exited" may take the stop as complete.
  if (emit && t.action != unit_action::wait_cgroup) emit(exit_event);
  if (!start_waiters_.empty()) notify_started(end.cause);
  switch (t.action) {
    case unit_action::wait_cgroup:
      stop_exit_event_ = std::move(exit_event);
      wait_cgroup();
      return;
    case unit_action::end_stop: {
      complete_async();
      auto done = std::move(stop_done_);
      stop_done_.clear();
      for (auto& f : done) f();
      return;
    }
    default:  // end_instance
      if (carry_out) carry_out(*this, decision);
      dead_channel.reset();  // the next instance, if launched above, has its region by now
      complete_async();
      return;
  }
}

std::string unit::exit_cause(int status) const {
  if (!kill_reason_.empty()) return kill_reason_;
  if (!protocol_error_.empty()) return protocol_error_;
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && spec_.cgroup && spec_.cgroup->tracks_memory() &&
      spec_.cgroup->oom_kills() > oom_kills_at_start_) {
    std::ifstream in(spec_.cgroup->path() + "/memory.max");
    std::string max;
    in >> max;
    return "killed by the OOM killer (memory.max " + (max.empty() ? std::string("?") : max) + ")";
  }
  const bool worker = static_cast<bool>(spec_.body) || spec_.protocol;
  if (worker && WIFEXITED(status)) {
    const int code = WEXITSTATUS(status);
    if (code == worker::exit_init_failed && !init_error_.empty()) return init_error_;
    if (code == worker::exit_handler_threw)
      return std::string("handle() threw") + (handler_error_.empty() ? "" : ": " + handler_error_);
    if (const char* what = worker::describe_exit_code(code))
      return std::string("exited with code ") + std::to_string(code) + " (" + what + ")";
  }
  return describe_wait_status(status);
}

void unit::drop_channel_locked() {
  retired_.clear();
  if (chan_) loop_.unwatch(ep_.wake_fd());
  ep_ = ipc::endpoint();
  chan_.reset();
}

void unit::requeue_unstarted_locked(std::map<std::uint64_t, pending_send>& lost, std::uint64_t handling, bool trusted) {
  if (lost.empty() || !trusted) return;
  // An honest child handles requests in id order and answers each before it starts the next, so
  // the one it can have started is the oldest unanswered (and it published that id before
  // starting it), and every request in flight is newer than the last one it answered.
  const std::uint64_t oldest = lost.begin()->first;
  if (oldest <= last_answered_) return;
  if (handling != 0 && handling != last_answered_ && handling != oldest) return;  // not its honest word
  std::deque<pending_send> again;
  for (auto it = lost.begin(); it != lost.end();) {
    if (it->first == handling) {
      ++it;  // in progress when it died: fails with the cause (at most once)
      continue;
    }
    again.push_back(std::move(it->second));
    it = lost.erase(it);
  }
  // Ahead of the sends queued meanwhile: those were made after these (they were not in the ring).
  pending_.insert(pending_.begin(), std::make_move_iterator(again.begin()), std::make_move_iterator(again.end()));
}

}  // namespace procsup::detail
