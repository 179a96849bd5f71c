// The unit's transition table (detail/unit_phase.hpp) without a fork: every row of the table in
// the header, and properties over all phase × event pairs.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "procsup/supervisor/detail/unit_phase.hpp"

namespace {

using namespace procsup;
using namespace procsup::detail;
using P = unit_phase;
using E = unit_event;
using A = unit_action;
using K = exit_decision::kind;

std::vector<P> all_phases() {
  std::vector<P> v;
  for (int i = 0; i < unit_phase_count; ++i) v.push_back(static_cast<P>(i));
  return v;
}
std::vector<E> all_events() {
  std::vector<E> v;
  for (int i = 0; i < unit_event_count; ++i) v.push_back(static_cast<E>(i));
  return v;
}

const std::vector<P> live{P::starting, P::running, P::exiting};
const std::vector<P> stopping{P::stop_shutdown, P::stop_sigterm, P::stop_sigkill};
const std::vector<P> down{P::idle, P::restarting, P::stopped, P::failed, P::fatal};

step_facts facts(stop_goal goal = stop_goal::stopped, bool frame = false, bool leftovers = false,
                 K decided = K::final_failed) {
  step_facts f;
  f.goal = goal;
  f.shutdown_frame_sent = frame;
  f.leftovers = leftovers;
  f.decided = decided;
  return f;
}

struct row {
  P from;
  E ev;
  step_facts f;
  P next;
  A action;
};

std::string name(const row& r) {
  return std::string(to_string(r.from)) + " × " + to_string(r.ev);
}

// The table of the header, row by row (the rows with a group of phases, expanded).
std::vector<row> table() {
  std::vector<row> rows;
  for (P p : down) {
    rows.push_back({p, E::launch, facts(), P::starting, A::start});
    rows.push_back({p, E::launch_failed, facts(stop_goal::stopped, false, false, K::restart), P::restarting, A::end_launch});
    rows.push_back({p, E::launch_failed, facts(stop_goal::stopped, false, false, K::final_failed), P::failed, A::end_launch});
    rows.push_back({p, E::will_restart, facts(), P::restarting, A::queue_sends});
    rows.push_back({p, E::stop_requested, facts(stop_goal::restart), P::restarting, A::stop_now});
  }
  rows.push_back({P::idle, E::stop_requested, facts(), P::stopped, A::stop_now});
  rows.push_back({P::restarting, E::stop_requested, facts(), P::stopped, A::stop_now});
  rows.push_back({P::stopped, E::stop_requested, facts(), P::stopped, A::stop_now});
  rows.push_back({P::failed, E::stop_requested, facts(), P::failed, A::stop_now});
  rows.push_back({P::fatal, E::stop_requested, facts(), P::fatal, A::stop_now});

  rows.push_back({P::starting, E::ready, facts(), P::running, A::become_ready});
  rows.push_back({P::starting, E::start_timeout, facts(), P::starting, A::kill});
  rows.push_back({P::starting, E::setup_failed, facts(), P::setup_failed, A::remember_setup});
  rows.push_back({P::running, E::hang_timeout, facts(), P::running, A::kill});
  rows.push_back({P::running, E::error_frame, facts(), P::exiting, A::queue_sends});
  for (P p : live) {
    rows.push_back({p, E::corrupt_channel, facts(), p, A::kill});
    rows.push_back({p, E::will_restart, facts(), P::exiting, A::queue_sends});
    rows.push_back({p, E::stop_requested, facts(stop_goal::stopped, true), P::stop_shutdown, A::ask_stop});
    rows.push_back({p, E::stop_requested, facts(stop_goal::stopped, false), P::stop_sigterm, A::ask_stop});
    rows.push_back({p, E::stop_requested, facts(stop_goal::restart, true), P::stop_shutdown, A::ask_stop});
    rows.push_back({p, E::exited, facts(stop_goal::stopped, false, false, K::restart), P::restarting, A::end_instance});
    rows.push_back({p, E::exited, facts(stop_goal::stopped, false, false, K::final_stopped), P::stopped, A::end_instance});
    rows.push_back({p, E::exited, facts(stop_goal::stopped, false, false, K::final_failed), P::failed, A::end_instance});
    rows.push_back({p, E::exited, facts(stop_goal::stopped, false, false, K::fatal), P::fatal, A::end_instance});
  }
  rows.push_back({P::setup_failed, E::stop_requested, facts(), P::stop_sigterm, A::ask_stop});
  rows.push_back({P::setup_failed, E::exited, facts(stop_goal::stopped, false, false, K::restart), P::restarting, A::end_launch});
  rows.push_back({P::setup_failed, E::exited, facts(stop_goal::stopped, false, false, K::final_failed), P::failed, A::end_launch});

  rows.push_back({P::stop_shutdown, E::stop_timeout, facts(), P::stop_sigterm, A::escalate_sigterm});
  rows.push_back({P::stop_sigterm, E::stop_timeout, facts(), P::stop_sigkill, A::escalate_sigkill});
  for (P p : stopping) {
    rows.push_back({p, E::stop_requested, facts(stop_goal::restart), p, A::retarget_stop});
    rows.push_back({p, E::exited, facts(stop_goal::stopped, false, true), P::stop_cgroup, A::wait_cgroup});
    rows.push_back({p, E::exited, facts(stop_goal::stopped), P::stopped, A::end_stop});
    rows.push_back({p, E::exited, facts(stop_goal::restart), P::restarting, A::end_stop});
  }
  rows.push_back({P::stop_cgroup, E::cgroup_empty, facts(stop_goal::stopped), P::stopped, A::end_stop});
  rows.push_back({P::stop_cgroup, E::cgroup_empty, facts(stop_goal::restart), P::restarting, A::end_stop});
  rows.push_back({P::stop_cgroup, E::stop_timeout, facts(stop_goal::stopped), P::stopped, A::kill_cgroup_end});
  rows.push_back({P::stop_cgroup, E::stop_requested, facts(), P::stop_cgroup, A::retarget_stop});
  for (P p : all_phases())
    if (has_instance(p)) rows.push_back({p, E::kill_requested, facts(), p, A::kill});
  return rows;
}

TEST(unit_phase_table, every_row_of_the_header_table_holds) {
  for (const row& r : table()) {
    const unit_transition t = unit_step(r.from, r.ev, r.f);
    EXPECT_EQ(t.next, r.next) << name(r) << ": to " << to_string(t.next);
    EXPECT_EQ(t.action, r.action) << name(r) << ": " << to_string(t.action);
  }
}

TEST(unit_phase_table, a_pair_not_in_the_table_is_ignored_and_keeps_the_phase) {
  const auto rows = table();
  int ignored = 0;
  for (P p : all_phases())
    for (E e : all_events()) {
      bool listed = false;
      for (const row& r : rows) listed = listed || (r.from == p && r.ev == e);
      if (listed) continue;
      for (bool frame : {false, true})
        for (bool left : {false, true})
          for (stop_goal g : {stop_goal::stopped, stop_goal::restart}) {
            const auto t = unit_step(p, e, facts(g, frame, left, K::restart));
            EXPECT_EQ(t, (unit_transition{p, A::none})) << to_string(p) << " × " << to_string(e);
          }
      ++ignored;
    }
  // Stale timers and frames of an instance that is going: ready while stopping, a start timeout
  // once running, an exit with no instance...
  EXPECT_GT(ignored, 50);
}

TEST(unit_phase_table, only_a_launch_leaves_a_down_phase_for_one_with_an_instance) {
  for (P p : down)
    for (E e : all_events())
      for (K k : {K::restart, K::final_stopped, K::final_failed, K::fatal}) {
        const auto t = unit_step(p, e, facts(stop_goal::stopped, false, false, k));
        if (e == E::launch) EXPECT_TRUE(has_instance(t.next)) << to_string(p);
        else EXPECT_FALSE(has_instance(t.next)) << to_string(p) << " × " << to_string(e) << " → " << to_string(t.next);
      }
}

TEST(unit_phase_table, a_stop_ends_only_with_the_exit_or_an_empty_cgroup_and_never_restarts_on_its_own) {
  for (P p : {P::stop_shutdown, P::stop_sigterm, P::stop_sigkill, P::stop_cgroup})
    for (E e : all_events()) {
      const auto t = unit_step(p, e, facts(stop_goal::stopped));
      const bool left = !is_stop_phase(t.next);
      if (left) {
        EXPECT_TRUE(e == E::exited || e == E::cgroup_empty || (p == P::stop_cgroup && e == E::stop_timeout))
            << to_string(p) << " × " << to_string(e);
        EXPECT_EQ(t.next, P::stopped) << to_string(p) << " × " << to_string(e);
      }
    }
}

TEST(unit_phase_table, the_stop_escalates_shutdown_then_sigterm_then_sigkill) {
  P p = unit_step(P::running, E::stop_requested, facts(stop_goal::stopped, true)).next;
  std::vector<P> seen{p};
  for (int i = 0; i < 3; ++i) {
    p = unit_step(p, E::stop_timeout, facts()).next;
    seen.push_back(p);
  }
  EXPECT_EQ(seen, (std::vector<P>{P::stop_shutdown, P::stop_sigterm, P::stop_sigkill, P::stop_sigkill}));
  // A program (no shutdown frame) starts at its stop signal.
  EXPECT_EQ(unit_step(P::running, E::stop_requested, facts()).next, P::stop_sigterm);
}

TEST(unit_phase_table, the_public_state_of_each_phase) {
  EXPECT_EQ(public_state(P::idle, stop_goal::stopped), process_state::stopped);
  EXPECT_EQ(public_state(P::starting, stop_goal::stopped), process_state::starting);
  EXPECT_EQ(public_state(P::running, stop_goal::stopped), process_state::running);
  EXPECT_EQ(public_state(P::exiting, stop_goal::stopped), process_state::starting);
  EXPECT_EQ(public_state(P::setup_failed, stop_goal::stopped), process_state::starting);
  EXPECT_EQ(public_state(P::restarting, stop_goal::stopped), process_state::starting);
  for (P p : {P::stop_shutdown, P::stop_sigterm, P::stop_sigkill, P::stop_cgroup}) {
    EXPECT_EQ(public_state(p, stop_goal::stopped), process_state::stopping) << to_string(p);
    EXPECT_EQ(public_state(p, stop_goal::restart), process_state::starting) << to_string(p);
  }
  EXPECT_EQ(public_state(P::stopped, stop_goal::stopped), process_state::stopped);
  EXPECT_EQ(public_state(P::failed, stop_goal::stopped), process_state::failed);
  EXPECT_EQ(public_state(P::fatal, stop_goal::stopped), process_state::fatal);
}

TEST(unit_phase_table, every_phase_event_and_action_has_its_own_name) {
  std::vector<std::string> names;
  for (P p : all_phases()) names.push_back(to_string(p));
  for (std::size_t i = 0; i < names.size(); ++i)
    for (std::size_t j = i + 1; j < names.size(); ++j) EXPECT_NE(names[i], names[j]);
  for (E e : all_events()) EXPECT_STRNE(to_string(e), "?");
}

}  // namespace
