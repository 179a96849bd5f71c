// The supervisor's event loop: one thread, one epoll, over file descriptors only (child pidfds,
// channel eventfds, one timerfd for every timer, one eventfd for work posted from other threads,
// and optionally a signalfd). Nothing polls: an idle loop sleeps in epoll_wait.
#pragma once

#include <sys/types.h>
#include <signal.h>
#include <sys/signalfd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "procsup/shm/sys.hpp"

namespace procsup {

class event_loop {
 public:
  using clock = std::chrono::steady_clock;
  using timer_id = std::uint64_t;
  using fd_handler = std::function<void(std::uint32_t epoll_events)>;
  using exit_handler = std::function<void(int wait_status)>;

  event_loop();
  ~event_loop();
  event_loop(const event_loop&) = delete;
  event_loop& operator=(const event_loop&) = delete;

  // Runs the loop in the calling thread until stop() (which may come from a handler).
  void run();
  // Runs the loop in a thread of its own (library mode). Forks then happen on that thread.
  void start_thread();
  // Asks the loop to return from run() / its thread to end, and joins that thread. Any thread
  // except the loop's own when it was started with start_thread().
  void stop();
  bool in_loop_thread() const noexcept;

  // Queues `fn` to run on the loop thread. Any thread.
  void post(std::function<void()> fn);

  // Runs `fn` on the loop thread and returns its result (rethrowing its exception): inline when
  // called on the loop thread. Any thread.
  template <class F>
  auto call(F&& fn) -> std::invoke_result_t<F&> {
    using R = std::invoke_result_t<F&>;
    if (in_loop_thread() || !running_thread_) return fn();
    std::packaged_task<R()> task(std::forward<F>(fn));
    auto fut = task.get_future();
    post([&task] { task(); });
    return fut.get();
  }

  // ---- loop thread only below ----

  void watch(int fd, std::uint32_t events, fd_handler handler);
  void modify(int fd, std::uint32_t events);
  void unwatch(int fd);

  timer_id add_timer(clock::duration after, std::function<void()> fn);
  void cancel_timer(timer_id id);

  // Calls `on_exit` once with the wait status when `pid` (our child) has exited. Uses a pidfd,
  // so it works in a library without touching SIGCHLD. The child may still be a zombie while
  // on_exit runs (its pid is not reused meanwhile), and its pidfd still open: on_exit calls
  // reap_exited() before it tells anyone else that the child is gone, and the loop does it when
  // on_exit returns. So a restart launched from on_exit waits neither for the kernel to release
  // the dead task nor for the pidfd's release.
  void watch_child(pid_t pid, exit_handler on_exit);
  // The same, but a pidfd that cannot be had (EMFILE) is returned as its errno instead of
  // thrown: the caller decides (a supervisor kills that child: what it cannot watch must not run).
  std::optional<int> try_watch_child(pid_t pid, exit_handler on_exit);
  // In an exit handler: reaps its child and closes its pidfd now if that has not happened.
  // Elsewhere: nothing.
  void reap_exited();
  // Forgets a child without reaping it (it must be reaped some other way).
  void forget_child(pid_t pid);

  // Daemon mode: reads `signals` (which the caller has blocked in every thread) from a signalfd.
  // SIGCHLD, if included, also makes the loop reap every child with waitpid(-1): watched
  // children go to their handlers, others (orphans re-parented to us) to `orphan`.
  void watch_signals(const sigset_t& signals, std::function<void(const signalfd_siginfo&)> handler,
                     std::function<void(pid_t, int)> orphan = {});

  // Work that a restart need not wait for (log lines): inside an exit handler (watch_child,
  // and what it calls) `fn` runs when that handler has returned, in the order deferred;
  // anywhere else it runs now. Loop thread only.
  void defer(std::function<void()> fn);
  // True while an exit handler runs: what it launches is a restart.
  bool in_exit_handler() const noexcept { return exit_depth_ > 0; }

  // Number of timers pending (for tests and the "no timers while idle" claim).
  std::size_t timer_count() const noexcept { return timers_.size(); }

 private:
  void run_once(int timeout_ms);
  void run_posted();
  void run_timers();
  void arm_timerfd();
  void on_pidfd(pid_t pid, int fd);
  void reap_all();
  void dispatch_exit(pid_t pid, int status);
  void run_deferred();
  void close_exited_pidfd();

  sys::unique_fd epoll_;
  sys::unique_fd wake_;     // eventfd for post()
  sys::unique_fd timerfd_;
  sys::unique_fd signalfd_;
  std::unordered_map<int, fd_handler> handlers_;
  struct timer { timer_id id; std::function<void()> fn; };
  std::multimap<clock::time_point, timer> timers_;
  std::unordered_map<timer_id, std::multimap<clock::time_point, timer>::iterator> timer_index_;
  timer_id next_timer_ = 1;
  clock::time_point armed_for_{};
  struct child { int pidfd; exit_handler on_exit; };
  std::unordered_map<pid_t, child> children_;
  std::function<void(const signalfd_siginfo&)> on_signal_;
  std::function<void(pid_t, int)> on_orphan_;
  bool reap_any_ = false;
  int exit_depth_ = 0;  // exit handlers running (defer() queues while > 0)
  pid_t unreaped_ = 0;       // the exited child whose handler runs, until reap_exited()
  int exited_pidfd_ = -1;    // its pidfd (out of the tables, still open), until reap_exited()
  std::vector<std::function<void()>> deferred_;

  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;
  bool stop_requested_ = false;
  std::thread thread_;
  bool running_thread_ = false;
  std::thread::id loop_thread_id_{};
};

}  // namespace procsup
