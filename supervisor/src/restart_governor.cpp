// The restart decision (restart_governor.hpp): strategy, own budget, intensity, backoff, group.
#include "procsup/supervisor/restart_governor.hpp"

#include <algorithm>
#include <utility>

namespace procsup {

std::string restart_decision::budget::describe() const {
  return "more than " + std::to_string(max_restarts) + " restarts in " + std::to_string(period.count()) + " ms";
}

const char* to_string(restart_decision::kind k) noexcept {
  switch (k) {
    case restart_decision::kind::restart: return "restart";
    case restart_decision::kind::stop: return "stop";
    case restart_decision::kind::escalate: return "escalate";
    case restart_decision::kind::fatal: return "fatal";
    case restart_decision::kind::give_up: return "give_up";
  }
  return "?";
}

restart_governor::restart_governor(restart_policy policy, int intensity, std::chrono::milliseconds period,
                                   backoff_policy backoff)
    : policy_(policy), intensity_(intensity), period_(period), backoff_(backoff) {}

std::size_t restart_governor::add(child_config child) {
  children_.push_back(child_record{std::move(child), {}, 0, false});
  return children_.size() - 1;
}

restart_decision restart_governor::decide(std::size_t slot, ending how, time_point now) {
  child_record& c = children_.at(slot);
  restart_decision d;
  if (how.clean && !c.config.restart_on_exit) {
    d.what = restart_decision::kind::stop;
    d.clean = true;
    return d;
  }
  switch (c.config.on_failure) {
    case strategy::stop: d.what = restart_decision::kind::stop; return d;
    case strategy::escalate: d.what = restart_decision::kind::escalate; return d;
    case strategy::restart: break;
  }
  // The child's own budget first: a crash-looping program goes fatal alone (supervisord's
  // FATAL) instead of spending the whole tree's intensity.
  if (c.config.own_budget) {
    const restart_decision::budget own{c.config.max_restarts.value_or(intensity_), c.config.restart_period.value_or(period_)};
    if (!c.budget.try_spend(now, own.max_restarts, own.period)) {
      d.what = restart_decision::kind::fatal;
      d.limit = own;
      return d;
    }
  }
  if (!tree_window_.try_spend(now, intensity_, period_)) {
    d.what = restart_decision::kind::give_up;
    d.limit = {intensity_, period_};
    return d;
  }
  const backoff_policy& bo = backoff_of(c);
  c.consecutive = how.uptime >= bo.reset_after ? 1 : c.consecutive + 1;
  d.what = restart_decision::kind::restart;
  d.delay = bo.delay(c.consecutive);
  d.group = group_of(slot);
  std::vector<std::size_t> siblings;  // reverse start order: the last started stops first
  for (auto it = d.group.rbegin(); it != d.group.rend(); ++it)
    if (*it != slot) siblings.push_back(*it);
  d.stop_first = stop_waves(siblings);
  return d;
}

std::vector<std::size_t> restart_governor::group_of(std::size_t slot) const {
  std::size_t first = slot;
  std::size_t last = slot + 1;
  switch (policy_) {
    case restart_policy::one_for_one: break;
    case restart_policy::one_for_all: first = 0; last = children_.size(); break;
    case restart_policy::rest_for_one: last = children_.size(); break;
  }
  std::vector<std::size_t> group;
  for (std::size_t i = first; i < last; ++i)
    if (!children_[i].retired) group.push_back(i);
  return group;
}

std::chrono::milliseconds restart_governor::retry_delay(std::size_t slot) {
  child_record& c = children_.at(slot);
  ++c.consecutive;
  return std::max(backoff_of(c).delay(c.consecutive), std::chrono::milliseconds(10));
}

void restart_governor::reset(std::size_t slot) {
  child_record& c = children_.at(slot);
  c.consecutive = 0;
  c.budget.clear();
}

void restart_governor::reset_all() {
  tree_window_.clear();
  for (auto& c : children_) {
    c.consecutive = 0;
    c.budget.clear();
  }
}

void restart_governor::retire(std::size_t slot) {
  child_record& c = children_.at(slot);
  c.retired = true;
  c.config.on_failure = strategy::stop;
}

void restart_governor::set_limits(restart_policy policy, int intensity, std::chrono::milliseconds period) {
  policy_ = policy;
  intensity_ = intensity;
  period_ = period;
}

std::vector<std::vector<std::size_t>> restart_governor::stop_waves(const std::vector<std::size_t>& order) const {
  std::vector<std::vector<std::size_t>> waves;
  for (std::size_t k = 0; k < order.size();) {
    const std::string& group = children_.at(order[k]).config.stop_group;
    std::size_t end = k + 1;
    if (!group.empty())
      while (end < order.size() && children_.at(order[end]).config.stop_group == group) ++end;
    waves.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(k), order.begin() + static_cast<std::ptrdiff_t>(end));
    k = end;
  }
  return waves;
}

}  // namespace procsup
