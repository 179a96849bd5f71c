// Shared pieces of the supervisor tests: a fixture (leak guard + the library's loop created
// first), an event recorder that tests wait on (no sleeping), memory shared with forked
// children (state that must survive a restart), and the behaviors the tests run.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "helpers/process_guard.hpp"
#include "procsup/procsup.hpp"

namespace procsup::testing {

using namespace std::chrono_literals;

// Every wait in these tests is bounded by this (the machine may be heavily loaded; nothing
// asserts on timing, so a generous bound costs nothing when things work).
inline constexpr auto k_wait = std::chrono::seconds(60);

// process_guard_test, with the library's event loop (and its epoll / eventfd / timerfd, kept for
// the life of the test program) created before the leak snapshot.
class supervisor_test : public process_guard_test {
 protected:
  void SetUp() override {
    (void)procsup::detail::default_loop();
    process_guard_test::SetUp();
  }
};

// Records lifecycle events; tests block on it until what they expect has been reported.
class event_log {
 public:
  event_sink sink() {
    return [this](const lifecycle_event& e) {
      std::lock_guard lk(mu_);
      events_.push_back(e);
      cv_.notify_all();
    };
  }

  std::vector<lifecycle_event> events() const {
    std::lock_guard lk(mu_);
    return events_;
  }
  std::size_t size() const {
    std::lock_guard lk(mu_);
    return events_.size();
  }

  // How many events of kind `k` for `id` ("" = any id) were recorded from index `from` on.
  std::size_t count(event_kind k, const std::string& id = "", std::size_t from = 0) const {
    std::lock_guard lk(mu_);
    return count_locked(k, id, from);
  }

  // Waits until `n` events of kind `k` for `id` arrived (from index `from`); false on timeout.
  bool wait_for(event_kind k, const std::string& id = "", std::size_t n = 1, std::size_t from = 0) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, k_wait, [&] { return count_locked(k, id, from) >= n; });
  }

  // The events of kind `k` for `id` ("" = any), in order.
  std::vector<lifecycle_event> of(event_kind k, const std::string& id = "", std::size_t from = 0) const {
    std::lock_guard lk(mu_);
    std::vector<lifecycle_event> out;
    for (std::size_t i = from; i < events_.size(); ++i)
      if (events_[i].kind == k && (id.empty() || events_[i].process_id == id)) out.push_back(events_[i]);
    return out;
  }

 private:
  std::size_t count_locked(event_kind k, const std::string& id, std::size_t from) const {
    std::size_t n = 0;
    for (std::size_t i = from; i < events_.size(); ++i)
      if (events_[i].kind == k && (id.empty() || events_[i].process_id == id)) ++n;
    return n;
  }
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<lifecycle_event> events_;
};

// One T in a MAP_SHARED anonymous mapping made before any fork: the parent and every child
// instance see the same object (a restart does not reset it). T must be usable across
// processes: lock-free atomics and plain data only.
template <class T>
class shared_object {
 public:
  shared_object() {
    void* p = ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    obj_ = new (p) T{};
  }
  ~shared_object() {
    obj_->~T();
    ::munmap(obj_, sizeof(T));
  }
  shared_object(const shared_object&) = delete;
  shared_object& operator=(const shared_object&) = delete;
  T* get() const noexcept { return obj_; }
  T* operator->() const noexcept { return obj_; }

 private:
  T* obj_;
};

// State shared by the test and every instance of a child.
struct shared_state {
  std::atomic<int> instances{0};      // init() calls so far
  std::atomic<int> attempts{0};       // handle() calls so far
  std::atomic<int> terminated{0};     // terminate() calls so far
  std::atomic<int> sigterm_seen{0};   // SIGTERMs received (stuck child)
  std::atomic<int> release_init{0};   // a blocked init() may go on once this is non-zero
  std::atomic<int> init_blocks_on{0}; // the instance number whose init() waits for release_init
  std::atomic<int> init_fails_from{0};  // init() throws for instances >= this (0: never) ...
  std::atomic<int> init_fails_until{0}; // ... and <= this (0: no upper bound)
  std::atomic<int> terminate_blocks{0}; // terminate() waits for release_terminate when set
  std::atomic<int> release_terminate{0};
};
static_assert(std::atomic<int>::is_always_lock_free);

// Waits in a child for `flag` to become non-zero (the child's own time, not the test's).
inline void child_wait_for(const std::atomic<int>& flag) {
  while (flag.load(std::memory_order_acquire) == 0) ::usleep(1000);
}

// The behavior of most tests: text commands, state in `shared` where it must outlive an instance.
//   "boom"          throws std::runtime_error("boom")
//   "segv" "abort"  dies by SIGSEGV / SIGABRT
//   "exit3"         _exit(3)
//   "block"         never returns (sleeps forever)
//   "spin"          endless busy loop
//   "alloc"         allocates 4 GiB (for RLIMIT_AS)
//   "pid"           its pid as text
//   "sleep-crash:N" sleeps N ms in the child, then dies by SIGSEGV
//   "count:X"       "<requests this instance handled before>:X"
//   anything else   "ok:" + the text
struct commands {
  shared_state* shared = nullptr;
  int handled = 0;  // per instance (the child's own memory)

  void init() {
    const int n = shared->instances.fetch_add(1) + 1;
    if (shared->init_blocks_on.load() == n) child_wait_for(shared->release_init);
    const int from = shared->init_fails_from.load(), until = shared->init_fails_until.load();
    if (from != 0 && n >= from && (until == 0 || n <= until))
      throw std::runtime_error("init of instance " + std::to_string(n) + " refuses");
  }
  void terminate() {
    if (shared->terminate_blocks.load() != 0) child_wait_for(shared->release_terminate);
    shared->terminated.fetch_add(1);
  }

  std::string handle(const std::string& s) {
    shared->attempts.fetch_add(1);
    const int before = handled++;
    if (s == "boom") throw std::runtime_error("boom");
    if (s == "segv") ::raise(SIGSEGV);
    if (s == "abort") std::abort();
    if (s == "exit3") ::_exit(3);
    if (s == "block")
      for (;;) ::pause();
    if (s == "spin") {
      volatile unsigned long n = 0;
      for (;;) n = n + 1;
    }
    if (s == "alloc") {
      std::vector<char> big(std::size_t{4} << 30);
      return "allocated " + std::to_string(big.size());
    }
    if (s == "pid") return std::to_string(::getpid());
    if (s.rfind("sleep-crash:", 0) == 0) {
      ::usleep(static_cast<useconds_t>(std::stoi(s.substr(12)) * 1000));
      ::raise(SIGSEGV);
    }
    if (s.rfind("count:", 0) == 0) return std::to_string(before) + ":" + s.substr(6);
    return "ok:" + s;
  }
};

// The process_error message of a reply that must fail ("" and a test failure if it succeeded).
template <class R>
std::string failure_of(reply<R> r) {
  if (!r.wait_for(k_wait)) {
    ADD_FAILURE() << "the reply did not come within " << k_wait.count() << " s";
    return "";
  }
  try {
    (void)r.get();
  } catch (const process_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "the send succeeded, a failure was expected";
  return "";
}

// The value of a reply that must succeed, waited for with a bound.
template <class R>
R value_of(reply<R> r) {
  if (!r.wait_for(k_wait)) throw std::runtime_error("the reply did not come in time");
  return r.get();
}

inline bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// Waits until `pred()` holds, polling the (cheap, thread-safe) state of a handle. Only for state
// that no event reports; bounded by k_wait.
inline bool eventually(const std::function<bool()>& pred) {
  const auto deadline = std::chrono::steady_clock::now() + k_wait;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

}  // namespace procsup::testing
