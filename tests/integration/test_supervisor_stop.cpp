// stop(): terminate() runs in the child, then it is stopped; a child that ignores the shutdown
// is SIGTERMed, then SIGKILLed; a supervisor stops its children in reverse start order.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <future>
#include <mutex>
#include <vector>

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

// info() names the stop phase (systemd's names): the shutdown frame, then SIGTERM, then SIGKILL;
// and the unit's transitions follow its table (detail/unit_phase.hpp) on the way.
TEST_F(process_stop, info_names_each_stop_phase_of_a_child_that_ignores_shutdown_and_sigterm) {
  using procsup::detail::unit_event;
  using procsup::detail::unit_phase;
  shared_object<shared_state> shared;
  auto p = create_process(stubborn{shared.get()}, {.shutdown_timeout = 400ms});
  struct step {
    unit_phase from;
    unit_event ev;
    unit_phase to;
    bool operator==(const step&) const = default;
  };
  std::mutex mu;
  std::vector<step> steps;
  // Set before the unit runs; called on the loop thread.
  procsup::detail::process_access::core(p)->on_transition = [&](unit_phase from, unit_event ev, unit_phase to) {
    std::lock_guard lk(mu);
    steps.push_back({from, ev, to});
  };
  p.start();
  EXPECT_EQ(p.info().phase, "running");
  auto stuck = p.send("hold on");  // handle() never returns: the shutdown frame is never read
  std::promise<void> stopped;
  auto done = stopped.get_future();
  // On the loop: once call() returns, the stop is under way.
  procsup::detail::process_access::core(p)->loop().call([&] { procsup::detail::process_access::core(p)->request_stop([&] { stopped.set_value(); }); });
  EXPECT_EQ(p.info().phase, "stop_shutdown");
  EXPECT_EQ(p.state(), process_state::stopping);
  ASSERT_TRUE(eventually([&] { return shared->sigterm_seen.load() == 1; }));
  EXPECT_EQ(p.info().phase, "stop_sigterm");  // SIGTERM is sent once in the phase (one timeout)
  EXPECT_EQ(p.state(), process_state::stopping);
  ASSERT_EQ(done.wait_for(k_wait), std::future_status::ready);
  EXPECT_EQ(p.info().phase, "stopped");
  EXPECT_EQ(p.state(), process_state::stopped);
  EXPECT_TRUE(contains(failure_of(stuck), "SIGKILL"));
  std::lock_guard lk(mu);
  const std::vector<step> want{
      {unit_phase::idle, unit_event::launch, unit_phase::starting},
      {unit_phase::starting, unit_event::ready, unit_phase::running},
      {unit_phase::running, unit_event::stop_requested, unit_phase::stop_shutdown},
      {unit_phase::stop_shutdown, unit_event::stop_timeout, unit_phase::stop_sigterm},
      {unit_phase::stop_sigterm, unit_event::stop_timeout, unit_phase::stop_sigkill},
      {unit_phase::stop_sigkill, unit_event::exited, unit_phase::stopped},
  };
  ASSERT_EQ(steps.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i)
    EXPECT_TRUE(steps[i] == want[i]) << "step " << i << ": " << to_string(steps[i].from) << " × "
                                     << to_string(steps[i].ev) << " → " << to_string(steps[i].to);
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

// spawn_many(): a batch whose children set up and init() while the next one is forked.
class spawn_many_test : public supervisor_test {};

TEST_F(spawn_many_test, every_child_is_ready_serving_and_named_in_start_order) {
  shared_object<shared_state> shared;
  supervisor sup({.name = "batch", .log = false});
  auto kids = sup.spawn_many(20, commands{shared.get()}, {.name = "w"});
  ASSERT_EQ(kids.size(), 20u);
  EXPECT_EQ(shared->instances.load(), 20) << "every init() ran before spawn_many returned";
  std::vector<std::string> ids;
  for (auto& c : sup.children()) {
    ids.push_back(c.id);
    EXPECT_EQ(c.state, process_state::running) << c.id;
  }
  for (std::size_t i = 0; i < kids.size(); ++i) {
    EXPECT_EQ(ids[i], "w:" + std::to_string(i));
    EXPECT_EQ(kids[i].id(), ids[i]);
    EXPECT_EQ(value_of(kids[i].send("x" + std::to_string(i))), "ok:x" + std::to_string(i));
  }
  // Supervised like any child: a crash is restarted.
  const pid_t before = kids[7].pid();
  EXPECT_TRUE(contains(failure_of(kids[7].send("segv")), "SIGSEGV"));
  EXPECT_EQ(value_of(kids[7].send("again")), "ok:again");
  EXPECT_NE(kids[7].pid(), before);
  sup.stop();
  EXPECT_EQ(shared->terminated.load(), 20);
}

TEST_F(spawn_many_test, one_failing_init_fails_the_batch_and_leaves_no_child) {
  shared_object<shared_state> shared;
  shared->init_fails_from = 4;  // the fourth init() to run throws, once
  shared->init_fails_until = 4;
  supervisor sup({.name = "batch", .log = false});
  try {
    (void)sup.spawn_many(8, commands{shared.get()}, {.name = "w"});
    ADD_FAILURE() << "spawn_many succeeded although an init() threw";
  } catch (const process_error& e) {
    EXPECT_TRUE(contains(e.what(), "failed to start")) << e.what();
    EXPECT_TRUE(contains(e.what(), "init of instance 4 refuses")) << e.what();
  }
  EXPECT_TRUE(sup.children().empty()) << "the started ones were stopped and removed";
  // The supervisor still works.
  auto p = sup.spawn(commands{shared.get()});
  EXPECT_EQ(value_of(p.send("after")), "ok:after");
}

// A forked child's setup runs while the loop goes on; a step that fails there is still a failed
// start (spawn_failed, the spawn throws naming the step), never a crash.
TEST_F(spawn_many_test, a_failing_setup_step_of_a_forked_child_is_a_failed_start_not_a_crash) {
  shared_object<shared_state> shared;
  event_log log;
  supervisor sup({.name = "setup", .emit = log.sink(), .log = false});
  process_options o;
  o.name = "nowhere";
  o.isolation.cwd = "/nonexistent-procsup-dir";
  try {
    (void)sup.spawn(commands{shared.get()}, o);
    ADD_FAILURE() << "spawn succeeded in a directory that does not exist";
  } catch (const process_error& e) {
    EXPECT_TRUE(contains(e.what(), "chdir")) << e.what();
    EXPECT_TRUE(contains(e.what(), "No such file or directory")) << e.what();
  }
  EXPECT_EQ(log.of(event_kind::spawn_failed, "nowhere").size(), 1u);
  EXPECT_TRUE(log.of(event_kind::crashed, "nowhere").empty());
  EXPECT_EQ(shared->instances.load(), 0) << "init() never ran";
  EXPECT_THROW((void)sup.spawn_many(3, commands{shared.get()}, o), process_error);
  EXPECT_TRUE(sup.children().empty());
}

TEST_F(spawn_many_test, a_stopped_supervisor_refuses_a_batch) {
  supervisor sup({.name = "batch", .log = false});
  sup.stop();
  shared_object<shared_state> shared;
  EXPECT_THROW((void)sup.spawn_many(3, commands{shared.get()}), process_error);
  EXPECT_EQ(shared->instances.load(), 0);
}

}  // namespace
