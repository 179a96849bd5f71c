// The parent-side core of one supervised unit (a forked behavior or an exec'd program) across
// its incarnations: launch, the channel, requests in flight, the bounded queue of sends made
// while it (re)starts, hang detection, graceful stop. Owned by a process handle or a supervisor;
// the owner answers each end of an instance with an exit_decision (on_end) and then carries out
// its part (carry_out).
//
// Its states and transitions are one table: detail/unit_phase.hpp (unit_step). unit.cpp is the
// dispatch (on() and its actions), unit_launch.cpp the launch, unit_exit.cpp an instance's end,
// unit_requests.cpp the reply fast path (sends, the reply ring, hang detection), whose threading
// (the reader's lock, how get() spins and then sleeps) is request_path (request_path.hpp).
//
// Threads: send_bytes(), wait_reply(), info() from any thread; everything else on the loop thread.
// Locks: path_.reader (the reply ring's reader, request_path.hpp) is taken before mu_
// (everything else).
#pragma once

#include <atomic>
#include <cassert>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "procsup/ipc/channel.hpp"
#include "procsup/supervisor/cgroup.hpp"
#include "procsup/supervisor/detail/request_path.hpp"
#include "procsup/supervisor/detail/unit_phase.hpp"
#include "procsup/supervisor/event_loop.hpp"
#include "procsup/supervisor/launcher.hpp"
#include "procsup/supervisor/types.hpp"

namespace procsup::detail {

class unit;

// The shared state of one reply future.
struct reply_state {
  // 0: pending; 1: ready; 2: pending and a thread sleeps on it (futex word).
  std::atomic<std::uint32_t> word{0};
  bool failed = false;
  std::string error;
  std::vector<std::byte> bytes;
  std::weak_ptr<unit> owner;

  bool ready() const noexcept { return word.load(std::memory_order_acquire) == 1; }
  void fulfill(std::span<const std::byte> body);
  void fail(std::string why);
  // Blocks until ready or `timeout` (negative: forever); false on timeout.
  bool sleep(std::chrono::nanoseconds timeout);

 private:
  void publish();
};

struct unit_spec {
  std::string id;
  // A forked behavior: runs in the child with the child's end of a fresh channel; returns the
  // exit code. Empty for exec'd programs.
  std::function<int(ipc::endpoint&)> body;
  // An exec'd program. With `protocol`, it links the worker runtime and gets a channel
  // (fds 3 and 4, named by $PROCSUP_CHANNEL) and counts as ready only once it says so.
  std::optional<exec_spec> exec;
  bool protocol = false;
  // An exec'd program that becomes ready later than its exec (sd_notify READY=1, a probe): it
  // stays `starting` until the owner calls mark_ready() (or fails it), within start_timeout.
  bool ready_later = false;
  child_setup setup;
  ipc::channel_options channel;
  std::chrono::milliseconds start_timeout{30'000};    // ready within this, or failed
  std::chrono::milliseconds request_timeout{0};       // hang detection: 0 = off
  std::chrono::milliseconds shutdown_timeout{5'000};  // graceful stop, then SIGTERM, then SIGKILL
  int stop_signal = SIGTERM;                          // programs: first signal of a stop
  std::size_t max_pending = 1024;                     // sends queued while (re)starting
  std::chrono::nanoseconds reply_spin{std::chrono::microseconds(50)};  // get() spins this long first
  std::vector<int> success_codes{0};                  // programs: exit codes that count as clean
  // Kernel containment: every instance runs in this cgroup (joined before exec). A stop then
  // signals every process in it, ends with cgroup.kill and is complete only once it is empty;
  // an instance's exit kills what it left there. Null: process groups only.
  std::shared_ptr<procsup::cgroup> cgroup;
  // Called on the loop thread before each launch (the daemon adds stdout/stderr pipes). Returns
  // fds to close in the parent after the fork.
  std::function<std::vector<int>(child_setup&)> prepare_launch;
};

// How an instance ended.
struct instance_end {
  int wait_status = 0;
  bool requested = false;  // we asked it to stop
  bool clean = false;      // requested, or a program's success code
  std::string cause;       // "killed by SIGSEGV", "handle() threw: boom", "hung: ..."
  std::chrono::steady_clock::duration uptime{};
};

// How a launch came about: a first start (or one by hand), a launch retried after a refused
// fork (not counted), a restart (counted: restart_count), or a restart at once from the exit
// handler of the instance it replaces (the loop then yields to the new instance after its exec:
// launch_exec's child_first).
enum class launch_kind : std::uint8_t { first_start, retry, restart, restart_now };

class unit : public std::enable_shared_from_this<unit> {
 public:
  unit(event_loop& loop, unit_spec spec);
  ~unit();

  // Owner hooks, called on the loop thread without locks held. An instance's end (or a failed
  // launch) is answered by on_end (on_launch_failed) with a decision, which the unit applies to
  // itself (its phase, the queue); then carry_out lets the owner do its part (its events, the
  // group, the backoff timer, the next launch). Without hooks: final, stopped if clean.
  std::function<exit_decision(unit&, const instance_end&)> on_end;
  std::function<exit_decision(unit&, const launch_error&)> on_launch_failed;
  std::function<void(unit&, const exit_decision&)> carry_out;
  event_sink emit;
  // Every transition taken by the loop thread (from, event, to), after its action: for tracing
  // and tests. (The reader's error_frame transition, on any thread, is not told.)
  std::function<void(unit_phase from, unit_event ev, unit_phase to)> on_transition;

  // ---- loop thread ----
  void launch(launch_kind kind = launch_kind::first_start);
  // Stops the current instance gracefully; `done` runs once it is reaped (at once if none).
  // With `for_restart` (a group restart stops a sibling to start it again), sends keep queueing
  // (state starting) through the stop and go to the next instance instead of failing.
  void request_stop(std::function<void()> done, bool for_restart = false);
  // The owner will restart it (a group restart): sends queue up (state starting) until the next
  // launch is ready.
  void set_restarting() { on(unit_event::will_restart); }
  void signal(int sig);  // to the instance's process group
  // Stop signals: the process group and every process in the cgroup (SIGKILL: cgroup.kill).
  void signal_all(int sig);
  // Owner hooks for spec().ready_later (the daemon's readiness rules), loop thread:
  // the instance with main process `pid` is ready (`how` is the ready event's cause); a stale pid
  // (a previous instance) or a unit not starting is ignored.
  void mark_ready(pid_t pid, std::string how);
  // Kills the current instance (SIGKILL, everything of it); its end carries `cause` ("watchdog
  // timeout", "unhealthy: ...") and is handled as a failure.
  void kill_with_cause(std::string cause);
  // While starting: the start timeout runs again from now, for at least `more` (EXTEND_TIMEOUT_USEC).
  void extend_start_timeout(std::chrono::milliseconds more);
  // Calls `fn` once: with "" when the current (or next) instance is ready, or with the cause
  // when it fails before that.
  void when_started(std::function<void(const std::string& error)> fn) { start_waiters_.push_back(std::move(fn)); }
  const unit_spec& spec() const noexcept { return spec_; }
  event_loop& loop() noexcept { return loop_; }
  // Sends `body` and calls `done(true, reply body)` or `done(false, error)` on the loop thread
  // once the reply is in or the request failed. For code that runs on the loop thread (the
  // daemon's `ctl send`), where wait_reply() would deadlock. While such a send is pending the
  // loop listens for replies.
  using async_done = std::function<void(bool ok, std::string body_or_error)>;
  void send_bytes_async(std::vector<std::byte> body, async_done done);

  // ---- any thread ----
  std::shared_ptr<reply_state> send_bytes(std::vector<std::byte> body);
  // Waits for `st` (spinning on the reply ring first): false on timeout. Not on the loop thread.
  bool wait_reply(reply_state& st, std::chrono::nanoseconds timeout);
  process_info info() const;
  // Any thread: state, pid, restarts and start time, without info()'s string copies (a scrape
  // asks every unit).
  process_sample sample() const;
  process_state state() const;
  unit_phase phase() const;
  const std::string& id() const noexcept { return spec_.id; }
  pid_t pid() const;

 private:
  struct pending_send {
    std::vector<std::byte> body;
    std::shared_ptr<reply_state> state;
  };

  // The requests written to the current instance's ring and not answered yet. An instance numbers
  // its requests 1, 2, 3, ... and an honest child answers them in that order, so a deque indexed by
  // id - oldest does it all in O(1) without an allocation per request (a map costs a node each).
  // An answer out of order (only a broken child sends one) leaves a hole, dropped once the older
  // ones are answered.
  class inflight_requests {
   public:
    bool empty() const noexcept { return entries_.empty(); }
    std::uint64_t oldest() const noexcept { return first_; }  // when !empty()
    // `id` must follow the newest one (or start the list when it is empty).
    void add(std::uint64_t id, pending_send r) {
      if (entries_.empty()) first_ = id;
      assert(id == first_ + entries_.size());
      entries_.push_back(std::move(r));
    }
    // Takes request `id` out if it is in flight (false if not: unknown or answered already).
    bool take(std::uint64_t id, pending_send& out) {
      if (id < first_ || id - first_ >= entries_.size()) return false;
      auto& e = entries_[id - first_];
      if (!e.state) return false;
      out.state = std::move(e.state);
      out.body = std::move(e.body);
      e.state = nullptr;
      while (!entries_.empty() && !entries_.front().state) {
        entries_.pop_front();
        ++first_;
      }
      return true;
    }
    // Every unanswered request, by id; leaves the list empty.
    std::map<std::uint64_t, pending_send> take_all() {
      std::map<std::uint64_t, pending_send> all;
      for (std::size_t i = 0; i < entries_.size(); ++i)
        if (entries_[i].state) all.emplace(first_ + i, std::move(entries_[i]));
      entries_.clear();
      return all;
    }

   private:
    std::uint64_t first_ = 0;  // id of entries_.front()
    std::deque<pending_send> entries_;
  };

  // ---- the state machine (unit.cpp): one event at a time, by the table of unit_phase.hpp
  // What an event comes with (only the fields of its row mean something).
  struct event_data {
    std::string cause;                     // kill, start/hang timeout, corrupt channel
    std::function<void()> done;            // stop_requested: runs once the stop is complete
    bool for_restart = false;              // stop_requested
    launch_error error;                    // setup_failed, launch_failed
  };
  // Applies `ev` in the current phase: unit_step() says where to and which action.
  void on(unit_event ev, event_data data);
  void on(unit_event ev);
  void enter(unit_phase next);               // sets phase_ (mu_ taken)
  void told(unit_phase from, unit_event ev, unit_phase to) {
    if (on_transition) on_transition(from, ev, to);
  }
  void arm_phase_timer(std::chrono::milliseconds after, unit_event fire);
  void cancel_phase_timer();
  void ask_stop();                           // action ask_stop
  void end_stop(bool kill_cgroup_first);     // actions end_stop, kill_cgroup_end
  void wait_cgroup();                        // action wait_cgroup
  void on_cgroup_event();

  // ---- launch (unit_launch.cpp)
  void become_ready();
  // A start that never ran (fork or a setup step failed): the owner's decision, start waiters,
  // spawn_failed, the owner's part.
  // `from`: the phase it launched from (or setup_failed); `ctx`: in the exit handler.
  void fail_launch(const launch_error& err, unit_phase from, exit_context* ctx);
  // A new instance's channel is set up: its ids start at 1 and its start frame (start_info) is
  // the first frame in its ring (path_.reader and mu_ held).
  void send_start_locked();
  void on_setup_report();
  void close_setup_report();

  // ---- an instance's end (unit_exit.cpp)
  void on_exit(int wait_status, exit_context& ctx);
  std::string exit_cause(int status) const;
  // The owner's decision (or the default without an owner) applied to the unit: its phase, the
  // queue (kept for a restart, failed when final) (mu_ held).
  void apply_decision_locked(const exit_decision& d);
  exit_decision default_decision(bool clean, const std::string& cause) const;
  // After an instance died: takes out of `lost` (its requests in flight) those it never started
  // and queues them, in order, ahead of every later send for the next instance; what is left in
  // `lost` fails. Only when a next instance comes (phase restarting) and the child's word can be
  // taken: `trusted` (its channel is not corrupt) and `handling` (the id it published as in
  // progress) is 0, the id it answered last, or the oldest request in flight; anything else fails
  // every request in flight (mu_ held).
  void requeue_unstarted_locked(std::map<std::uint64_t, pending_send>& lost, std::uint64_t handling, bool trusted);
  // The instance's channel and its epoll watch go (path_.reader and mu_ held).
  void drop_channel_locked();

  // ---- the reply fast path (unit_requests.cpp)
  struct reply_ring;                   // the ring as request_path::wait() uses it
  void pump_channel();                 // loop: the eventfd / posted: replies, ready, space, wakeups
  void post_pump();                    // any thread: pump_channel() on the loop, once
  void drain_locked();                 // path_.reader held
  void flush_pending_locked();         // mu_ held
  void hang_check();
  void ensure_hang_timer();
  void fail_all_locked(std::deque<pending_send>& q, const std::string& why);
  void complete_async();               // loop: runs the callbacks of finished async sends
  // The instance has a channel (changed on the loop thread with both locks held).
  bool has_channel() const noexcept { return chan_.has_value(); }

  event_loop& loop_;
  unit_spec spec_;

  request_path path_;  // the reply ring's reader lock (path_.reader, before mu_) and get()'s wait
  mutable std::mutex mu_;
  unit_phase phase_ = unit_phase::idle;  // mu_ (the loop thread, and a reader's error_frame step)
  stop_goal goal_ = stop_goal::stopped;  // the stop phases' goal (mu_)
  pid_t pid_ = 0;
  std::chrono::system_clock::time_point started_at_{};
  std::chrono::steady_clock::time_point started_mono_{};
  int restarts_ = 0;
  std::string last_error_;
  int last_exit_status_ = -1;
  std::optional<ipc::channel> chan_;
  ipc::endpoint ep_;                   // chan_'s parent end while chan_ is set
  std::uint64_t next_id_ = 1;
  // Requests written to the current instance's ring and not answered yet (= send order). Each
  // keeps its body: one the instance never started is sent again to the next instance.
  inflight_requests inflight_;
  // Small bodies of answered requests, freed by the next send on the fast path (while the child
  // handles it) instead of on the reply's path, where the caller of get() waits; or when the
  // instance ends. At most 64 of at most 4 KiB (mu_).
  std::vector<std::vector<std::byte>> retired_;
  std::uint64_t last_answered_ = 0;  // the id the current instance answered last (path_.reader + mu_)
  std::uint64_t instances_ = 0;      // instances launched with a channel (start_info::instance)
  std::deque<pending_send> pending_;
  std::vector<std::function<void()>> stop_done_;  // the stop's waiters (loop thread)

  // set by readers (any thread), acted on by the loop
  std::atomic<bool> ready_seen_{false};
  std::atomic<bool> hang_timer_on_{false};
  std::string init_error_;     // error frame with id 0 (init failed); path_.reader
  std::string handler_error_;  // last error frame's message; path_.reader
  std::string kill_reason_;    // loop thread
  std::string protocol_error_; // path_.reader: the child broke the protocol
  std::string ready_how_;      // loop thread: the cause of the next ready event (mark_ready)

  std::vector<std::function<void(const std::string&)>> start_waiters_;
  void notify_started(const std::string& error) {
    auto w = std::move(start_waiters_);
    start_waiters_.clear();
    for (auto& f : w) f(error);
  }

  // The current phase's timer (start timeout, a stop phase's timeout, the cgroup's) and the
  // event it fires; the hang timer runs beside it while running.
  event_loop::timer_id phase_timer_ = 0, hang_timer_ = 0;
  // A forked instance's setup pipe until its setup has reported (loop thread), and in phase
  // setup_failed the step that failed (the child then exits 127: a failed launch, not a crash).
  int setup_report_fd_ = -1;
  launch_error setup_error_;
  // send_bytes_async() requests not yet answered (loop thread only).
  std::vector<std::pair<std::shared_ptr<reply_state>, async_done>> async_;
  std::uint64_t hang_seen_oldest_ = 0;
  std::uint64_t oom_kills_at_start_ = 0;
  // stop_cgroup: the instance's exit event, told once its cgroup is empty (whoever hears
  // "exited" may take the stop as complete).
  lifecycle_event stop_exit_event_;
};

}  // namespace procsup::detail
