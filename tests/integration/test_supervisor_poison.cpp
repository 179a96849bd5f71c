// A poison request fails alone (issue 18). The child publishes the id of the request it is
// handling, so when it dies only that request fails and every request behind it that it had not
// started goes, in order and ahead of later sends, to the next instance. Also: init(start_info)
// tells an instance it is a restart; an error frame says whether the child goes on.
#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <deque>

#include "helpers/supervisor_support.hpp"

namespace {

using namespace procsup;
using namespace procsup::testing;

// What every instance's init(start_info) saw, in start order (the first kMaxStarts instances).
constexpr int kMaxStarts = 4;
struct seen_start {
  std::atomic<int> restart_count{-1};
  std::atomic<std::uint64_t> instance{0};
  char process_id[64]{};
  char last_error[256]{};
};

// Shared by the test and every instance of a child (survives restarts).
struct poison_state {
  std::atomic<int> release{0};     // a poison request waits for this before it does its harm
  std::atomic<int> instances{0};   // init() calls
  std::atomic<int> prefetched{0};  // requests the prefetching child held, unstarted, when it crashed
  std::atomic<int> hold_init_of{0};  // init() of this instance number waits for release_init
  std::atomic<int> release_init{0};
  seen_start starts[kMaxStarts];
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

void copy_text(char* to, std::size_t cap, const std::string& s) {
  const std::size_t n = std::min(cap - 1, s.size());
  std::memcpy(to, s.data(), n);
  to[n] = '\0';
}

[[noreturn]] void die_by_sigsegv() {
  ::signal(SIGSEGV, SIG_DFL);  // a sanitizer's handler would turn it into an exit
  ::raise(SIGSEGV);
  ::_exit(99);
}

// The behavior under test. Requests:
//   "poison"        waits for `release`, then dies by SIGSEGV
//   "poison-throw"  waits for `release`, then throws ("poisoned")
//   "poison-hang"   waits for `release`, then never answers (request_timeout kills it)
//   "big:N"         answers N bytes
//   anything else   "<requests this instance handled before>:<text>"
struct poisonable {
  poison_state* shared = nullptr;
  int handled = 0;  // per instance

  void init(const start_info& info) {
    const int n = shared->instances.fetch_add(1);
    if (shared->hold_init_of.load() == n + 1) child_wait_for(shared->release_init);
    if (n >= kMaxStarts) return;
    auto& s = shared->starts[n];
    copy_text(s.process_id, sizeof s.process_id, info.process_id);
    copy_text(s.last_error, sizeof s.last_error, info.last_error);
    s.instance.store(info.instance);
    s.restart_count.store(info.restart_count);
  }

  std::string handle(const std::string& s) {
    const int before = handled++;
    if (s.rfind("poison", 0) == 0) {
      child_wait_for(shared->release);
      if (s == "poison") die_by_sigsegv();
      if (s == "poison-throw") throw std::runtime_error("poisoned");
      for (;;) ::pause();
    }
    if (s.rfind("big:", 0) == 0) return std::string(std::stoul(s.substr(4)), 'x');
    return std::to_string(before) + ":" + s;
  }
};

// "ok:<value>" or "failed:<error>" for a reply, waited for with a bound.
std::string outcome_of(reply<std::string> r) {
  if (!r.wait_for(k_wait)) return "no reply within the bound";
  try {
    return "ok:" + r.get();
  } catch (const process_error& e) {
    return std::string("failed:") + e.what();
  }
}

// Sends `poison` and then `n` requests right behind it (no waiting: they are in the child's ring
// before it does its harm), releases the poison, and checks that exactly the poison failed,
// naming `cause`, and that the n were answered in order by the next instance (its count starts
// at 0 again).
template <class P>
void expect_poison_fails_alone(P& p, poison_state* shared, const std::string& poison, std::size_t n,
                               const std::string& cause) {
  const pid_t first = p.pid();
  auto bad = p.send(poison);
  std::vector<reply<std::string>> behind;
  behind.reserve(n);
  for (std::size_t i = 0; i < n; ++i) behind.push_back(p.send("q" + std::to_string(i)));
  shared->release.store(1);
  const std::string bad_outcome = outcome_of(bad);
  EXPECT_TRUE(contains(bad_outcome, "failed:") && contains(bad_outcome, cause)) << bad_outcome;
  std::size_t failures = 0, wrong = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::string got = outcome_of(std::move(behind[i]));
    const std::string want = "ok:" + std::to_string(i) + ":q" + std::to_string(i);
    if (got.rfind("failed:", 0) == 0) ++failures;
    if (got != want && wrong++ < 3) ADD_FAILURE() << "request " << i << " behind the poison: " << got << ", expected " << want;
  }
  EXPECT_EQ(failures, 0u) << "only the poison request may fail";
  EXPECT_EQ(wrong, 0u);
  EXPECT_NE(p.pid(), first);
  EXPECT_EQ(p.info().restart_count, 1);
  shared->release.store(0);
}

class poison_request : public supervisor_test, public ::testing::WithParamInterface<std::size_t> {};

TEST_P(poison_request, fails_alone_and_the_requests_queued_behind_it_are_answered_in_order_by_the_next_instance) {
  shared_object<poison_state> shared;
  event_log log;
  supervisor sup({.name = "poison", .emit = log.sink(), .log = false});
  auto p = sup.spawn(poisonable{shared.get()}, {.name = "decoder"});
  expect_poison_fails_alone(p, shared.get(), "poison", GetParam(), "killed by SIGSEGV");
  EXPECT_EQ(log.count(event_kind::crashed, "decoder"), 1u);
  EXPECT_EQ(outcome_of(p.send("later")), "ok:" + std::to_string(GetParam()) + ":later");
  sup.stop();
}

INSTANTIATE_TEST_SUITE_P(queued_behind, poison_request, ::testing::Values(1, 5, 500),
                         [](const auto& param_info) { return "n_" + std::to_string(param_info.param); });

class poison : public supervisor_test {};

TEST_F(poison, an_exception_in_handle_fails_exactly_that_request) {
  shared_object<poison_state> shared;
  supervisor sup({.name = "poison-throw", .log = false});
  auto p = sup.spawn(poisonable{shared.get()}, {.name = "thrower"});
  expect_poison_fails_alone(p, shared.get(), "poison-throw", 5, "poisoned");
  sup.stop();
}

TEST_F(poison, the_requests_sent_again_go_ahead_of_those_sent_after_the_crash) {
  for (const std::string harm : {"poison", "poison-throw"}) {
    shared_object<poison_state> shared;
    supervisor sup({.name = "order", .log = false});
    auto p = sup.spawn(poisonable{shared.get()}, {.name = "ordered"});
    auto bad = p.send(harm);
    std::vector<reply<std::string>> all;
    for (int i = 0; i < 5; ++i) all.push_back(p.send("a" + std::to_string(i)));  // in the dying child's ring
    shared->release.store(1);
    EXPECT_EQ(outcome_of(bad).rfind("failed:", 0), 0u) << harm;
    // The crash is known now (its request failed): these queue behind the ones sent again.
    for (int i = 0; i < 5; ++i) all.push_back(p.send("b" + std::to_string(i)));
    for (int i = 0; i < 10; ++i)
      EXPECT_EQ(outcome_of(std::move(all[i])), "ok:" + std::to_string(i) + ":" + (i < 5 ? "a" : "b") + std::to_string(i % 5))
          << harm;
    sup.stop();
  }
}

TEST_F(poison, requests_sent_again_count_toward_max_pending_and_are_never_dropped) {
  shared_object<poison_state> shared;
  shared->hold_init_of.store(2);  // the next instance waits in init(): the unit stays starting
  supervisor sup({.name = "bound", .log = false});
  auto p = sup.spawn(poisonable{shared.get()}, {.name = "bounded", .max_pending = 3});
  auto bad = p.send("poison");
  std::vector<reply<std::string>> behind;
  for (int i = 0; i < 5; ++i) behind.push_back(p.send("q" + std::to_string(i)));  // in flight: not queued
  shared->release.store(1);
  EXPECT_TRUE(contains(outcome_of(bad), "SIGSEGV"));
  // The 5 wait for the next instance, over the bound of 3: a new send is refused at once.
  const std::string refused = outcome_of(p.send("one too many"));
  EXPECT_TRUE(contains(refused, "send queue is full")) << refused;
  shared->release_init.store(1);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(outcome_of(std::move(behind[i])), "ok:" + std::to_string(i) + ":q" + std::to_string(i));
  EXPECT_EQ(outcome_of(p.send("after")), "ok:5:after");
  sup.stop();
}

TEST_F(poison, a_hung_request_fails_by_the_request_timeout_and_the_requests_behind_it_are_answered) {
  shared_object<poison_state> shared;
  supervisor sup({.name = "poison-hang", .log = false});
  auto p = sup.spawn(poisonable{shared.get()}, {.name = "hanger", .request_timeout = 500ms});
  expect_poison_fails_alone(p, shared.get(), "poison-hang", 5, "hung");
  sup.stop();
}

TEST_F(poison, with_one_for_all_the_poison_fails_alone_and_no_request_of_a_sibling_is_lost) {
  shared_object<poison_state> shared, sibling_shared;
  event_log log;
  supervisor sup({.name = "poison-all", .policy = restart_policy::one_for_all, .emit = log.sink(), .log = false});
  auto sibling = sup.spawn(poisonable{sibling_shared.get()}, {.name = "sibling"});
  auto p = sup.spawn(poisonable{shared.get()}, {.name = "victim"});
  std::vector<reply<std::string>> sibling_replies;
  for (int i = 0; i < 5; ++i) sibling_replies.push_back(sibling.send("s" + std::to_string(i)));
  expect_poison_fails_alone(p, shared.get(), "poison", 5, "killed by SIGSEGV");
  // The sibling was restarted with it; each of its requests was answered exactly once, in order
  // (by whichever instance had it: the one stopped for the restart, or the next).
  std::vector<std::string> got;
  for (auto& r : sibling_replies) got.push_back(outcome_of(std::move(r)));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(contains(got[i], "ok:") && contains(got[i], ":s" + std::to_string(i))) << got[i];
  ASSERT_TRUE(log.wait_for(event_kind::ready, "sibling", 2));
  EXPECT_EQ(outcome_of(sibling.send("after")).rfind("ok:", 0), 0u);
  sup.stop();
}

// ------------------------------------------------------------------ hand-written children

// A child loop written against the channel directly (the worker runtime's serve() reads one
// request at a time): it reads ahead every request in its ring before it handles the oldest, so
// the requests behind a crash were consumed from the ring but never started. Its poison
// requests:
//   "poison"    waits for `release`, reads ahead again, records how many it holds, dies (SIGSEGV)
//   "scribble"  waits for `release`, writes a frame of an unknown kind (its channel is corrupt)
//   "lie"       waits for `release`, publishes an id that is not in flight, dies (SIGSEGV)
//   "lie-newer" the same with the id of the request behind it (in flight, but not the oldest)
int prefetching_child(ipc::endpoint& ep, poison_state* shared) {
  using shm::ring_status;
  ipc::message m;
  if (ep.receive(m, std::chrono::nanoseconds(-1)) != ring_status::ok || m.kind != ipc::frame_kind::start) return 72;
  ep.release();
  if (ep.send(ipc::frame_kind::ready, 0, {}, std::chrono::nanoseconds(-1)) != ring_status::ok) return 72;
  std::deque<std::pair<std::uint64_t, std::string>> ahead;
  // Reads every frame there is now (blocking for one if we hold none). false: shut down / broken.
  auto read_ahead = [&](bool block) {
    for (;;) {
      const auto st = block && ahead.empty() ? ep.receive(m, std::chrono::nanoseconds(-1)) : ep.try_receive(m);
      if (st == ring_status::empty) return true;
      if (st != ring_status::ok) return false;
      const bool stop = m.kind == ipc::frame_kind::shutdown;
      if (m.kind == ipc::frame_kind::request)
        ahead.emplace_back(m.id, std::string(reinterpret_cast<const char*>(m.body.data()), m.body.size()));
      ep.release();
      if (stop) return false;
    }
  };
  int handled = 0;
  for (;;) {
    if (!read_ahead(true)) return 0;
    auto [id, text] = ahead.front();
    ahead.pop_front();
    ep.publish_handling(id);
    if (text == "poison" || text == "scribble" || text == "lie" || text == "lie-newer") {
      child_wait_for(shared->release);
      (void)read_ahead(false);
      shared->prefetched.store(static_cast<int>(ahead.size()));
      if (text == "scribble") {
        (void)ep.try_send(static_cast<ipc::frame_kind>(99), id, {});
        for (;;) ::pause();
      }
      if (text == "lie") ep.publish_handling(424242);
      if (text == "lie-newer") ep.publish_handling(id + 1);
      die_by_sigsegv();
    }
    const std::string out = std::to_string(handled++) + ":" + text;
    if (ep.send(ipc::frame_kind::reply, id, std::as_bytes(std::span(out.data(), out.size())),
                std::chrono::nanoseconds(-1)) != ring_status::ok)
      return 72;
    ep.publish_handling(0);
  }
}

// A restarting unit running prefetching_child (the supervisor's restart, without a supervisor:
// the test drives the unit core directly, as a supervisor does).
process<std::string, std::string> make_prefetcher(poison_state* shared, const std::string& name) {
  auto spec = procsup::detail::make_spec(process_options{.name = name}, "process");
  spec.body = [shared](ipc::endpoint& ep) { return prefetching_child(ep, shared); };
  auto u = std::make_shared<procsup::detail::unit>(procsup::detail::default_loop(), std::move(spec));
  u->on_end = [](procsup::detail::unit&, const procsup::detail::instance_end&) {
    procsup::detail::exit_decision d;
    d.what = procsup::detail::exit_decision::kind::restart;
    return d;
  };
  u->carry_out = [](procsup::detail::unit& x, const procsup::detail::exit_decision&) {
    x.launch(procsup::detail::launch_kind::restart_now);
  };
  auto p = procsup::detail::process_access::make<process<std::string, std::string>>(u);
  p.start();
  return p;
}

TEST_F(poison, requests_read_ahead_by_the_child_but_not_started_go_to_the_next_instance) {
  shared_object<poison_state> shared;
  auto p = make_prefetcher(shared.get(), "prefetcher");
  expect_poison_fails_alone(p, shared.get(), "poison", 50, "killed by SIGSEGV");
  EXPECT_EQ(shared->prefetched.load(), 50) << "the 50 were consumed from the ring before the crash";
  p.stop();
}

// Sends `poison` and n requests behind it, releases it, and expects every one of them to fail
// naming `cause`: the child's word cannot be trusted, so nothing is re-sent.
void expect_all_in_flight_fail(process<std::string, std::string>& p, poison_state* shared, const std::string& poison,
                               std::size_t n, const std::string& cause) {
  auto bad = p.send(poison);
  std::vector<reply<std::string>> behind;
  for (std::size_t i = 0; i < n; ++i) behind.push_back(p.send("q" + std::to_string(i)));
  shared->release.store(1);
  const std::string first = outcome_of(bad);
  EXPECT_TRUE(contains(first, "failed:") && contains(first, cause)) << first;
  for (auto& r : behind) {
    const std::string got = outcome_of(std::move(r));
    EXPECT_TRUE(contains(got, "failed:") && contains(got, cause)) << got;
  }
  shared->release.store(0);
  EXPECT_EQ(outcome_of(p.send("after")), "ok:0:after");  // the next instance serves
}

TEST_F(poison, a_child_that_scribbles_on_its_channel_fails_every_request_in_flight) {
  shared_object<poison_state> shared;
  auto p = make_prefetcher(shared.get(), "scribbler");
  expect_all_in_flight_fail(p, shared.get(), "scribble", 5, "corrupt");
  p.stop();
}

TEST_F(poison, a_published_id_that_is_not_in_flight_is_not_trusted_and_every_request_in_flight_fails) {
  shared_object<poison_state> shared;
  auto p = make_prefetcher(shared.get(), "liar");
  expect_all_in_flight_fail(p, shared.get(), "lie", 5, "killed by SIGSEGV");
  p.stop();
}

TEST_F(poison, a_published_id_newer_than_the_oldest_request_in_flight_is_not_trusted_either) {
  shared_object<poison_state> shared;
  auto p = make_prefetcher(shared.get(), "liar");
  expect_all_in_flight_fail(p, shared.get(), "lie-newer", 5, "killed by SIGSEGV");
  p.stop();
}

// ------------------------------------------------------------------ error frames that go on

TEST_F(poison, a_reply_over_the_channel_limit_fails_that_send_alone_and_the_next_100_are_answered) {
  shared_object<poison_state> shared;
  event_log log;
  supervisor sup({.name = "big", .emit = log.sink(), .log = false});
  process_options o{.name = "talker"};
  o.channel.ring_capacity = 64 * 1024;  // bodies up to 32 KiB - 16
  auto p = sup.spawn(poisonable{shared.get()}, o);
  const pid_t pid = p.pid();
  auto too_big = p.send("big:" + std::to_string(1 << 20));
  std::vector<reply<std::string>> next;
  for (int i = 0; i < 100; ++i) next.push_back(p.send("n" + std::to_string(i)));
  const std::string why = outcome_of(too_big);
  EXPECT_TRUE(contains(why, "failed:") && contains(why, "exceeds the channel's limit")) << why;
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(outcome_of(std::move(next[i])), "ok:" + std::to_string(i + 1) + ":n" + std::to_string(i));
  EXPECT_EQ(p.pid(), pid);
  EXPECT_EQ(p.state(), process_state::running);
  EXPECT_EQ(log.count(event_kind::crashed), 0u);
  sup.stop();
}

struct adder {
  int handle(int x) { return x + 1; }
};

TEST_F(poison, a_request_the_child_cannot_decode_fails_alone_and_the_child_goes_on) {
  supervisor sup({.name = "decode", .log = false});
  auto p = sup.spawn(adder{}, {.name = "adder"});
  const pid_t pid = p.pid();
  // Three bytes are no int: only the raw core can send them.
  auto bad = reply<int>(procsup::detail::process_access::core(p)->send_bytes(std::vector<std::byte>(3, std::byte{1})));
  auto good = p.send(41);
  const std::string why = failure_of(std::move(bad));
  EXPECT_TRUE(contains(why, "bad request")) << why;
  EXPECT_EQ(value_of(std::move(good)), 42);
  EXPECT_EQ(p.pid(), pid);
  sup.stop();
}

// ------------------------------------------------------------------ start_info

TEST_F(poison, init_with_start_info_sees_the_restart_count_and_how_the_previous_instance_died) {
  shared_object<poison_state> shared;
  supervisor sup({.name = "restarts", .log = false});
  auto p = sup.spawn(poisonable{shared.get()}, {.name = "seer"});
  shared->release.store(1);
  EXPECT_TRUE(contains(outcome_of(p.send("poison")), "SIGSEGV"));
  EXPECT_TRUE(contains(outcome_of(p.send("poison-throw")), "poisoned"));
  EXPECT_EQ(outcome_of(p.send("hello")), "ok:0:hello");
  ASSERT_EQ(shared->instances.load(), 3);
  const char* causes[] = {"", "killed by SIGSEGV", "handle() threw: poisoned"};
  for (int i = 0; i < 3; ++i) {
    const auto& s = shared->starts[i];
    EXPECT_EQ(s.restart_count.load(), i);
    EXPECT_EQ(s.instance.load(), static_cast<std::uint64_t>(i + 1));
    EXPECT_STREQ(s.process_id, "seer");
    EXPECT_TRUE(i == 0 ? std::string(s.last_error).empty() : contains(s.last_error, causes[i]))
        << "instance " << i + 1 << ": " << s.last_error;
  }
  sup.stop();
}

// The original design's "Testing Supervision" pattern ("should restart failed processes"),
// ported: its `attempts` lives in the child, and each instance starts from the prototype's
// memory, so the literal port fails for ever; start_info says which instance this is.
struct flaky {
  int attempts = 0;
  start_info info;
  void init(const start_info& i) { info = i; }
  std::string handle(const std::string&) {
    attempts++;
    if (info.restart_count == 0 && attempts == 1) throw std::runtime_error("First attempt fails");
    return "success";
  }
};

TEST_F(poison, the_designs_testing_supervision_pattern_ported_with_start_info_passes) {
  supervisor sup({.log = false});
  auto process = sup.spawn(flaky{});
  // First call fails and triggers a restart.
  EXPECT_THROW(process.send("test").get(), process_error);
  // No waiting for the restart: the send waits in the queue for the new instance.
  EXPECT_EQ(process.send("test").get(), "success");
  sup.stop();
}

// An exec'd worker binary (worker::main) gets its start_info through the channel as well.
TEST_F(poison, an_execd_worker_sees_its_start_info_and_a_poison_request_fails_alone) {
  supervisor sup({.name = "execd", .log = false});
  exec_spec e;
  e.path = PROCSUP_ECHO_WORKER;
  e.env = current_environment();
  auto w = sup.spawn_worker<std::string, std::string>(e, {.name = "echo"});
  EXPECT_EQ(value_of(w.send("start-info")), "instance=1 restarts=0 last_error=");
  auto bad = w.send("segv");
  std::vector<reply<std::string>> behind;
  for (int i = 0; i < 5; ++i) behind.push_back(w.send("e" + std::to_string(i)));
  EXPECT_TRUE(contains(failure_of(std::move(bad)), "SIGSEGV"));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(outcome_of(std::move(behind[i])), "ok:ok:e" + std::to_string(i));
  EXPECT_EQ(value_of(w.send("start-info")), "instance=2 restarts=1 last_error=killed by SIGSEGV");
  sup.stop();
}

}  // namespace
