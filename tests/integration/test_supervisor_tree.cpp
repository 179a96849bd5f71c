// Supervision beyond one child: restart intensity, backoff, group policies, nested supervisors
// with escalation, and the lifecycle events that report all of it.
#include <gtest/gtest.h>

#include <future>
#include <map>

#include "helpers/supervisor_support.hpp"

namespace {

using namespace procsup;
using namespace procsup::testing;

// on_escalate as a future (called at most once per test; a second call is recorded, not thrown).
struct escalation {
  std::promise<std::string> promise;
  std::future<std::string> future = promise.get_future();
  std::atomic<int> calls{0};
  std::function<void(const std::string&)> callback() {
    return [this](const std::string& cause) {
      if (calls.fetch_add(1) == 0) promise.set_value(cause);
    };
  }
  bool wait() { return future.wait_for(k_wait) == std::future_status::ready; }
};

class restart_intensity : public supervisor_test {};

TEST_F(restart_intensity, too_many_restarts_within_the_period_give_up_stop_the_children_and_escalate) {
  shared_object<shared_state> steady_state, looper_state;
  looper_state->init_fails_from = 2;  // every restart fails in init(): a crash loop
  event_log log;
  escalation top;
  supervisor sup({.name = "limited",
                  .intensity = 2,
                  .period = 60'000ms,
                  .backoff = {.initial = 0ms, .step = 1ms},
                  .emit = log.sink(),
                  .on_escalate = top.callback(),
                  .log = false});
  auto steady = sup.spawn(commands{steady_state.get()}, {.name = "steady"});
  auto looper = sup.spawn(commands{looper_state.get()}, {.name = "looper"});
  ASSERT_EQ(::kill(looper.pid(), SIGKILL), 0);
  ASSERT_TRUE(top.wait()) << "on_escalate was not called";
  const std::string cause = top.future.get();
  EXPECT_TRUE(contains(cause, "restart intensity exceeded") && contains(cause, "looper")) << cause;
  ASSERT_TRUE(log.wait_for(event_kind::gave_up, "limited"));
  EXPECT_EQ(log.count(event_kind::restarting, "looper"), 2u);  // R = 2 restarts, the third failure gives up
  EXPECT_EQ(log.count(event_kind::escalated, "limited"), 1u);
  EXPECT_TRUE(sup.gave_up());
  EXPECT_EQ(steady_state->terminated.load(), 1);  // stopped gracefully
  for (auto& c : sup.children()) EXPECT_EQ(c.pid, 0) << c.id;
  EXPECT_EQ(steady.state(), process_state::stopped);
  EXPECT_EQ(looper.state(), process_state::failed);
  EXPECT_TRUE(contains(failure_of(steady.send("x")), "stopped"));
  EXPECT_EQ(top.calls.load(), 1);
  sup.stop();
}

TEST_F(restart_intensity, restarts_spread_over_more_than_the_period_do_not_give_up) {
  shared_object<shared_state> shared;
  event_log log;
  supervisor sup({.name = "spread", .intensity = 1, .period = 50ms, .emit = log.sink(), .log = false});
  auto p = sup.spawn(commands{shared.get()}, {.name = "occasional"});
  for (int i = 0; i < 3; ++i) {
    // Each instance lives at least 100 ms, so no two restarts fall within one 50 ms period.
    EXPECT_TRUE(contains(failure_of(p.send("sleep-crash:100")), "SIGSEGV"));
    EXPECT_EQ(value_of(p.send("x")), "ok:x");
  }
  EXPECT_FALSE(sup.gave_up());
  EXPECT_EQ(log.count(event_kind::gave_up), 0u);
  sup.stop();
}

class restart_backoff : public supervisor_test {};

TEST_F(restart_backoff, first_restart_is_immediate_delays_grow_in_a_crash_loop_and_reset_after_a_stable_run) {
  shared_object<shared_state> shared;
  shared->init_fails_from = 2;  // instances 2, 3, 4 fail in init(); 5 serves
  shared->init_fails_until = 4;
  event_log log;
  supervisor sup({.name = "backoff",
                  .intensity = 100,
                  .backoff = {.initial = 0ms, .step = 20ms, .max = 10'000ms, .reset_after = 1'000ms},
                  .emit = log.sink(),
                  .log = false});
  auto p = sup.spawn(commands{shared.get()}, {.name = "flaky"});
  ASSERT_EQ(::kill(p.pid(), SIGKILL), 0);
  ASSERT_TRUE(log.wait_for(event_kind::ready, "flaky", 2));  // the first spawn and instance 5
  EXPECT_EQ(value_of(p.send("x")), "ok:x");
  // Instance 5 now stays up longer than reset_after, then crashes: a fresh, immediate restart.
  EXPECT_TRUE(contains(failure_of(p.send("sleep-crash:1100")), "SIGSEGV"));
  ASSERT_TRUE(log.wait_for(event_kind::ready, "flaky", 3));
  std::vector<long> delays;
  for (auto& e : log.of(event_kind::restarting, "flaky")) delays.push_back(static_cast<long>(e.delay.count()));
  EXPECT_EQ(delays, (std::vector<long>{0, 20, 40, 80, 0}));
  EXPECT_EQ(shared->instances.load(), 6);
  sup.stop();
}

// ------------------------------------------------------------------ restart policies (groups)

struct policy_case {
  restart_policy policy;
  std::vector<bool> restarted;  // of children a, b, c when b crashes
};

class restart_policy_groups : public supervisor_test, public ::testing::WithParamInterface<policy_case> {};

TEST_P(restart_policy_groups, a_crash_of_the_middle_child_restarts_exactly_the_policys_group) {
  const auto param = GetParam();
  shared_object<shared_state> sa, sb, sc;
  event_log log;
  supervisor sup({.name = "group", .policy = param.policy, .emit = log.sink(), .log = false});
  std::vector<process<std::string, std::string>> kids;
  kids.push_back(sup.spawn(commands{sa.get()}, {.name = "a"}));
  kids.push_back(sup.spawn(commands{sb.get()}, {.name = "b"}));
  kids.push_back(sup.spawn(commands{sc.get()}, {.name = "c"}));
  std::vector<pid_t> before;
  for (auto& k : kids) before.push_back(k.pid());
  const std::size_t mark = log.size();
  ASSERT_EQ(::kill(before[1], SIGKILL), 0);
  const char* names[] = {"a", "b", "c"};
  for (std::size_t i = 0; i < 3; ++i)
    if (param.restarted[i]) {
      ASSERT_TRUE(log.wait_for(event_kind::ready, names[i], 1, mark)) << names[i];
    }
  // Every restarting event of the group was emitted before any of it started again.
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(log.count(event_kind::restarting, names[i], mark), param.restarted[i] ? 1u : 0u) << names[i];
    EXPECT_EQ(value_of(kids[i].send("x")), "ok:x") << names[i];
    if (param.restarted[i]) {
      EXPECT_NE(kids[i].pid(), before[i]) << names[i];
    } else {
      EXPECT_EQ(kids[i].pid(), before[i]) << names[i];
    }
  }
  // Siblings are stopped gracefully for the group restart (terminate() ran in them).
  EXPECT_EQ(sa->terminated.load(), param.restarted[0] ? 1 : 0);
  EXPECT_EQ(sc->terminated.load(), param.restarted[2] ? 1 : 0);
  sup.stop();
}

INSTANTIATE_TEST_SUITE_P(policies, restart_policy_groups,
                         ::testing::Values(policy_case{restart_policy::one_for_one, {false, true, false}},
                                           policy_case{restart_policy::one_for_all, {true, true, true}},
                                           policy_case{restart_policy::rest_for_one, {false, true, true}}),
                         [](const auto& param_info) { return std::string(to_string(param_info.param.policy)); });

TEST_F(restart_policy_groups, sends_to_a_sibling_stopped_for_a_group_restart_are_queued_for_its_new_instance) {
  shared_object<shared_state> sa, sb;
  sa->terminate_blocks = 1;  // a's graceful stop waits for the test
  event_log log;
  supervisor sup({.name = "group-queue", .policy = restart_policy::one_for_all, .emit = log.sink(), .log = false});
  auto a = sup.spawn(commands{sa.get()}, {.name = "a"});
  auto b = sup.spawn(commands{sb.get()}, {.name = "b"});
  const pid_t a_first = a.pid();
  ASSERT_EQ(::kill(b.pid(), SIGKILL), 0);
  ASSERT_TRUE(log.wait_for(event_kind::restarting, "a"));
  // a is being stopped for the restart (stuck in terminate()): this send must wait for the new a.
  auto r = a.send("count:queued");
  sa->release_terminate = 1;
  EXPECT_EQ(value_of(r), "0:queued");
  EXPECT_NE(a.pid(), a_first);
  sup.stop();
}

// ------------------------------------------------------------------ nested supervisors

class nested_supervisors : public supervisor_test {};

TEST_F(nested_supervisors, an_escalating_child_fails_its_supervisor_and_the_parent_restarts_it) {
  shared_object<shared_state> sx, sy;
  event_log log;
  escalation top;
  supervisor root({.name = "root", .emit = log.sink(), .on_escalate = top.callback(), .log = false});
  auto sub = root.spawn_supervisor({.name = "sub", .emit = log.sink(), .log = false}, strategy::restart);
  auto x = sub->spawn(commands{sx.get()}, {.name = "x"});
  auto y = sub->spawn(commands{sy.get()}, {.name = "y"});
  sub->supervise(x, strategy::escalate);
  const pid_t x_first = x.pid(), y_first = y.pid();
  EXPECT_TRUE(contains(failure_of(x.send("segv")), "SIGSEGV"));
  ASSERT_TRUE(log.wait_for(event_kind::ready, "x", 2));
  ASSERT_TRUE(log.wait_for(event_kind::ready, "y", 2));
  EXPECT_EQ(log.count(event_kind::escalated, "x"), 1u);
  const auto restarting = log.of(event_kind::restarting, "sub");
  ASSERT_EQ(restarting.size(), 1u);
  EXPECT_TRUE(contains(restarting[0].cause, "x") && contains(restarting[0].cause, "SIGSEGV")) << restarting[0].cause;
  EXPECT_EQ(value_of(x.send("a")), "ok:a");
  EXPECT_EQ(value_of(y.send("b")), "ok:b");
  EXPECT_NE(x.pid(), x_first);
  EXPECT_NE(y.pid(), y_first);
  EXPECT_EQ(sy->terminated.load(), 1);  // y was stopped with its supervisor
  EXPECT_EQ(top.calls.load(), 0);
  EXPECT_FALSE(root.gave_up());
  root.stop();
}

TEST_F(nested_supervisors, escalation_through_every_level_reaches_on_escalate_at_the_top) {
  shared_object<shared_state> sx, sz;
  event_log log;
  escalation top;
  supervisor root({.name = "root", .emit = log.sink(), .on_escalate = top.callback(), .log = false});
  auto bystander = root.spawn(commands{sz.get()}, {.name = "z"});
  auto sub = root.spawn_supervisor({.name = "sub", .emit = log.sink(), .log = false}, strategy::escalate);
  auto x = sub->spawn(commands{sx.get()}, {.name = "x"});
  sub->supervise(x, strategy::escalate);
  ASSERT_EQ(::kill(x.pid(), SIGKILL), 0);
  ASSERT_TRUE(top.wait()) << "on_escalate was not called";
  const std::string cause = top.future.get();
  EXPECT_TRUE(contains(cause, "sub") && contains(cause, "x") && contains(cause, "SIGKILL")) << cause;
  ASSERT_TRUE(log.wait_for(event_kind::escalated, "root"));
  EXPECT_EQ(bystander.state(), process_state::stopped);
  EXPECT_EQ(sz->terminated.load(), 1);
  EXPECT_EQ(x.state(), process_state::failed);
  EXPECT_EQ(log.count(event_kind::restarting), 0u);
  root.stop();
}

// ------------------------------------------------------------------ lifecycle events

class lifecycle_events : public supervisor_test {};

TEST_F(lifecycle_events, every_kind_reaches_the_sink_with_process_id_pid_time_and_cause) {
  shared_object<shared_state> sa, sb, sc;
  event_log log;
  escalation top;
  const auto t0 = std::chrono::system_clock::now();
  supervisor sup({.name = "events", .intensity = 1, .emit = log.sink(), .on_escalate = top.callback(), .log = true});
  auto a = sup.spawn(commands{sa.get()}, {.name = "a"});
  auto b = sup.spawn(commands{sb.get()}, {.name = "b"});
  auto c = sup.spawn(commands{sc.get()}, {.name = "c"});
  sup.supervise(b, strategy::stop);
  EXPECT_TRUE(contains(failure_of(b.send("segv")), "SIGSEGV"));    // crashed, stopped
  EXPECT_TRUE(contains(failure_of(a.send("abort")), "SIGABRT"));   // crashed, restarting, spawned, ready
  ASSERT_TRUE(log.wait_for(event_kind::ready, "a", 2));
  EXPECT_TRUE(contains(failure_of(a.send("exit3")), "code 3"));    // crashed, gave_up, exited (c), escalated
  ASSERT_TRUE(top.wait());
  ASSERT_TRUE(log.wait_for(event_kind::escalated, "events"));
  const auto t1 = std::chrono::system_clock::now();

  std::map<event_kind, int> seen;
  for (const auto& e : log.events()) {
    ++seen[e.kind];
    SCOPED_TRACE(std::string(to_string(e.kind)) + " " + e.process_id + ": " + e.cause);
    EXPECT_FALSE(e.process_id.empty());
    EXPECT_GE(e.time, t0);
    EXPECT_LE(e.time, t1);
    switch (e.kind) {
      case event_kind::spawned:
      case event_kind::ready:
      case event_kind::exited:
      case event_kind::crashed:
        EXPECT_GT(e.pid, 0);
        EXPECT_FALSE(e.cause.empty());
        break;
      default:
        EXPECT_FALSE(e.cause.empty());
        break;
    }
  }
  for (auto k : {event_kind::spawned, event_kind::ready, event_kind::exited, event_kind::crashed,
                 event_kind::restarting, event_kind::stopped, event_kind::escalated, event_kind::gave_up})
    EXPECT_GE(seen[k], 1) << "no " << to_string(k) << " event";
  const auto crashes = log.of(event_kind::crashed, "a");
  ASSERT_EQ(crashes.size(), 2u);
  EXPECT_TRUE(contains(crashes[0].cause, "SIGABRT"));
  EXPECT_TRUE(contains(crashes[1].cause, "exited with code 3"));
  EXPECT_EQ(crashes[1].restarts, 1);
  const auto exits = log.of(event_kind::exited, "c");
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(c.pid(), 0);  // stopped when the supervisor gave up
  EXPECT_EQ(log.of(event_kind::stopped, "b").size(), 1u);
  EXPECT_EQ(log.of(event_kind::gave_up, "events").size(), 1u);
  sup.stop();
}

}  // namespace
