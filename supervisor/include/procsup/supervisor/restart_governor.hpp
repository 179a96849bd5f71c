// restart_governor: one supervisor's whole restart decision as a value. It keeps each child's
// strategy, its own failure budget and backoff counter, the tree's restart intensity, and knows
// which siblings a restart takes along and in which waves they stop. No fork, no event loop, no
// clock: the caller passes the time and how an instance ended, and carries out the answer (a
// restart_decision). supervisor_core (supervisor.cpp) is its caller; tests drive it directly.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "procsup/supervisor/restart_window.hpp"
#include "procsup/supervisor/types.hpp"

namespace procsup {

// The governor's answer for one child's ended instance. `what` says which fields mean something.
struct restart_decision {
  enum class kind {
    restart,   // start `group` again after `delay`, once the siblings in `stop_first` are stopped
    stop,      // leave it down: final state stopped after a clean exit (`clean`), else failed
               //   (strategy stop)
    escalate,  // strategy escalate: the supervisor itself fails; its parent (or owner) decides
    fatal,     // over its own budget (`limit`): it alone stays down (state fatal), siblings run on
    give_up,   // over the supervisor's restart intensity (`limit`): stop every child, escalate
  };
  // A restart budget that was exceeded: more than `max_restarts` within `period`.
  struct budget {
    int max_restarts = 0;
    std::chrono::milliseconds period{0};
    // "more than 3 restarts in 1000 ms"
    std::string describe() const;
    bool operator==(const budget&) const = default;
  };

  kind what = kind::stop;
  // restart: the children to start again, as slots in start order (the failed one among them:
  // just it under one_for_one). Children removed or being removed are never in it.
  std::vector<std::size_t> group;
  // restart: the group's running siblings to stop first, in reverse start order, as waves: the
  // children of one wave (neighbours of one stop group) are stopped together, a wave once the
  // previous one is reaped. Empty under one_for_one.
  std::vector<std::vector<std::size_t>> stop_first;
  std::chrono::milliseconds delay{0};  // restart: the backoff delay before the group starts
  bool clean = false;                  // stop: the instance exited cleanly (not a failure)
  budget limit;                        // fatal, give_up: the budget it went over
};
const char* to_string(restart_decision::kind k) noexcept;

class restart_governor {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  // What one child's end means, from spawn's strategy and program_options (see supervisor.hpp).
  struct child_config {
    strategy on_failure = strategy::restart;
    bool restart_on_exit = false;           // a clean exit restarts it too (else it stays stopped)
    std::optional<backoff_policy> backoff{};  // unset: the supervisor's
    // own_budget: more than max_restarts within restart_period (unset: the supervisor's
    // intensity / period) and it goes fatal alone. Its restarts count toward intensity too.
    bool own_budget = false;
    std::optional<int> max_restarts{};
    std::optional<std::chrono::milliseconds> restart_period{};
    std::string stop_group{};  // neighbours in one non-empty stop group are stopped together
  };

  // How an instance ended, as far as the decision goes.
  struct ending {
    bool clean = false;  // exited with a success code; false: crashed, hung, failed to start, a
                         // nested supervisor failed
    std::chrono::steady_clock::duration uptime{};  // how long it ran (a stable run resets backoff)
  };

  // The supervisor's limits (supervisor_options holds their defaults): which siblings restart
  // with a failed child, more than `intensity` restarts within `period` gives up, and the
  // backoff of children without their own.
  restart_governor(restart_policy policy, int intensity, std::chrono::milliseconds period, backoff_policy backoff);

  // Registers the next child, in start order; returns its slot (0, 1, 2, ...: the position in
  // the supervisor's list of children, which only grows).
  std::size_t add(child_config child);
  std::size_t size() const noexcept { return children_.size(); }

  // The answer for child `slot` whose instance ended as `how` at `now`. Spends from its own
  // budget and the tree's intensity when it would restart, and counts its backoff. Not for a
  // stop that was asked for (that is no failure), nor while the supervisor is stopped or down.
  restart_decision decide(std::size_t slot, ending how, time_point now);
  // A launch refused for now (fork's EAGAIN, EMFILE...): the delay before child `slot` tries
  // again, at least 10 ms. Not its fault: it counts toward its backoff but spends no budget.
  std::chrono::milliseconds retry_delay(std::size_t slot);

  // Started by hand (start_child, restart_child): its backoff and own budget start over.
  void reset(std::size_t slot);
  // The whole supervisor starts again (its parent restarts it): every budget, the intensity
  // window and every backoff start over.
  void reset_all();
  // Removed or being removed: it stays down (strategy stop) and no sibling's restart takes it
  // along. For good: a new child of the same id gets a new slot.
  void retire(std::size_t slot);

  void set_strategy(std::size_t slot, strategy s) { children_.at(slot).config.on_failure = s; }
  strategy strategy_of(std::size_t slot) const { return children_.at(slot).config.on_failure; }
  // Reload: the restarts already counted stay in the window.
  void set_limits(restart_policy policy, int intensity, std::chrono::milliseconds period);
  restart_policy policy() const noexcept { return policy_; }

  // The waves in which to stop the children of `order` (already in stopping order): each wave
  // is one child, or a run of neighbours with the same non-empty stop group.
  std::vector<std::vector<std::size_t>> stop_waves(const std::vector<std::size_t>& order) const;

  // For status and tests: restarts counted toward the intensity within the period before `now`,
  // and child `slot`'s consecutive failures (its backoff step; 0 after a stable run or a reset).
  int restarts_in_window(time_point now) { return tree_window_.spent(now, period_); }
  int consecutive_failures(std::size_t slot) const { return children_.at(slot).consecutive; }

 private:
  struct child_record {
    child_config config;
    restart_window budget;  // its own restarts (own_budget)
    int consecutive = 0;    // failures since its last stable run: the backoff step
    bool retired = false;
  };
  const backoff_policy& backoff_of(const child_record& c) const {
    return c.config.backoff ? *c.config.backoff : backoff_;
  }
  std::vector<std::size_t> group_of(std::size_t slot) const;

  restart_policy policy_;
  int intensity_;
  std::chrono::milliseconds period_;
  backoff_policy backoff_;
  restart_window tree_window_;  // every restart of the supervisor's children (intensity)
  std::vector<child_record> children_;
};

}  // namespace procsup
