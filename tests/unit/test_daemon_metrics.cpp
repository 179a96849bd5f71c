// The metrics text (escaping, cause classes, the histogram, the exits of an instance) and the
// HTTP server in-process with a fake source: a loop that does not answer gives /healthz 503;
// bad and taken addresses are errors that name them.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "helpers/http_client.hpp"
#include "procsup/daemon/http_server.hpp"
#include "procsup/daemon/metrics.hpp"

namespace {

using namespace procsup;
using namespace procsup::daemon;
using namespace std::chrono_literals;

TEST(metrics_text, label_values_are_escaped) {
  std::string out;
  append_label_value(out, "a\"b\\c\nd");
  EXPECT_EQ(out, "a\\\"b\\\\c\\nd");
}

TEST(metrics_text, exit_causes_fall_into_a_bounded_set) {
  EXPECT_EQ(classify_exit_cause("exited with code 3"), exit_cause_kind::exit);
  EXPECT_EQ(classify_exit_cause("killed by SIGKILL"), exit_cause_kind::signal);
  EXPECT_EQ(classify_exit_cause("killed by SIGSEGV (core dumped)"), exit_cause_kind::signal);
  EXPECT_EQ(classify_exit_cause("killed by the OOM killer (memory.max 10485760)"), exit_cause_kind::oom);
  EXPECT_EQ(classify_exit_cause("hung: request 4 got no reply within 500 ms"), exit_cause_kind::hang);
  EXPECT_EQ(classify_exit_cause("did not become ready within 300 ms"), exit_cause_kind::unhealthy);
  EXPECT_EQ(classify_exit_cause("its channel is corrupt: bad magic"), exit_cause_kind::unhealthy);
  EXPECT_EQ(classify_exit_cause("handle() threw: boom"), exit_cause_kind::exit);
}

TEST(metrics_text, an_exit_and_the_next_spawn_give_one_latency_sample_and_one_exit) {
  metrics_recorder m;
  const auto t0 = std::chrono::system_clock::now();
  m.on_event({event_kind::crashed, "a:0", 10, t0, "killed by SIGKILL", 0, {}});
  m.on_event({event_kind::restarting, "a:0", 0, t0, "", 1, {}});
  m.on_event({event_kind::spawned, "a:0", 11, t0 + 3ms, "", 1, {}});
  m.on_event({event_kind::spawned, "b", 12, t0 + 3ms, "", 0, {}});  // a first start: no sample
  EXPECT_EQ(m.restart_latency().count, 1u);
  EXPECT_NEAR(m.restart_latency().sum, 0.003, 1e-9);

  metrics_snapshot s;
  instance_sample a;
  a.program = "a";
  a.id = "a:0";
  a.state = process_state::running;
  a.up = true;
  a.restarts = 1;
  a.start_time_seconds = 1.7e9;
  a.usage = read_proc_usage(::getpid());
  instance_sample b;
  b.program = "we\"ird";
  b.id = "b";
  b.state = process_state::failed;
  s.instances = {a, b};
  s.exits = m.exits();
  s.restart_latency = m.restart_latency();
  const auto text = render_metrics(s, process_metrics::read_self());
  EXPECT_NE(text.find("procsup_program_exits_total{program=\"a\",instance=\"0\",cause=\"signal\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("procsup_program_up{program=\"we\\\"ird\",instance=\"0\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("procsup_program_state{program=\"we\\\"ird\",instance=\"0\",state=\"failed\"} 1\n"),
            std::string::npos);
  // 3 ms: not in the 2.5 ms bucket, in the 5 ms one (cumulative).
  EXPECT_NE(text.find("procsup_restart_latency_seconds_bucket{le=\"0.0025\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("procsup_restart_latency_seconds_bucket{le=\"0.005\"} 1\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("start_time_seconds{program=\"we"), std::string::npos) << "no start time when not running";
  EXPECT_NE(text.find("process_start_time_seconds "), std::string::npos);
  EXPECT_NE(text.find("procsup_program_memory_bytes{program=\"a\",instance=\"0\"} "), std::string::npos) << text;
  EXPECT_EQ(text.find("procsup_program_memory_bytes{program=\"we"), std::string::npos) << "unknown: no sample";
}

TEST(metrics_text, usage_is_read_again_only_when_old_or_for_a_new_process) {
  const pid_t child = ::fork();
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  ASSERT_GT(child, 0);
  std::vector<instance_sample> v(1);
  v[0].id = "c";
  v[0].pid = child;
  usage_cache cache;
  const auto t0 = std::chrono::steady_clock::now();
  cache.fill(v, t0);
  EXPECT_EQ(v[0].usage.pids, 1);
  EXPECT_GT(v[0].usage.memory_bytes, 0);
  ::kill(child, SIGKILL);
  int st = 0;
  ::waitpid(child, &st, 0);  // gone: a fresh read finds nothing
  v[0].usage = {};
  cache.fill(v, t0 + 5s);
  EXPECT_EQ(v[0].usage.pids, 1) << "cached for usage_max_age";
  v[0].usage = {};
  cache.fill(v, t0 + usage_cache::usage_max_age + 1s);
  EXPECT_TRUE(std::isnan(v[0].usage.pids)) << "read again once older than usage_max_age";
}

struct fake_source : http_source {
  nlohmann::json status() override { return nlohmann::json::array({{{"id", "x"}, {"state", "running"}}}); }
  metrics_snapshot metrics() override { return {}; }
};

TEST(http_server_inproc, a_loop_that_does_not_answer_makes_healthz_503_and_status_too) {
  fake_source src;
  http_limits lim;
  lim.health_timeout = 200ms;
  lim.loop_timeout = 200ms;
  auto r = http_server::open("127.0.0.1:0", src, [](std::function<void()>) { /* a stuck loop: never runs */ }, lim);
  ASSERT_TRUE(std::holds_alternative<std::unique_ptr<http_server>>(r)) << std::get<std::string>(r);
  auto& srv = std::get<std::unique_ptr<http_server>>(r);
  auto h = procsup::testing::http_get(srv->address(), "/healthz");
  EXPECT_EQ(h.status, 503);
  EXPECT_NE(h.body.find("did not answer within 200 ms"), std::string::npos) << h.body;
  EXPECT_EQ(procsup::testing::http_get(srv->address(), "/status").status, 503);
}

TEST(http_server_inproc, answers_come_from_the_loop_thread) {
  fake_source src;
  std::atomic<std::thread::id> ran_on{};
  // A stand-in loop: every posted task runs on this thread.
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::function<void()>> q;
  bool done = false;
  std::thread loop([&] {
    std::unique_lock lk(mu);
    while (!done) {
      cv.wait(lk, [&] { return done || !q.empty(); });
      auto tasks = std::move(q);
      q.clear();
      lk.unlock();
      for (auto& t : tasks) {
        ran_on = std::this_thread::get_id();
        t();
      }
      lk.lock();
    }
  });
  {
    auto r = http_server::open("127.0.0.1:0", src, [&](std::function<void()> fn) {
      std::lock_guard lk(mu);
      q.push_back(std::move(fn));
      cv.notify_one();
    });
    auto& srv = std::get<std::unique_ptr<http_server>>(r);
    auto s = procsup::testing::http_get(srv->address(), "/status");
    EXPECT_EQ(s.status, 200);
    EXPECT_EQ(s.body, "[{\"id\":\"x\",\"state\":\"running\"}]\n");
    EXPECT_EQ(ran_on.load(), loop.get_id());
  }
  {
    std::lock_guard lk(mu);
    done = true;
    cv.notify_one();
  }
  loop.join();
}

TEST(http_server_inproc, a_bad_or_taken_address_is_an_error_naming_it) {
  fake_source src;
  auto bad = http_server::open("nowhere:80", src, [](std::function<void()>) {});
  ASSERT_TRUE(std::holds_alternative<std::string>(bad));
  EXPECT_NE(std::get<std::string>(bad).find("nowhere:80"), std::string::npos);
  auto first = http_server::open("127.0.0.1:0", src, [](std::function<void()>) {});
  ASSERT_TRUE(std::holds_alternative<std::unique_ptr<http_server>>(first));
  const std::string taken = std::get<std::unique_ptr<http_server>>(first)->address();
  auto second = http_server::open(taken, src, [](std::function<void()>) {});
  ASSERT_TRUE(std::holds_alternative<std::string>(second));
  EXPECT_NE(std::get<std::string>(second).find("cannot listen on http " + taken), std::string::npos)
      << std::get<std::string>(second);
}

}  // namespace
