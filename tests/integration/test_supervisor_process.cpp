// The original design's three test patterns, and exceptions in handle() under each strategy.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "helpers/supervisor_support.hpp"

namespace {

using namespace procsup;
using namespace procsup::testing;

class process_patterns : public supervisor_test {};

struct counter {
  int count = 0;
  int handle(int by) { return count += by; }
};

TEST_F(process_patterns, counter_increments_and_keeps_its_total) {
  auto c = create_process(counter{});
  c.start();
  EXPECT_EQ(value_of(c.send(5)), 5);
  EXPECT_EQ(value_of(c.send(0)), 5);
  EXPECT_EQ(value_of(c.send(2)), 7);
  c.stop();
  EXPECT_EQ(c.state(), process_state::stopped);
}

// The attempt count lives in memory shared with every instance: a restarted child starts from a
// fresh copy of the parent's memory, so a counter in the behavior would be 0 again.
struct fails_first {
  std::atomic<int>* attempts = nullptr;
  std::string handle(const std::string&) {
    if (attempts->fetch_add(1) + 1 == 1) throw std::runtime_error("First attempt fails");
    return "success";
  }
};

TEST_F(process_patterns, a_process_whose_first_call_fails_is_restarted_and_then_succeeds) {
  shared_object<std::atomic<int>> attempts;
  event_log log;
  supervisor sup({.name = "patterns", .emit = log.sink(), .log = false});
  auto p = sup.spawn(fails_first{attempts.get()});
  const pid_t first = p.pid();
  EXPECT_EQ(failure_of(p.send("test")), "First attempt fails");
  // No waiting for the restart: the send is queued until the new instance is ready.
  EXPECT_EQ(value_of(p.send("test")), "success");
  EXPECT_NE(p.pid(), first);
  EXPECT_EQ(p.info().restart_count, 1);
  EXPECT_EQ(attempts->load(), 2);
  sup.stop();
}

struct ordered_msg {
  int thread;
  int seq;
};
struct ordered_reply {
  int handled;   // how many requests this instance handled before this one
  int in_order;  // 1 if seq was the successor of the thread's previous seq
};
struct order_checker {
  static constexpr int k_threads = 4;
  int handled = 0;
  int last[k_threads] = {-1, -1, -1, -1};
  ordered_reply handle(ordered_msg m) {
    const int ok = m.thread >= 0 && m.thread < k_threads && m.seq == last[m.thread] + 1;
    if (ok) last[m.thread] = m.seq;
    return {handled++, ok};
  }
};

TEST_F(process_patterns, many_concurrent_sends_are_handled_in_send_order_per_thread_and_all_complete) {
  constexpr int k_per_thread = 500;
  // Nobody reads replies while the threads send, so the rings fill up and the rest waits in the
  // parent's queue: make room for all of it.
  auto p = create_process(order_checker{}, {.max_pending = 4 * k_per_thread * order_checker::k_threads});
  p.start();
  std::vector<std::vector<reply<ordered_reply>>> replies(order_checker::k_threads);
  std::vector<std::thread> threads;
  for (int t = 0; t < order_checker::k_threads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < k_per_thread; ++i) replies[static_cast<std::size_t>(t)].push_back(p.send({t, i}));
    });
  for (auto& t : threads) t.join();
  std::vector<int> seen(order_checker::k_threads * k_per_thread, 0);
  for (int t = 0; t < order_checker::k_threads; ++t) {
    int previous = -1;
    for (int i = 0; i < k_per_thread; ++i) {
      const auto r = value_of(replies[static_cast<std::size_t>(t)][static_cast<std::size_t>(i)]);
      EXPECT_EQ(r.in_order, 1) << "thread " << t << " request " << i << " overtook an earlier one";
      EXPECT_GT(r.handled, previous) << "thread " << t << " request " << i;
      previous = r.handled;
      ASSERT_GE(r.handled, 0);
      ASSERT_LT(r.handled, order_checker::k_threads * k_per_thread);
      ++seen[static_cast<std::size_t>(r.handled)];
    }
  }
  for (int n : seen) EXPECT_EQ(n, 1);  // every request handled exactly once
  p.stop();
}

// The original "handle messages in order": three sends without waiting, handled in order.
struct recorder {
  std::vector<std::string> messages;
  std::string handle(const std::string& text) {
    messages.push_back(text);
    std::string all;
    for (auto& m : messages) all += m + ",";
    return all;
  }
};

TEST_F(process_patterns, messages_sent_without_waiting_are_handled_in_order) {
  auto p = create_process(recorder{});
  p.start();
  auto a = p.send("first");
  auto b = p.send("second");
  auto c = p.send("third");
  EXPECT_EQ(value_of(c), "first,second,third,");
  EXPECT_EQ(value_of(a), "first,");
  EXPECT_EQ(value_of(b), "first,second,");
  p.stop();
}

// Forks stay fast with many children: every forked child's channel is carved from a few pooled
// mappings instead of adding a mapping each (fork() costs about 1.4 us per mapping of the
// parent: with 1,000 children every fork took 1.7 ms instead of 0.3 ms).
struct doubler {
  int handle(int x) { return 2 * x; }
};

TEST_F(process_patterns, a_hundred_children_add_only_a_few_mappings_to_the_supervising_process) {
  const std::size_t before = mapping_count();
  supervisor sup;
  std::vector<process<int, int>> kids;
  for (int i = 0; i < 100; ++i) kids.push_back(sup.spawn(doubler{}));
  const std::size_t during = mapping_count();
  for (int i = 0; i < 100; ++i) EXPECT_EQ(value_of(kids[static_cast<std::size_t>(i)].send(i)), 2 * i);
  sup.stop();
  // One mapping per child would add 100. The pool adds two chunks; the rest is the parent's own
  // heap growing (ASan's allocator maps its memory in many pieces: +10 there).
  EXPECT_LE(during, before + 30) << "mappings before: " << before << ", with 100 children: " << during;
}

// ------------------------------------------------------------------ exceptions in handle()

class handle_exception : public supervisor_test {};

TEST_F(handle_exception, the_send_fails_with_the_message_and_a_restarted_process_serves_on_a_new_pid) {
  shared_object<shared_state> shared;
  event_log log;
  supervisor sup({.name = "exc", .emit = log.sink(), .log = false});
  auto p = sup.spawn(commands{shared.get()}, {.name = "thrower"});
  const pid_t first = p.pid();
  EXPECT_EQ(failure_of(p.send("boom")), "boom");
  ASSERT_TRUE(log.wait_for(event_kind::crashed, "thrower"));
  const auto crash = log.of(event_kind::crashed, "thrower").at(0);
  EXPECT_TRUE(contains(crash.cause, "handle() threw: boom")) << crash.cause;
  EXPECT_EQ(crash.pid, first);
  EXPECT_EQ(value_of(p.send("next")), "ok:next");
  EXPECT_NE(p.pid(), first);
  EXPECT_EQ(p.state(), process_state::running);
  EXPECT_EQ(p.info().restart_count, 1);
  EXPECT_TRUE(contains(p.info().last_error, "boom")) << p.info().last_error;
  sup.stop();
}

TEST_F(handle_exception, with_strategy_stop_the_process_stays_failed_and_later_sends_fail_clearly) {
  shared_object<shared_state> shared;
  event_log log;
  supervisor sup({.name = "exc-stop", .emit = log.sink(), .log = false});
  auto p = sup.spawn(commands{shared.get()}, {.name = "fragile"});
  sup.supervise(p, strategy::stop);
  EXPECT_EQ(failure_of(p.send("boom")), "boom");
  ASSERT_TRUE(log.wait_for(event_kind::stopped, "fragile"));
  EXPECT_EQ(p.state(), process_state::failed);
  EXPECT_EQ(p.pid(), 0);
  const std::string later = failure_of(p.send("again"));
  EXPECT_TRUE(contains(later, "fragile") && contains(later, "failed") && contains(later, "boom")) << later;
  EXPECT_EQ(shared->instances.load(), 1);  // never restarted
  EXPECT_EQ(log.count(event_kind::restarting), 0u);
  sup.stop();
}

TEST_F(handle_exception, a_standalone_process_is_left_failed) {
  shared_object<shared_state> shared;
  auto p = create_process(commands{shared.get()});
  p.start();
  EXPECT_EQ(failure_of(p.send("boom")), "boom");
  // Nothing restarts it: every later send fails, naming the process and its state.
  const std::string later = failure_of(p.send("again"));
  EXPECT_TRUE(contains(later, p.id()) && contains(later, "failed")) << later;
  EXPECT_EQ(p.state(), process_state::failed);
  EXPECT_EQ(p.pid(), 0);
  p.stop();
}

TEST_F(handle_exception, an_init_that_throws_fails_start_with_its_message) {
  shared_object<shared_state> shared;
  shared->init_fails_from = 1;
  auto p = create_process(commands{shared.get()});
  try {
    p.start();
    FAIL() << "start() succeeded";
  } catch (const process_error& e) {
    EXPECT_TRUE(contains(e.what(), "init of instance 1 refuses")) << e.what();
  }
  EXPECT_EQ(p.state(), process_state::failed);
}

}  // namespace
