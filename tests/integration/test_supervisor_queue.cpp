// Sends made while a child starts or restarts wait in a bounded queue in the parent and go, in
// order, to the new instance; past the bound, send fails at once with a clear error.
#include <gtest/gtest.h>

#include "helpers/supervisor_support.hpp"

namespace {

using namespace procsup;
using namespace procsup::testing;

class restart_queue : public supervisor_test {};

TEST_F(restart_queue, sends_made_while_the_child_restarts_are_delivered_in_order_to_the_new_instance) {
  shared_object<shared_state> shared;
  shared->init_blocks_on = 2;  // the second instance stays in init() until released
  event_log log;
  supervisor sup({.name = "queue", .emit = log.sink(), .log = false});
  auto p = sup.spawn(commands{shared.get()}, {.name = "slow-restart"});
  const pid_t first = p.pid();
  EXPECT_TRUE(contains(failure_of(p.send("segv")), "SIGSEGV"));
  // The crash has been handled (its request failed), and instance 2 cannot become ready before
  // release_init: every send below waits in the parent's queue.
  std::vector<reply<std::string>> queued;
  for (int i = 0; i < 20; ++i) queued.push_back(p.send("count:m" + std::to_string(i)));
  EXPECT_EQ(p.state(), process_state::starting);
  for (auto& r : queued) EXPECT_FALSE(r.is_ready());
  shared->release_init = 1;
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(value_of(queued[static_cast<std::size_t>(i)]), std::to_string(i) + ":m" + std::to_string(i));
  EXPECT_NE(std::stoi(value_of(p.send("pid"))), first);
  EXPECT_EQ(shared->instances.load(), 2);
  sup.stop();
}

TEST_F(restart_queue, sends_made_during_a_backoff_delay_are_delivered_in_order) {
  shared_object<shared_state> shared;
  event_log log;
  supervisor sup({.name = "queue-backoff", .backoff = {.initial = 300ms}, .emit = log.sink(), .log = false});
  auto p = sup.spawn(commands{shared.get()}, {.name = "delayed"});
  EXPECT_TRUE(contains(failure_of(p.send("abort")), "SIGABRT"));
  std::vector<reply<std::string>> queued;
  for (int i = 0; i < 5; ++i) queued.push_back(p.send("count:d" + std::to_string(i)));
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(value_of(queued[static_cast<std::size_t>(i)]), std::to_string(i) + ":d" + std::to_string(i));
  const auto restarting = log.of(event_kind::restarting, "delayed");
  ASSERT_EQ(restarting.size(), 1u);
  EXPECT_EQ(restarting[0].delay, 300ms);
  sup.stop();
}

TEST_F(restart_queue, past_max_pending_send_fails_with_a_queue_is_full_error) {
  shared_object<shared_state> shared;
  shared->init_blocks_on = 2;
  supervisor sup({.name = "queue-full", .log = false});
  auto p = sup.spawn(commands{shared.get()}, {.name = "bounded", .max_pending = 3});
  EXPECT_TRUE(contains(failure_of(p.send("exit3")), "exited with code 3"));
  std::vector<reply<std::string>> queued;
  for (int i = 0; i < 3; ++i) queued.push_back(p.send("count:q" + std::to_string(i)));
  const std::string why = failure_of(p.send("one too many"));
  EXPECT_TRUE(contains(why, "queue is full") && contains(why, "bounded") && contains(why, "3")) << why;
  shared->release_init = 1;
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(value_of(queued[static_cast<std::size_t>(i)]), std::to_string(i) + ":q" + std::to_string(i));
  sup.stop();
}

TEST_F(restart_queue, sends_made_while_a_standalone_process_starts_wait_for_it) {
  shared_object<shared_state> shared;
  shared->init_blocks_on = 1;
  auto p = create_process(commands{shared.get()});
  std::thread starter([&] { p.start(); });
  // start() runs on another thread; until init() is released the process is starting.
  ASSERT_TRUE(eventually([&] { return p.state() == process_state::starting; }));
  auto r = p.send("count:early");
  EXPECT_FALSE(r.is_ready());
  shared->release_init = 1;
  starter.join();
  EXPECT_EQ(value_of(r), "0:early");
  p.stop();
}

}  // namespace
