// A restart budget over a sliding time window: at most `max` restarts within `period`. Used for
// a supervisor's restart intensity (the whole tree) and for each program's own budget
// (max_restarts / restart_period). Pure: the caller passes the time, so tests need no clock.
#pragma once

#include <chrono>
#include <deque>

namespace procsup {

class restart_window {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  // Spends one restart at `now` if fewer than `max` were spent within the last `period`; false
  // (and nothing spent) when the budget is exhausted. Restarts older than `period` are forgotten.
  bool try_spend(time_point now, int max, std::chrono::milliseconds period) {
    forget_before(now, period);
    if (static_cast<int>(spent_.size()) >= max) return false;
    spent_.push_back(now);
    return true;
  }
  // Restarts spent within the last `period` before `now`.
  int spent(time_point now, std::chrono::milliseconds period) {
    forget_before(now, period);
    return static_cast<int>(spent_.size());
  }
  void clear() { spent_.clear(); }

 private:
  void forget_before(time_point now, std::chrono::milliseconds period) {
    while (!spent_.empty() && now - spent_.front() > period) spent_.pop_front();
  }
  std::deque<time_point> spent_;
};

}  // namespace procsup
