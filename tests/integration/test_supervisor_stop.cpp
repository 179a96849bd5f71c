// stop(): terminate() runs in the child, then it is stopped; a child that ignores the shutdown
// is SIGTERMed, then SIGKILLed; a supervisor stops its children in reverse start order.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include "helpers/supervisor_support.hpp"

namespace {

using namespace procsup;
using namespace procsup::testing;

class process_stop : public supervisor_test {};

TEST_F(process_stop, stop_runs_terminate_in_the_child_and_leaves_the_process_stopped) {
  shared_object<shared_state> shared;
  auto p = create_process(commands{shared.get()});
  p.start();
  EXPECT_EQ(value_of(p.send("x")), "ok:x");
  p.stop();
  EXPECT_EQ(shared->terminated.load(), 1);
  EXPECT_EQ(p.state(), process_state::stopped);
  EXPECT_EQ(p.pid(), 0);
  const int status = p.info().last_exit_status;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << procsup::describe_wait_status(status);
  const std::string later = failure_of(p.send("after"));
  EXPECT_TRUE(contains(later, "stopped")) << later;
}

// A behavior that ignores the shutdown: busy in handle(), and SIGTERM only noted.
shared_state* g_stubborn_state = nullptr;  // the child's copy
extern "C" void note_sigterm(int) { g_stubborn_state->sigterm_seen.fetch_add(1); }
struct stubborn {
  shared_state* shared = nullptr;
  void init() {
    g_stubborn_state = shared;
    struct sigaction sa {};
    sa.sa_handler = note_sigterm;
    ::sigaction(SIGTERM, &sa, nullptr);
  }
  void terminate() { shared->terminated.fetch_add(1); }
  std::string handle(const std::string&) {
    for (;;) ::pause();
  }
};

TEST_F(process_stop, a_child_that_ignores_shutdown_is_sigtermed_then_sigkilled_after_the_timeout) {
  shared_object<shared_state> shared;
  auto p = create_process(stubborn{shared.get()}, {.shutdown_timeout = 200ms});
  p.start();
  const pid_t pid = p.pid();
  auto stuck = p.send("hold on");
  p.stop();  // returns once the child is reaped
  EXPECT_EQ(shared->sigterm_seen.load(), 1);
  EXPECT_EQ(shared->terminated.load(), 0);
  const int status = p.info().last_exit_status;
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << procsup::describe_wait_status(status);
  EXPECT_EQ(p.state(), process_state::stopped);
  EXPECT_TRUE(contains(failure_of(stuck), "SIGKILL"));
  // Reaped: the pid is no child of ours any more (the fixture checks the same for all tests).
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

class supervisor_stop : public supervisor_test {};

TEST_F(supervisor_stop, stop_stops_every_child_in_reverse_start_order_running_terminate) {
  shared_object<shared_state> shared;
  event_log log;
  {
    supervisor sup({.name = "ordered", .emit = log.sink(), .log = false});
    for (const char* name : {"first", "second", "third"}) (void)sup.spawn(commands{shared.get()}, {.name = name});
    const std::size_t mark = log.size();
    sup.stop();
    std::vector<std::string> order;
    for (auto& e : log.of(event_kind::exited, "", mark)) order.push_back(e.process_id);
    EXPECT_EQ(order, (std::vector<std::string>{"third", "second", "first"}));
    EXPECT_EQ(log.of(event_kind::stopped, "ordered", mark).size(), 1u);
    for (auto& c : sup.children()) {
      EXPECT_EQ(c.state, process_state::stopped) << c.id;
      EXPECT_EQ(c.pid, 0) << c.id;
    }
  }
  EXPECT_EQ(shared->terminated.load(), 3);
}

TEST_F(supervisor_stop, destroying_a_supervisor_stops_its_children) {
  shared_object<shared_state> shared;
  pid_t pid = 0;
  {
    supervisor sup({.name = "scoped", .log = false});
    auto p = sup.spawn(commands{shared.get()});
    pid = p.pid();
  }
  EXPECT_EQ(shared->terminated.load(), 1);
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
}

}  // namespace
