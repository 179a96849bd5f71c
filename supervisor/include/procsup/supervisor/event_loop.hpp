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

class event_loop;

// What an exit handler (event_loop::try_watch_child) may do about the exit it handles: its
// child is still a zombie and its pidfd open while the handler runs, so that a restart launched
// from it waits neither for the kernel to release the dead task nor for the pidfd's release.
class exit_context {
 public:
  // Reaps the child and closes its pidfd now (before telling anyone else it is gone); once.
  // Else the loop does it when the next launch is on its way or the handler returns.
  void reap_now();
  // Runs `fn` once the handler (and every exit handler it is nested in) has returned: work a
  // restart need not wait for (log lines).
  void defer(std::function<void()> fn);

 private:
  friend class event_loop;
  explicit exit_context(event_loop& loop) : loop_(loop) {}
  event_loop& loop_;
};

class event_loop {
 public:
  using clock = std::chrono::steady_clock;
  using timer_id = std::uint64_t;
  using fd_handler = std::function<void(std::uint32_t epoll_events)>;
  using exit_handler = std::function<void(int wait_status)>;
  using exit_handler_with_context = std::function<void(int wait_status, exit_context& ctx)>;

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
  // so it works in a library without touching SIGCHLD. The child is reaped when on_exit returns.
  void watch_child(pid_t pid, exit_handler on_exit);
  // The same for a supervisor's child: on_exit gets an exit_context (the child is still a zombie
  // while it runs: reap_now() before telling anyone else it is gone), and a pidfd that cannot be
  // had (EMFILE) is returned as its errno instead of thrown: the caller decides (a supervisor
  // kills that child: what it cannot watch must not run).
  std::optional<int> try_watch_child(pid_t pid, exit_handler_with_context on_exit);
  // Within an exit handler (and what it calls: a launch of the next instance): reaps its child
  // and closes its pidfd now if that has not happened. Elsewhere: nothing.
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
  // anywhere else it runs now. Loop thread only. (exit_context::defer from the handler itself.)
  void after_exit_handlers(std::function<void()> fn);

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
  struct child { int pidfd; exit_handler_with_context on_exit; };
  std::unordered_map<pid_t, child> children_;
  std::function<void(const signalfd_siginfo&)> on_signal_;
  std::function<void(pid_t, int)> on_orphan_;
  bool reap_any_ = false;
  int exit_depth_ = 0;  // exit handlers running (after_exit_handlers() queues while > 0)
  pid_t unreaped_ = 0;       // the exited child whose handler runs, until reap_exited()
  int exited_pidfd_ = -1;    // its pidfd (out of the tables, still open), until reap_exited()
  std::vector<std::function<void()>> deferred_;
  friend class exit_context;

  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;
  bool stop_requested_ = false;
  std::thread thread_;
  bool running_thread_ = false;
  std::thread::id loop_thread_id_{};
};

}  // namespace procsup
