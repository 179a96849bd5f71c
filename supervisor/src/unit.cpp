// The parent-side core of a supervised unit: its state machine. Every event goes through on(),
// which asks the table (unit_step, detail/unit_phase.hpp) for the next phase and the action, and
// does the action. The launch is in unit_launch.cpp, an instance's end in unit_exit.cpp, the
// reply fast path in unit_requests.cpp. See detail/unit.hpp.
#include "procsup/supervisor/detail/unit.hpp"

#include <sys/epoll.h>
#include <signal.h>

#include <climits>

#include "procsup/shm/futex.hpp"
#include "unit_text.hpp"

namespace procsup::detail {

using namespace std::chrono_literals;

// ---------------------------------------------------------------- reply_state

void reply_state::publish() {
  // release: the value/error written before is visible to whoever sees word == 1 (acquire).
  if (word.exchange(1, std::memory_order_acq_rel) == 2)
    shm::futex_wake(word, INT_MAX);
}

void reply_state::fulfill(std::span<const std::byte> body) {
  bytes.assign(body.begin(), body.end());
  publish();
}

void reply_state::fail(std::string why) {
  failed = true;
  error = std::move(why);
  publish();
}

bool reply_state::sleep(std::chrono::nanoseconds timeout) {
  const bool forever = timeout.count() < 0;
  const auto deadline = std::chrono::steady_clock::now() + (forever ? 0ns : timeout);
  for (;;) {
    std::uint32_t w = word.load(std::memory_order_acquire);
    if (w == 1) return true;
    // acq_rel CAS 0 -> 2 announces a sleeper to publish(); if it fails, re-check.
    if (w == 0 && !word.compare_exchange_weak(w, 2, std::memory_order_acq_rel)) continue;
    auto left = forever ? -1ns : deadline - std::chrono::steady_clock::now();
    if (!forever && left <= 0ns) return word.load(std::memory_order_acquire) == 1;
    // A shared futex works within one process too.
    shm::futex_wait(word, 2, std::chrono::duration_cast<std::chrono::nanoseconds>(left));
  }
}

// ---------------------------------------------------------------- unit

unit::unit(event_loop& loop, unit_spec spec) : loop_(loop), spec_(std::move(spec)), path_(spec_.reply_spin) {}

unit::~unit() {
  sys::close_fd(setup_report_fd_);
  // Owners stop units before dropping them; whatever is still waiting must not hang.
  std::lock_guard lk(mu_);
  for (auto& [id, r] : inflight_.take_all()) r.state->fail("process " + spec_.id + " was destroyed");
  fail_all_locked(pending_, "process " + spec_.id + " was destroyed");
}

process_state unit::state() const {
  std::lock_guard lk(mu_);
  return public_state(phase_, goal_);
}

unit_phase unit::phase() const {
  std::lock_guard lk(mu_);
  return phase_;
}

pid_t unit::pid() const {
  std::lock_guard lk(mu_);
  return pid_;
}

process_info unit::info() const {
  std::lock_guard lk(mu_);
  process_info i;
  i.id = spec_.id;
  i.state = public_state(phase_, goal_);
  i.phase = to_string(phase_);
  i.pid = pid_;
  i.started_at = started_at_;
  i.restart_count = restarts_;
  i.last_error = last_error_;
  i.last_exit_status = last_exit_status_;
  return i;
}

process_sample unit::sample() const {
  std::lock_guard lk(mu_);  // a reader on another thread may move phase_ (error_frame)
  return {public_state(phase_, goal_), pid_, restarts_, started_at_};
}

void unit::enter(unit_phase next) {
  std::lock_guard lk(mu_);
  phase_ = next;
}

void unit::arm_phase_timer(std::chrono::milliseconds after, unit_event fire) {
  cancel_phase_timer();
  phase_timer_ = loop_.add_timer(after, [weak = weak_from_this(), fire] {
    if (auto self = weak.lock()) {
      self->phase_timer_ = 0;
      self->on(fire);
    }
  });
}

void unit::cancel_phase_timer() {
  if (phase_timer_) loop_.cancel_timer(std::exchange(phase_timer_, 0));
}

// The dispatch of every event but `exited` (unit_exit.cpp: its facts come from the instance's
// end) and `launch` / `launch_failed` (unit_launch.cpp), which use the same table.
void unit::on(unit_event ev) { on(ev, event_data{}); }

void unit::on(unit_event ev, event_data d) {
  if (ev == unit_event::start_timeout) d.cause = "did not become ready within " + ms_text(spec_.start_timeout);
  step_facts facts;
  unit_phase from;
  {
    std::lock_guard lk(mu_);
    from = phase_;
    facts.goal = ev == unit_event::stop_requested ? (d.for_restart ? stop_goal::restart : stop_goal::stopped) : goal_;
    // A worker is asked first (the shutdown frame), if its ring takes the frame.
    if (ev == unit_event::stop_requested && has_channel() &&
        (from == unit_phase::starting || from == unit_phase::running || from == unit_phase::exiting))
      facts.shutdown_frame_sent = ep_.try_send(ipc::frame_kind::shutdown, 0, {}) == shm::ring_status::ok;
  }
  const unit_transition t = unit_step(from, ev, facts);
  if (t.action != unit_action::none) {
    // Told before the action: an action may lead to further transitions (a ready flushes and
    // pumps; a stop completion runs its waiters).
    told(from, ev, t.next);
  }
  switch (t.action) {
    case unit_action::none:
      // A stop request that changes nothing still waits like the others (or completes at once).
      if (ev == unit_event::stop_requested && d.done) d.done();
      return;
    case unit_action::become_ready:
      enter(t.next);
      become_ready();
      return;
    case unit_action::kill:
      if (pid() == 0) return;
      if (kill_reason_.empty()) kill_reason_ = std::move(d.cause);
      signal_all(SIGKILL);
      return;
    case unit_action::remember_setup:
      setup_error_ = std::move(d.error);
      enter(t.next);
      return;
    case unit_action::queue_sends:
      enter(t.next);
      return;
    case unit_action::ask_stop: {
      {
        std::lock_guard lk(mu_);
        phase_ = t.next;
        goal_ = facts.goal;
        // A plain stop: what waits for this instance fails now; a restart's stop keeps it for
        // the next instance.
        if (goal_ == stop_goal::stopped) fail_all_locked(pending_, "process " + spec_.id + " is stopping");
      }
      cancel_phase_timer();  // the start timeout: a stop has its own
      if (d.done) stop_done_.push_back(std::move(d.done));
      complete_async();  // queued sends failed above
      // Worker: shutdown frame, then SIGTERM, then SIGKILL. Program: stop_signal, then SIGKILL.
      if (!facts.shutdown_frame_sent) signal_all(spec_.stop_signal);
      arm_phase_timer(spec_.shutdown_timeout, unit_event::stop_timeout);
      return;
    }
    case unit_action::escalate_sigterm:
      enter(t.next);
      signal_all(SIGTERM);
      arm_phase_timer(spec_.shutdown_timeout, unit_event::stop_timeout);
      return;
    case unit_action::escalate_sigkill:
      enter(t.next);
      signal_all(SIGKILL);
      return;
    case unit_action::retarget_stop: {
      {
        std::lock_guard lk(mu_);
        goal_ = facts.goal;
        if (goal_ == stop_goal::stopped) fail_all_locked(pending_, "process " + spec_.id + " is stopping");
      }
      if (d.done) stop_done_.push_back(std::move(d.done));
      complete_async();
      return;
    }
    case unit_action::stop_now: {
      {
        std::lock_guard lk(mu_);
        phase_ = t.next;
        if (facts.goal == stop_goal::stopped) fail_all_locked(pending_, "process " + spec_.id + " was stopped");
      }
      complete_async();
      if (d.done) d.done();
      return;
    }
    case unit_action::end_stop:
      end_stop(false);
      return;
    case unit_action::kill_cgroup_end:
      end_stop(true);
      return;
    case unit_action::start:
    case unit_action::end_instance:
    case unit_action::end_launch:
    case unit_action::wait_cgroup:
      // Not reached: launch, launch_failed and exited are dispatched where their facts are.
      return;
  }
}

void unit::request_stop(std::function<void()> done, bool for_restart) {
  event_data d;
  d.done = std::move(done);
  d.for_restart = for_restart;
  on(unit_event::stop_requested, std::move(d));
}

void unit::kill_with_cause(std::string cause) {
  event_data d;
  d.cause = std::move(cause);
  on(unit_event::kill_requested, std::move(d));
}

void unit::mark_ready(pid_t pid, std::string how) {
  if (pid == 0 || this->pid() != pid || phase() != unit_phase::starting) return;
  ready_how_ = std::move(how);
  on(unit_event::ready);
}

void unit::extend_start_timeout(std::chrono::milliseconds more) {
  if (phase() != unit_phase::starting || phase_timer_ == 0) return;
  arm_phase_timer(more, unit_event::start_timeout);
}

// ---- stop phases after the main process exited

void unit::wait_cgroup() {
  enter(unit_phase::stop_cgroup);
  const int fd = spec_.cgroup->events_fd();
  if (fd < 0 || !spec_.cgroup->populated()) {
    on(unit_event::cgroup_empty);
    return;
  }
  loop_.watch(fd, EPOLLPRI, [weak = weak_from_this()](std::uint32_t) {
    if (auto self = weak.lock()) self->on_cgroup_event();
  });
  // Everything in it has had its SIGKILL; a process that still does not go is stuck in the
  // kernel (uninterruptible sleep). The stop does not wait for it for ever (stop_timeout).
  arm_phase_timer(spec_.shutdown_timeout, unit_event::stop_timeout);
}

void unit::on_cgroup_event() {
  if (spec_.cgroup->populated()) return;  // the read re-arms EPOLLPRI
  on(unit_event::cgroup_empty);
}

void unit::end_stop(bool kill_cgroup_first) {
  const bool waited = phase() == unit_phase::stop_cgroup;
  if (waited) {
    if (kill_cgroup_first) spec_.cgroup->kill();
    loop_.unwatch(spec_.cgroup->events_fd());
    cancel_phase_timer();
  }
  stop_goal goal;
  {
    std::lock_guard lk(mu_);
    goal = goal_;
    goal_ = stop_goal::stopped;
    phase_ = goal == stop_goal::restart ? unit_phase::restarting : unit_phase::stopped;
    if (goal == stop_goal::stopped) fail_all_locked(pending_, "process " + spec_.id + " was stopped");
  }
  if (waited && emit) emit(stop_exit_event_);
  complete_async();
  auto done = std::move(stop_done_);
  stop_done_.clear();
  for (auto& f : done) f();
}

// ---- signals

void unit::signal_all(int sig) {
  if (sig == SIGKILL && spec_.cgroup) spec_.cgroup->kill();
  else if (spec_.cgroup) spec_.cgroup->signal(sig);
  signal(sig);
}

void unit::signal(int sig) {
  pid_t pid = this->pid();
  if (pid == 0) return;
  // The child leads its own process group (setsid): the group takes grandchildren along.
  // Once: a process gets a signal sent to its group and to itself twice when both are pending
  // at different times. The child itself if it left the group.
  if (!spec_.setup.new_session || ::kill(-pid, sig) != 0) ::kill(pid, sig);
}

}  // namespace procsup::detail
