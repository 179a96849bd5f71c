// supervisor_core: the loop-thread state of one supervisor. It answers each child's ended
// instance with the restart governor's decision (child_ended, launch_failed: an exit_decision
// for the unit) and then carries out its own part (carry_out: events, the group restart, going
// down), and nests. Internal to the library; supervisor.cpp is its public face.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "procsup/supervisor/restart_governor.hpp"
#include "procsup/supervisor/supervisor.hpp"

namespace procsup::detail {

class supervisor_core : public std::enable_shared_from_this<supervisor_core> {
 public:
  using steady = std::chrono::steady_clock;

  supervisor_core(supervisor_options o, event_loop& l)
      : opt(std::move(o)), loop(l), governor(opt.policy, opt.intensity, opt.period, opt.backoff) {}

  // The governor's answer for a child, kept from the decision until it is carried out.
  struct answer {
    restart_decision d;
    std::string cause;  // how it ended, as events tell it ("exited (...), restart_on_exit")
    std::string why;    // how it ended ("killed by SIGSEGV")
    bool retry = false; // a launch refused for now (EAGAIN...): launched again after `retry_delay`
    std::chrono::milliseconds retry_delay{0};
  };

  // The mechanism side of a child; what its failures mean (strategy, budgets, backoff) is in
  // the governor under the same slot.
  struct child {
    std::shared_ptr<unit> u;
    std::shared_ptr<supervisor_core> sub;
    std::size_t slot = 0;  // its index in children and in the governor
    event_loop::timer_id restart_timer = 0;
    steady::time_point started{};
    bool removed = false;
    bool first_start_pending = false;  // spawn() waits for its first start: a failure removes it
    std::optional<answer> pending;     // decided, not carried out yet
    const std::string& id() const { return u ? u->id() : sub->opt.name; }
  };

  // Waves of children to stop (indices): a wave is stopped together, the next once it is reaped.
  using stop_plan = std::vector<std::vector<std::size_t>>;

  // As given. Its policy, intensity, period and backoff are the governor's from then on.
  supervisor_options opt;
  event_loop& loop;
  // Strategies, budgets, intensity, backoff and group choice: the one place restarts are decided.
  restart_governor governor;
  std::weak_ptr<supervisor_core> parent;
  std::deque<child> children;  // only grows (removal is a flag): references stay valid
  std::unordered_map<std::string, std::vector<std::size_t>> by_id;  // indices into children, by id
  bool stopped = false;  // stop() was called: final
  bool down = false;     // gave up / escalated: children stopped until a parent restarts us
  bool gave_up = false;
  steady::time_point started = steady::now();

  void emit(lifecycle_event e);
  lifecycle_event event(event_kind k, const std::string& id, pid_t pid, std::string cause, int restarts = 0);

  // The first child named `id` not removed yet. Indexed (it runs twice on every restart: a
  // linear search was the most expensive part of procsup's own code there with 100 programs).
  child* find(const std::string& id);
  // Every child is added here; returns its slot.
  std::size_t add(child c, restart_governor::child_config config);
  // Child `c` is gone for good: find() skips it and the governor never restarts it again (nor
  // takes it along in a sibling's group).
  void mark_removed(child& c);
  void refuse_if_stopped() const {
    if (stopped) throw process_error("supervisor " + opt.name + " is stopped");
  }
  // The waiter of child `id`'s first start (spawn, spawn_many): a child that never started is
  // not kept, and `then` gets "" or the error after the handler that reported it has finished
  // (its spawn_failed event included).
  std::function<void(const std::string&)> first_start_waiter(std::string id, std::function<void(const std::string&)> then);
  // Takes unit `u` as a child: its events go to the sink, its ends to child_ended.
  child& adopt(const std::shared_ptr<unit>& u, restart_governor::child_config config);

  // ---- failures (supervisor_core.cpp)
  // The answers to a unit's ended instance and to its failed launch; carry_out does the rest.
  exit_decision child_ended(std::size_t slot, const instance_end& end);
  exit_decision launch_failed(std::size_t slot, const launch_error& err);
  void carry_out(child& c);
  // The governor's answer for `c` whose instance ended as `how` (`why`: how it ended), mapped
  // for its unit; the answer waits in c.pending for carry_out.
  exit_decision decide(child& c, restart_governor::ending how, const std::string& why);
  // A nested supervisor failed: decided and carried out at once (no unit to tell).
  void sub_failed(supervisor_core* sub, const std::string& cause);
  // Restarts d.group after d.delay: each member is marked restarting (sends queue up), the
  // running siblings are stopped wave by wave (d.stop_first), then the group starts in order.
  void restart_group(std::size_t failed_at, const restart_decision& d, const std::string& cause);
  // Gave up (restart intensity) or a child escalated: stop everything, then tell the parent.
  void go_down(bool intensity, const std::string& cause);
  void escalate_up(const std::string& cause);

  // ---- launches and stops (supervisor_tree.cpp)
  // Stops the children of (*waves)[k], then of the waves after it, one wave after the other;
  // then calls done.
  void stop_sequence(std::shared_ptr<const stop_plan> waves, std::size_t k, std::function<void()> done, bool restarting);
  // Starts a new instance of `c` now: a unit launches; a nested supervisor restarts its children.
  void relaunch(child& c, launch_kind kind);
  // relaunch() after `delay` (at once if 0: then a restart launches with restart_now).
  void schedule_launch(child& c, std::chrono::milliseconds delay, launch_kind kind);
  void stop_all(std::function<void()> done);
  void restart_all();
  process_info info_as_child() const;
};

}  // namespace procsup::detail
