// The restart decision without a fork (restart_governor): examples of each rule, then seeded
// random failure sequences checked step by step against a small reference model of intensity,
// own budgets, backoff and group choice. A failing sequence names its seed and step.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "procsup/supervisor/restart_governor.hpp"

namespace {

using namespace std::chrono_literals;
using procsup::backoff_policy;
using procsup::restart_decision;
using procsup::restart_governor;
using procsup::restart_policy;
using procsup::strategy;
using ms = std::chrono::milliseconds;
using kind = restart_decision::kind;
using slots = std::vector<std::size_t>;
using waves = std::vector<std::vector<std::size_t>>;

const auto t0 = std::chrono::steady_clock::time_point{} + 1h;

restart_governor::ending crash(std::chrono::steady_clock::duration uptime = 0s) { return {.clean = false, .uptime = uptime}; }
restart_governor::ending clean_exit(std::chrono::steady_clock::duration uptime = 0s) { return {.clean = true, .uptime = uptime}; }

backoff_policy backoff(ms initial, ms step, ms max, ms reset_after) {
  backoff_policy b;
  b.initial = initial;
  b.step = step;
  b.max = max;
  b.reset_after = reset_after;
  return b;
}

// A governor with `n` children of strategy restart.
restart_governor with_children(std::size_t n, restart_policy policy = restart_policy::one_for_one, int intensity = 10,
                               ms period = 10s, backoff_policy bo = {}) {
  restart_governor g(policy, intensity, period, bo);
  for (std::size_t i = 0; i < n; ++i) g.add({});
  return g;
}

// ---- strategies and clean exits

TEST(restart_governor, a_clean_exit_stays_stopped_unless_the_child_restarts_on_exit) {
  restart_governor g = with_children(0);
  const auto plain = g.add({});
  const auto again = g.add({.restart_on_exit = true});
  const auto d = g.decide(plain, clean_exit(), t0);
  EXPECT_EQ(d.what, kind::stop);
  EXPECT_TRUE(d.clean);
  EXPECT_EQ(g.restarts_in_window(t0), 0);  // no restart: nothing spent
  EXPECT_EQ(g.decide(again, clean_exit(), t0).what, kind::restart);
  EXPECT_EQ(g.restarts_in_window(t0), 1);
}

TEST(restart_governor, strategies_stop_and_escalate_answer_without_spending_any_budget) {
  restart_governor g(restart_policy::one_for_all, 1, 10s, {});
  const auto stops = g.add({.on_failure = strategy::stop});
  const auto escalates = g.add({.on_failure = strategy::escalate, .own_budget = true, .max_restarts = 0});
  for (int i = 0; i < 3; ++i) {
    const auto s = g.decide(stops, crash(), t0);
    EXPECT_EQ(s.what, kind::stop);
    EXPECT_FALSE(s.clean);
    EXPECT_EQ(g.decide(escalates, crash(), t0).what, kind::escalate);
  }
  EXPECT_EQ(g.restarts_in_window(t0), 0);
}

TEST(restart_governor, a_changed_strategy_applies_to_the_next_failure) {
  restart_governor g = with_children(1);
  g.set_strategy(0, strategy::escalate);
  EXPECT_EQ(g.strategy_of(0), strategy::escalate);
  EXPECT_EQ(g.decide(0, crash(), t0).what, kind::escalate);
  g.set_strategy(0, strategy::restart);
  EXPECT_EQ(g.decide(0, crash(), t0).what, kind::restart);
}

// ---- intensity and own budgets

TEST(restart_governor, more_restarts_than_the_intensity_within_the_period_gives_up) {
  restart_governor g = with_children(2, restart_policy::one_for_one, 3, 10s);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(g.decide(i % 2, crash(), t0 + i * 1s).what, kind::restart) << i;
  const auto d = g.decide(0, crash(), t0 + 3s);
  EXPECT_EQ(d.what, kind::give_up);
  EXPECT_EQ(d.limit, (restart_decision::budget{3, 10s}));
  EXPECT_EQ(d.limit.describe(), "more than 3 restarts in 10000 ms");
}

TEST(restart_governor, restarts_older_than_the_period_no_longer_count_toward_the_intensity) {
  restart_governor g = with_children(1, restart_policy::one_for_one, 2, 10s);
  EXPECT_EQ(g.decide(0, crash(), t0).what, kind::restart);
  EXPECT_EQ(g.decide(0, crash(), t0 + 5s).what, kind::restart);
  EXPECT_EQ(g.decide(0, crash(), t0 + 10s).what, kind::give_up);  // t0 is exactly 10 s old: still in
  EXPECT_EQ(g.decide(0, crash(), t0 + 10s + 1ms).what, kind::restart);
  EXPECT_EQ(g.restarts_in_window(t0 + 10s + 1ms), 2);
}

TEST(restart_governor, an_intensity_of_zero_gives_up_on_the_first_failure) {
  restart_governor g = with_children(1, restart_policy::one_for_one, 0, 10s);
  EXPECT_EQ(g.decide(0, crash(), t0).what, kind::give_up);
}

TEST(restart_governor, a_child_over_its_own_budget_goes_fatal_alone_and_spends_none_of_the_trees_intensity) {
  restart_governor g(restart_policy::one_for_all, 10, 10s, {});
  const auto looping = g.add({.own_budget = true, .max_restarts = 2, .restart_period = 1s});
  const auto sibling = g.add({});
  EXPECT_EQ(g.decide(looping, crash(), t0).what, kind::restart);
  EXPECT_EQ(g.decide(looping, crash(), t0 + 100ms).what, kind::restart);
  EXPECT_EQ(g.restarts_in_window(t0 + 100ms), 2);  // its restarts count toward the tree's too
  const auto d = g.decide(looping, crash(), t0 + 200ms);
  EXPECT_EQ(d.what, kind::fatal);
  EXPECT_EQ(d.limit, (restart_decision::budget{2, 1s}));
  EXPECT_TRUE(d.group.empty());  // a fatal child takes no sibling along
  EXPECT_EQ(g.restarts_in_window(t0 + 200ms), 2);
  EXPECT_EQ(g.decide(sibling, crash(), t0 + 300ms).what, kind::restart);
}

TEST(restart_governor, an_own_budget_without_limits_follows_the_supervisors_intensity_and_period) {
  restart_governor g(restart_policy::one_for_one, 1, 5s, {});
  const auto c = g.add({.own_budget = true});
  EXPECT_EQ(g.decide(c, crash(), t0).what, kind::restart);
  const auto d = g.decide(c, crash(), t0 + 1s);
  EXPECT_EQ(d.what, kind::fatal);  // the own budget is asked first
  EXPECT_EQ(d.limit, (restart_decision::budget{1, 5s}));
}

TEST(restart_governor, the_trees_intensity_still_applies_to_a_child_within_its_own_budget) {
  restart_governor g(restart_policy::one_for_one, 1, 10s, {});
  const auto c = g.add({.own_budget = true, .max_restarts = 5});
  EXPECT_EQ(g.decide(c, crash(), t0).what, kind::restart);
  EXPECT_EQ(g.decide(c, crash(), t0 + 1s).what, kind::give_up);
}

TEST(restart_governor, a_reset_by_hand_gives_a_fatal_child_its_budget_and_backoff_back) {
  restart_governor g(restart_policy::one_for_one, 10, 10s, backoff(0ms, 100ms, 30s, 10s));
  const auto c = g.add({.own_budget = true, .max_restarts = 1});
  EXPECT_EQ(g.decide(c, crash(), t0).what, kind::restart);
  EXPECT_EQ(g.decide(c, crash(), t0).what, kind::fatal);
  g.reset(c);  // ctl start
  EXPECT_EQ(g.consecutive_failures(c), 0);
  const auto d = g.decide(c, crash(), t0);
  EXPECT_EQ(d.what, kind::restart);
  EXPECT_EQ(d.delay, 0ms);  // the first failure after a reset is immediate again
}

TEST(restart_governor, restarting_the_whole_supervisor_clears_its_intensity_window) {
  restart_governor g = with_children(1, restart_policy::one_for_one, 1, 10s);
  EXPECT_EQ(g.decide(0, crash(), t0).what, kind::restart);
  EXPECT_EQ(g.decide(0, crash(), t0).what, kind::give_up);
  g.reset_all();
  EXPECT_EQ(g.restarts_in_window(t0), 0);
  EXPECT_EQ(g.decide(0, crash(), t0).what, kind::restart);
}

TEST(restart_governor, new_limits_keep_the_restarts_already_counted) {
  restart_governor g = with_children(1, restart_policy::one_for_one, 5, 10s);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(g.decide(0, crash(), t0).what, kind::restart);
  g.set_limits(restart_policy::one_for_all, 3, 10s);
  EXPECT_EQ(g.policy(), restart_policy::one_for_all);
  EXPECT_EQ(g.decide(0, crash(), t0).what, kind::give_up);
}

// ---- backoff

TEST(restart_governor, backoff_is_immediate_after_a_stable_run_then_doubles_from_the_step_up_to_the_cap) {
  restart_governor g = with_children(1, restart_policy::one_for_one, 100, 10s, backoff(0ms, 100ms, 1s, 10s));
  std::vector<ms> delays;
  for (int i = 0; i < 7; ++i) delays.push_back(g.decide(0, crash(1s), t0).delay);
  EXPECT_EQ(delays, (std::vector<ms>{0ms, 100ms, 200ms, 400ms, 800ms, 1s, 1s}));
}

TEST(restart_governor, backoff_starts_from_initial_when_it_is_above_the_step) {
  restart_governor g = with_children(1, restart_policy::one_for_one, 100, 10s, backoff(300ms, 100ms, 1s, 10s));
  std::vector<ms> delays;
  for (int i = 0; i < 4; ++i) delays.push_back(g.decide(0, crash(), t0).delay);
  EXPECT_EQ(delays, (std::vector<ms>{300ms, 300ms, 600ms, 1s}));
}

TEST(restart_governor, a_run_as_long_as_reset_after_counts_as_stable_and_resets_the_backoff) {
  restart_governor g = with_children(1, restart_policy::one_for_one, 100, 10s, backoff(0ms, 100ms, 30s, 5s));
  EXPECT_EQ(g.decide(0, crash(), t0).delay, 0ms);
  EXPECT_EQ(g.decide(0, crash(), t0).delay, 100ms);
  EXPECT_EQ(g.decide(0, crash(4999ms), t0).delay, 200ms);
  EXPECT_EQ(g.decide(0, crash(5s), t0).delay, 0ms);
  EXPECT_EQ(g.consecutive_failures(0), 1);
}

TEST(restart_governor, a_childs_own_backoff_replaces_the_supervisors) {
  restart_governor g(restart_policy::one_for_one, 100, 10s, backoff(0ms, 100ms, 30s, 10s));
  const auto c = g.add({.backoff = backoff(50ms, 50ms, 60ms, 10s)});
  std::vector<ms> delays;
  for (int i = 0; i < 3; ++i) delays.push_back(g.decide(c, crash(), t0).delay);
  EXPECT_EQ(delays, (std::vector<ms>{50ms, 50ms, 60ms}));
}

TEST(restart_governor, a_launch_refused_for_now_backs_off_at_least_10_ms_and_spends_no_budget) {
  restart_governor g(restart_policy::one_for_one, 0, 10s, backoff(0ms, 100ms, 30s, 10s));
  const auto c = g.add({.own_budget = true, .max_restarts = 0});
  EXPECT_EQ(g.retry_delay(c), 10ms);  // backoff says 0: at least 10 ms
  EXPECT_EQ(g.retry_delay(c), 100ms);
  EXPECT_EQ(g.retry_delay(c), 200ms);
  EXPECT_EQ(g.restarts_in_window(t0), 0);
}

// ---- group choice and stop waves

TEST(restart_governor, one_for_one_restarts_only_the_failed_child_and_stops_no_sibling) {
  restart_governor g = with_children(4, restart_policy::one_for_one);
  const auto d = g.decide(2, crash(), t0);
  EXPECT_EQ(d.group, (slots{2}));
  EXPECT_TRUE(d.stop_first.empty());
}

TEST(restart_governor, one_for_all_restarts_every_child_and_stops_the_others_last_started_first) {
  restart_governor g = with_children(4, restart_policy::one_for_all);
  const auto d = g.decide(1, crash(), t0);
  EXPECT_EQ(d.group, (slots{0, 1, 2, 3}));
  EXPECT_EQ(d.stop_first, (waves{{3}, {2}, {0}}));
}

TEST(restart_governor, rest_for_one_takes_along_the_children_started_after_the_failed_one) {
  restart_governor g = with_children(4, restart_policy::rest_for_one);
  const auto d = g.decide(1, crash(), t0);
  EXPECT_EQ(d.group, (slots{1, 2, 3}));
  EXPECT_EQ(d.stop_first, (waves{{3}, {2}}));
  EXPECT_EQ(g.decide(3, crash(), t0).group, (slots{3}));
}

TEST(restart_governor, a_removed_child_is_never_taken_along_and_stays_down) {
  restart_governor g = with_children(4, restart_policy::one_for_all);
  g.retire(2);
  EXPECT_EQ(g.strategy_of(2), strategy::stop);
  const auto d = g.decide(0, crash(), t0);
  EXPECT_EQ(d.group, (slots{0, 1, 3}));
  EXPECT_EQ(d.stop_first, (waves{{3}, {1}}));
  EXPECT_EQ(g.decide(2, crash(), t0).what, kind::stop);
}

TEST(restart_governor, neighbours_of_one_stop_group_stop_in_one_wave) {
  restart_governor g(restart_policy::one_for_all, 10, 10s, {});
  g.add({.stop_group = "db"});
  g.add({.stop_group = "web"});
  g.add({.stop_group = "web"});
  g.add({});
  g.add({});
  g.add({.stop_group = "web"});  // not a neighbour of the others: a wave of its own
  const auto d = g.decide(0, crash(), t0);
  EXPECT_EQ(d.stop_first, (waves{{5}, {4}, {3}, {2, 1}}));
  EXPECT_EQ(g.stop_waves({5, 4, 3, 2, 1, 0}), (waves{{5}, {4}, {3}, {2, 1}, {0}}));
  EXPECT_TRUE(g.stop_waves({}).empty());
}

TEST(restart_governor, every_decision_kind_has_a_name) {
  for (auto k : {kind::restart, kind::stop, kind::escalate, kind::fatal, kind::give_up})
    EXPECT_STRNE(procsup::to_string(k), "?");
}

// ---- backoff_policy::delay, over random policies

// delay(n) in closed form: initial for the first failure, then max(initial, step) * 2^(n-2), at
// most `max`.
ms reference_delay(const backoff_policy& b, int n) {
  if (n <= 1) return b.initial;
  const std::int64_t base = std::max(b.initial, b.step).count();
  if (base >= b.max.count()) return std::min(ms(base), b.max);
  if (base == 0) return 0ms;
  const int k = n - 2;
  if (k >= 40) return b.max;
  return ms(std::min<std::int64_t>(base << k, b.max.count()));
}

TEST(backoff_policy, the_delay_matches_its_closed_form_and_never_exceeds_the_cap) {
  std::mt19937 rng(19);
  auto pick = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int round = 0; round < 2000; ++round) {
    const auto b = backoff(ms(pick(0, 3) == 0 ? 0 : pick(0, 2000)), ms(pick(0, 500)), ms(pick(0, 60'000)), 10s);
    ms previous{0};
    for (int n = 0; n < 70; ++n) {
      const ms d = b.delay(n);
      ASSERT_EQ(d, reference_delay(b, n)) << "initial " << b.initial.count() << " step " << b.step.count() << " max "
                                          << b.max.count() << " n " << n;
      if (n >= 2) {
        EXPECT_LE(d, std::max(b.max, b.initial));
        if (n >= 3) {
          EXPECT_GE(d, previous);  // grows (or holds) while failures continue
        }
      }
      previous = d;
    }
  }
}

// ---- random failure sequences against a reference model

// The rules, written as plainly as possible: budgets as lists of times, groups as filters.
struct model {
  struct child {
    restart_governor::child_config config;
    std::vector<std::chrono::steady_clock::time_point> budget;
    int consecutive = 0;
    bool retired = false;
  };
  restart_policy policy;
  int intensity;
  ms period;
  backoff_policy backoff;
  std::vector<std::chrono::steady_clock::time_point> tree;
  std::vector<child> children;

  // Restarts more than `within` old are forgotten, for good: a period lengthened later (a
  // reload) does not bring them back.
  static int recent(std::vector<std::chrono::steady_clock::time_point>& spent, std::chrono::steady_clock::time_point now,
                    ms within) {
    std::erase_if(spent, [&](auto t) { return now - t > within; });
    return static_cast<int>(spent.size());
  }
  // Spends one restart from `spent` if fewer than `max` are recent.
  static bool spend(std::vector<std::chrono::steady_clock::time_point>& spent, std::chrono::steady_clock::time_point now,
                    int max, ms within) {
    if (recent(spent, now, within) >= max) return false;
    spent.push_back(now);
    return true;
  }
  const backoff_policy& backoff_of(const child& c) const { return c.config.backoff ? *c.config.backoff : backoff; }

  restart_decision decide(std::size_t slot, restart_governor::ending how, std::chrono::steady_clock::time_point now) {
    child& c = children[slot];
    restart_decision d;
    if (how.clean && !c.config.restart_on_exit) {
      d.what = kind::stop;
      d.clean = true;
      return d;
    }
    if (c.config.on_failure == strategy::stop) {
      d.what = kind::stop;
      return d;
    }
    if (c.config.on_failure == strategy::escalate) {
      d.what = kind::escalate;
      return d;
    }
    const int own_max = c.config.max_restarts.value_or(intensity);
    const ms own_period = c.config.restart_period.value_or(period);
    if (c.config.own_budget && !spend(c.budget, now, own_max, own_period)) {
      d.what = kind::fatal;
      d.limit = {own_max, own_period};
      return d;
    }
    if (!spend(tree, now, intensity, period)) {
      d.what = kind::give_up;
      d.limit = {intensity, period};
      return d;
    }
    const auto& bo = backoff_of(c);
    c.consecutive = how.uptime >= bo.reset_after ? 1 : c.consecutive + 1;
    d.what = kind::restart;
    d.delay = reference_delay(bo, c.consecutive);
    for (std::size_t i = 0; i < children.size(); ++i) {
      const bool in_policy = policy == restart_policy::one_for_all || i == slot ||
                             (policy == restart_policy::rest_for_one && i > slot);
      if (in_policy && !children[i].retired) d.group.push_back(i);
    }
    // The siblings, last started first, cut into runs of one non-empty stop group.
    for (auto it = d.group.rbegin(); it != d.group.rend(); ++it) {
      if (*it == slot) continue;
      const std::string& sg = children[*it].config.stop_group;
      if (!d.stop_first.empty() && !sg.empty() && children[d.stop_first.back().back()].config.stop_group == sg)
        d.stop_first.back().push_back(*it);
      else
        d.stop_first.push_back({*it});
    }
    return d;
  }
  ms retry_delay(std::size_t slot) {
    child& c = children[slot];
    ++c.consecutive;
    return std::max(reference_delay(backoff_of(c), c.consecutive), ms(10));
  }
};

std::string describe(const restart_decision& d) {
  std::ostringstream o;
  o << procsup::to_string(d.what) << " delay=" << d.delay.count() << " clean=" << d.clean << " limit=" << d.limit.max_restarts
    << "/" << d.limit.period.count() << " group={";
  for (auto i : d.group) o << i << ' ';
  o << "} stop_first={";
  for (const auto& w : d.stop_first) {
    o << '[';
    for (auto i : w) o << i << ' ';
    o << ']';
  }
  o << '}';
  return o.str();
}

TEST(restart_governor, random_failure_sequences_get_the_reference_models_answer_at_every_step) {
  int restarts = 0, gave_up = 0, fatal = 0, escalated = 0, stopped = 0;
  for (unsigned seed = 1; seed <= 300; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    auto random_backoff = [&] {
      return backoff(ms(pick(0, 1) * pick(0, 300)), ms(pick(0, 200)), ms(pick(0, 5'000)), ms(pick(1, 4) * 500));
    };
    const restart_policy policies[] = {restart_policy::one_for_one, restart_policy::one_for_all, restart_policy::rest_for_one};
    const auto policy = policies[pick(0, 2)];
    const int intensity = pick(0, 8);
    const ms period(pick(1, 40) * 100);
    const backoff_policy bo = random_backoff();
    restart_governor g(policy, intensity, period, bo);
    model m{policy, intensity, period, bo, {}, {}};

    const std::string stop_groups[] = {"", "", "a", "b"};
    const strategy strategies[] = {strategy::restart, strategy::restart, strategy::restart, strategy::stop, strategy::escalate};
    auto random_child = [&] {
      restart_governor::child_config c;
      c.on_failure = strategies[pick(0, 4)];
      c.restart_on_exit = pick(0, 2) == 0;
      if (pick(0, 2) == 0) c.backoff = random_backoff();
      c.own_budget = pick(0, 1) == 0;
      if (pick(0, 1) == 0) c.max_restarts = pick(0, 5);
      if (pick(0, 1) == 0) c.restart_period = ms(pick(1, 30) * 100);
      c.stop_group = stop_groups[pick(0, 3)];
      return c;
    };
    auto add_child = [&] {
      const auto c = random_child();
      ASSERT_EQ(g.add(c), m.children.size());
      m.children.push_back({c, {}, 0, false});
    };
    for (int i = pick(1, 6); i > 0; --i) add_child();

    auto now = t0;
    for (int step = 0; step < 200; ++step) {
      SCOPED_TRACE("seed " + std::to_string(seed) + " step " + std::to_string(step));
      const auto slot = static_cast<std::size_t>(pick(0, static_cast<int>(m.children.size()) - 1));
      now += ms(pick(0, 3) == 0 ? pick(0, 3'000) : pick(0, 50));
      switch (pick(0, 19)) {
        case 0: add_child(); break;
        case 1:
          g.retire(slot);
          m.children[slot].retired = true;
          m.children[slot].config.on_failure = strategy::stop;
          break;
        case 2:
          g.reset(slot);
          m.children[slot].consecutive = 0;
          m.children[slot].budget.clear();
          break;
        case 3: {
          const auto s = strategies[pick(0, 4)];
          g.set_strategy(slot, s);
          m.children[slot].config.on_failure = s;
          break;
        }
        case 4:
          ASSERT_EQ(g.retry_delay(slot), m.retry_delay(slot));
          break;
        case 5: {
          const auto p = policies[pick(0, 2)];
          const int i = pick(0, 8);
          const ms w(pick(1, 40) * 100);
          g.set_limits(p, i, w);
          m.policy = p;
          m.intensity = i;
          m.period = w;
          break;
        }
        default: {
          const restart_governor::ending how{.clean = pick(0, 4) == 0, .uptime = ms(pick(0, 2'500))};
          const auto want = m.decide(slot, how, now);
          const auto got = g.decide(slot, how, now);
          ASSERT_EQ(describe(got), describe(want)) << "child " << slot << (how.clean ? " exited cleanly" : " crashed")
                                                   << " after " << std::chrono::duration_cast<ms>(how.uptime).count()
                                                   << " ms";
          switch (got.what) {
            case kind::restart: ++restarts; break;
            case kind::stop: ++stopped; break;
            case kind::escalate: ++escalated; break;
            case kind::fatal: ++fatal; break;
            case kind::give_up: {
              ++gave_up;
              // The supervisor goes down; its parent starts it again with a clean slate (or not yet).
              if (pick(0, 1) == 0) {
                g.reset_all();
                m.tree.clear();
                for (auto& c : m.children) {
                  c.consecutive = 0;
                  c.budget.clear();
                }
              }
              break;
            }
          }
          ASSERT_EQ(g.restarts_in_window(now), model::recent(m.tree, now, m.period));
          ASSERT_EQ(g.consecutive_failures(slot), m.children[slot].consecutive);
        }
      }
      ASSERT_EQ(g.size(), m.children.size());
    }
  }
  std::printf("answers: %d restart, %d stop, %d escalate, %d fatal, %d give_up\n", restarts, stopped, escalated, fatal,
              gave_up);
  // The sequences reached every answer often (a generator stuck on one path would test little).
  EXPECT_GT(restarts, 5000);
  EXPECT_GT(gave_up, 500);
  EXPECT_GT(fatal, 200);
  EXPECT_GT(escalated, 200);
  EXPECT_GT(stopped, 500);
}

}  // namespace
