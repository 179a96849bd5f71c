// supervisor: watches its children and applies each one's strategy when it fails (restart,
// stop, escalate), with a restart policy for siblings, restart intensity and backoff, and
// nesting (a supervisor can be the child of another). Every lifecycle event reaches the event
// sink and the log.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "procsup/supervisor/cgroup.hpp"
#include "procsup/supervisor/event_loop.hpp"
#include "procsup/supervisor/launcher.hpp"
#include "procsup/supervisor/process.hpp"
#include "procsup/supervisor/program.hpp"
#include "procsup/supervisor/restart_window.hpp"
#include "procsup/supervisor/types.hpp"

namespace procsup {

struct supervisor_options {
  std::string name = "supervisor";
  restart_policy policy = restart_policy::one_for_one;
  // Restart intensity: more than `intensity` restarts within `period` and the supervisor gives
  // up: it stops its children and escalates (to its parent, or to on_escalate at the top).
  int intensity = 10;
  std::chrono::milliseconds period{10'000};
  backoff_policy backoff{};
  event_sink emit{};                                   // every lifecycle event (loop thread)
  std::function<void(const std::string& cause)> on_escalate{};  // the owner, at the top of the tree
  bool log = true;                                     // also log every event with spdlog
  event_loop* loop = nullptr;                          // default: the library's own loop thread
};

// A plain program (no channel), supervised like supervisord / runit would.
struct program_options {
  std::string name;
  exec_spec exec;                      // path, argv, env, child setup (fds, rlimits, uid, cwd)
  int stop_signal = SIGTERM;
  std::chrono::milliseconds stop_timeout{10'000};  // then SIGKILL to the whole process group
  std::vector<int> success_codes{0};   // exits that count as clean
  bool restart_on_exit = false;        // restart after a clean exit too
  std::optional<backoff_policy> backoff;  // this program's restart backoff (default: the supervisor's)
  // With `own_budget`, this program has its own failure budget: more than `max_restarts`
  // restarts within `restart_period` and it goes fatal (left down, event fatal) while its
  // siblings keep running; unset values follow the supervisor's intensity / period. Its restarts
  // count toward the supervisor's intensity too (the budget of the whole tree), which is
  // checked after this one. Without it (the default) only the supervisor's intensity applies.
  bool own_budget = false;
  std::optional<int> max_restarts;
  std::optional<std::chrono::milliseconds> restart_period;
  // false: adopted but not launched (state stopped) until start_child().
  bool autostart = true;
  // Children are stopped one by one in reverse start order; consecutive children with the same
  // non-empty stop_group (e.g. the instances of one program) are stopped together.
  std::string stop_group;
  // The program links the worker runtime and speaks the channel (ready = "protocol").
  bool protocol = false;
  // Ready later than its exec: the owner marks it ready on the unit (unit::mark_ready), within
  // ready_timeout (sd_notify, probes).
  bool ready_later = false;
  std::chrono::milliseconds ready_timeout{30'000};
  std::chrono::milliseconds request_timeout{0};    // protocol workers: hang detection
  ipc::channel_options channel{};
  // Called before each launch, on the loop thread (add stdout/stderr pipes to exec.setup.fds);
  // returns the fds to close in the parent after the fork.
  std::function<std::vector<int>(child_setup&)> prepare_launch;
  // Kernel containment (cgroup.hpp): each instance joins this cgroup before exec; a stop
  // signals all of it and ends once it is empty. Null: its process group only.
  std::shared_ptr<procsup::cgroup> cgroup;
};

namespace detail { class supervisor_core; }

class supervisor {
 public:
  explicit supervisor(supervisor_options options = {});
  ~supervisor();  // stop()
  supervisor(const supervisor&) = delete;
  supervisor& operator=(const supervisor&) = delete;

  // Forks a supervised child running `behavior` (strategy restart) and returns its handle once
  // init() finished in it. Throws process_error if the first start fails (the child is then not
  // kept). Not on the loop thread.
  template <worker::behavior B>
  process_for<B> spawn(B behavior, process_options options = {}) {
    auto spec = detail::make_spec(options, "process");
    spec.body = detail::make_body(std::move(behavior), options.serve);
    return detail::process_access::make<process_for<B>>(add(std::move(spec), strategy::restart, true));
  }

  // Forks `count` supervised children, each running a copy of `behavior` (strategy restart), and
  // returns their handles, in start order, once every one has finished init(). Much faster than
  // `count` spawn() calls: a child's setup and init() run while the next one is forked. If any
  // fails to start, the others are stopped and removed and process_error names the first
  // failure. With options.name set, the ids are name:0, name:1, ... Not on the loop thread.
  template <worker::behavior B>
  std::vector<process_for<B>> spawn_many(std::size_t count, const B& behavior, process_options options = {}) {
    std::vector<detail::unit_spec> specs;
    specs.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      process_options o = options;
      if (!o.name.empty()) o.name += ":" + std::to_string(i);
      auto spec = detail::make_spec(o, "process");
      spec.body = detail::make_body(B(behavior), o.serve);
      specs.push_back(std::move(spec));
    }
    std::vector<process_for<B>> out;
    out.reserve(count);
    for (auto& u : add_many(std::move(specs), strategy::restart)) out.push_back(detail::process_access::make<process_for<B>>(std::move(u)));
    return out;
  }

  // Starts a supervised exec'd worker binary that links the worker runtime: the same handle
  // as a forked behavior.
  template <class Request, class Reply>
  process<Request, Reply> spawn_worker(exec_spec exec, process_options options = {}) {
    auto spec = detail::make_spec(options, "worker");
    spec.exec = std::move(exec);
    spec.protocol = true;
    return detail::process_access::make<process<Request, Reply>>(add(std::move(spec), strategy::restart, true));
  }

  // Starts a supervised plain program (or a protocol worker with options.protocol). With
  // `wait`, returns once it is running (exec'd; for protocol workers: ready), else at once.
  program spawn_program(program_options options, strategy s = strategy::restart, bool wait = true);

  // A nested supervisor, child of this one with strategy `s` for its failures (escalations).
  std::shared_ptr<supervisor> spawn_supervisor(supervisor_options options, strategy s = strategy::restart);

  // Sets what happens when `child` fails.
  template <class R, class Q>
  void supervise(const process<R, Q>& child, strategy s) { supervise_id(child.id(), s); }
  void supervise_id(const std::string& child_id, strategy s);
  void supervise(const supervisor& child, strategy s);

  // The children, in start order (nested supervisors appear as one entry each).
  std::vector<process_info> children() const;

  // Stops every child in reverse start order, then itself. Idempotent.
  void stop();

  // Control by child id (the procsup program's ctl). false if there is no such child. On the
  // loop thread they only start the work (a stop or restart completes later); from any other
  // thread they wait for it. start_child and restart_child start its backoff and own budget
  // over: a fatal child gets its whole budget again.
  bool start_child(const std::string& id);
  bool stop_child(const std::string& id);
  bool restart_child(const std::string& id);
  bool signal_child(const std::string& id, int sig);
  // Stops child `id` like stop_child() and then forgets it: it leaves children(), is never
  // restarted, and its id is free for a new child. `done` runs on the loop thread once it is
  // gone. false if there is no such child. On the loop thread it returns at once; from any
  // other thread it waits for the removal.
  bool remove_child(const std::string& id, std::function<void()> done = {});
  // Changes restart policy and intensity while running (the procsup program's reload). The
  // restarts already counted stay in the window.
  void set_restart_limits(restart_policy policy, int intensity, std::chrono::milliseconds period);

  // True once restart intensity was exceeded (it has stopped its children and escalated).
  bool gave_up() const;
  const std::string& name() const;
  event_loop& loop();

  // Loop-thread variant of stop(): `done` runs when every child is reaped.
  void stop_async(std::function<void()> done);

 private:
  std::shared_ptr<detail::unit> add(detail::unit_spec spec, strategy s, bool wait);
  std::shared_ptr<detail::unit> add_program(program_options options, strategy s, bool wait);  // spawn_program
  std::vector<std::shared_ptr<detail::unit>> add_many(std::vector<detail::unit_spec> specs, strategy s);
  explicit supervisor(std::shared_ptr<detail::supervisor_core> core);
  std::shared_ptr<detail::supervisor_core> core_;
  friend class detail::supervisor_core;
};

}  // namespace procsup
