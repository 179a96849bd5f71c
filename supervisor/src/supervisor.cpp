// The supervisor: strategies, restart policies, intensity, backoff, nesting. All state lives on
// the loop thread; the public methods post there. See supervisor.hpp.
#include "procsup/supervisor/supervisor.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <future>

namespace procsup::detail {

using steady = std::chrono::steady_clock;

event_loop& default_loop() {
  // One loop thread for every standalone process and every supervisor without a loop of its
  // own. Deliberately never destroyed: units may still reference it while statics go away.
  static event_loop* loop = [] {
    auto* l = new event_loop();
    l->start_thread();
    return l;
  }();
  return *loop;
}

std::string next_id(const char* kind) {
  static std::atomic<int> n{0};
  return std::string(kind) + "-" + std::to_string(++n);
}

unit_spec make_spec(const process_options& o, const char* kind) {
  unit_spec s;
  s.id = o.name.empty() ? next_id(kind) : o.name;
  s.setup = o.isolation;
  s.channel = o.channel;
  s.start_timeout = o.start_timeout;
  s.request_timeout = o.request_timeout;
  s.shutdown_timeout = o.shutdown_timeout;
  s.max_pending = o.max_pending;
  s.reply_spin = o.reply_spin;
  return s;
}

void start_and_wait(const std::shared_ptr<unit>& u) {
  if (u->loop().in_loop_thread()) throw std::logic_error("process::start() on the event-loop thread would deadlock");
  std::promise<std::string> started;
  auto f = started.get_future();
  u->loop().call([&] {
    u->when_started([&started](const std::string& e) { started.set_value(e); });
    u->launch();
  });
  if (auto err = f.get(); !err.empty()) throw process_error("process " + u->id() + " failed to start: " + err);
}

void stop_and_wait(const std::shared_ptr<unit>& u) {
  if (u->loop().in_loop_thread()) throw std::logic_error("process::stop() on the event-loop thread would deadlock");
  std::promise<void> stopped;
  auto f = stopped.get_future();
  u->loop().call([&] { u->request_stop([&stopped] { stopped.set_value(); }); });
  f.get();
}

void make_standalone(const std::shared_ptr<unit>& u) {
  u->set_strategy(strategy::stop);
  u->emit = [](const lifecycle_event& e) {
    if (e.kind == event_kind::crashed) spdlog::warn("{} (pid {}) crashed: {}", e.process_id, e.pid, e.cause);
  };
}

// ------------------------------------------------------------------ supervisor_core

class supervisor_core : public std::enable_shared_from_this<supervisor_core> {
 public:
  supervisor_core(supervisor_options o, event_loop& l) : opt(std::move(o)), loop(l) {}

  struct child {
    std::shared_ptr<unit> u;
    std::shared_ptr<supervisor_core> sub;
    strategy strat = strategy::restart;
    bool restart_on_exit = false;
    std::optional<backoff_policy> backoff;
    bool own_budget = false;                              // program_options::own_budget
    std::optional<int> max_restarts;                      //   (unset: the supervisor's)
    std::optional<std::chrono::milliseconds> restart_period;
    restart_window budget;                                // restarts spent against it
    std::string stop_group;  // children of one group are stopped together (see stop_sequence)
    int consecutive = 0;
    event_loop::timer_id restart_timer = 0;
    steady::time_point started{};
    bool removed = false;
    bool removing = false;  // remove_child() is stopping it: no sibling restart may revive it
    const std::string& id() const { return u ? u->id() : sub->opt.name; }
  };

  supervisor_options opt;
  event_loop& loop;
  std::weak_ptr<supervisor_core> parent;
  std::deque<child> children;
  std::unordered_map<std::string, std::vector<std::size_t>> by_id;  // indices into children, by id
  restart_window restart_log;  // the whole tree's restart intensity
  bool stopped = false;  // stop() was called: final
  bool down = false;     // gave up / escalated: children stopped until a parent restarts us
  bool gave_up = false;
  steady::time_point started = steady::now();

  void emit(lifecycle_event e) {
    // The sink is called now (it may act before a restart); the log line may wait until the
    // restart is launched (event_loop::defer).
    if (opt.log)
      loop.defer([name = opt.name, e] {
        const bool bad = e.kind == event_kind::gave_up || e.kind == event_kind::escalated || e.kind == event_kind::fatal;
        auto level = e.kind == event_kind::crashed || e.kind == event_kind::spawn_failed ? spdlog::level::warn
                     : bad                                                               ? spdlog::level::err
                                                                                         : spdlog::level::info;
        spdlog::log(level, "[{}] {} {}{}{}{}", name, e.process_id, to_string(e.kind),
                    e.pid ? fmt::format(" pid={}", e.pid) : std::string(),
                    e.kind == event_kind::restarting ? fmt::format(" in {} ms", e.delay.count()) : std::string(),
                    e.cause.empty() ? std::string() : ": " + e.cause);
      });
    if (opt.emit) {
      try {
        opt.emit(e);
      } catch (const std::exception& ex) {
        spdlog::error("[{}] event sink threw: {}", opt.name, ex.what());
      }
    }
  }

  lifecycle_event event(event_kind k, const std::string& id, pid_t pid, std::string cause, int restarts = 0) {
    lifecycle_event e;
    e.kind = k;
    e.process_id = id;
    e.pid = pid;
    e.time = std::chrono::system_clock::now();
    e.cause = std::move(cause);
    e.restarts = restarts;
    return e;
  }

  // The first child named `id` not removed yet. Indexed (it runs twice on every restart: a
  // linear search was the most expensive part of procsup's own code there with 100 programs).
  child* find(const std::string& id) {
    const auto it = by_id.find(id);
    if (it == by_id.end()) return nullptr;
    for (std::size_t i : it->second)
      if (!children[i].removed) return &children[i];
    return nullptr;
  }
  // Every child is added here (children only grow; removal is a flag).
  void add(child c) {
    by_id[c.id()].push_back(children.size());
    children.push_back(std::move(c));
  }

  void refuse_if_stopped() const {
    if (stopped) throw process_error("supervisor " + opt.name + " is stopped");
  }

  // The waiter of child `id`'s first start (spawn, spawn_many): a child that never started is
  // not kept, and `then` gets "" or the error after the handler that reported it has finished
  // (its spawn_failed event included).
  std::function<void(const std::string&)> first_start_waiter(std::string id,
                                                             std::function<void(const std::string&)> then) {
    return [self = shared_from_this(), id = std::move(id), then = std::move(then)](const std::string& err) {
      if (!err.empty())
        if (auto* c = self->find(id)) c->removed = true;
      self->loop.post([then, err] { then(err); });
    };
  }
  std::size_t index_of(const child& c) const {
    for (std::size_t i = 0; i < children.size(); ++i)
      if (&children[i] == &c) return i;
    return children.size();
  }

  void adopt(const std::shared_ptr<unit>& u, strategy s, bool restart_on_exit,
             std::optional<backoff_policy> backoff = std::nullopt, std::string stop_group = {},
             bool own_budget = false, std::optional<int> max_restarts = std::nullopt,
             std::optional<std::chrono::milliseconds> restart_period = std::nullopt) {
    u->set_strategy(s);
    std::weak_ptr<supervisor_core> weak = weak_from_this();
    u->emit = [weak](const lifecycle_event& e) {
      if (auto self = weak.lock()) self->emit(e);
    };
    const std::string id = u->id();
    u->on_end = [weak, id](unit& x, const instance_end& end) {
      if (auto self = weak.lock()) self->child_ended(x, id, end);
    };
    u->on_launch_failed = [weak, id](unit& x, const launch_error& err) {
      if (auto self = weak.lock()) self->launch_failed(x, id, err);
    };
    child c;
    c.u = u;
    c.strat = s;
    c.restart_on_exit = restart_on_exit;
    c.backoff = backoff;
    c.own_budget = own_budget;
    c.max_restarts = max_restarts;
    c.restart_period = restart_period;
    c.stop_group = std::move(stop_group);
    c.started = steady::now();
    add(std::move(c));
  }

  // ---- failures

  void child_ended(unit& u, const std::string& id, const instance_end& end) {
    child* c = find(id);
    if (c == nullptr || stopped || down) {
      u.set_final(end.clean ? process_state::stopped : process_state::failed, "process " + id + " " + end.cause);
      return;
    }
    if (end.clean && !c->restart_on_exit) {
      u.set_final(process_state::stopped, "process " + id + " exited");
      emit(event(event_kind::stopped, id, 0, end.cause, u.info().restart_count));
      return;
    }
    handle_failure(*c, end.clean ? "exited (" + end.cause + "), restart_on_exit" : end.cause, end.uptime);
  }

  void launch_failed(unit& u, const std::string& id, const launch_error& err) {
    child* c = find(id);
    emit(event(event_kind::spawn_failed, id, 0, err.message, u.info().restart_count));
    if (c == nullptr || stopped || down) {
      u.set_final(process_state::failed, "process " + id + " could not start: " + err.message);
      return;
    }
    const bool transient = (err.stage == "fork" || err.stage == "channel" || err.stage == "pipe" || err.stage == "pidfd" || err.stage == "cgroup") &&
                           (err.error == EAGAIN || err.error == ENOMEM || err.error == EMFILE || err.error == ENFILE);
    if (transient) {
      // Out of processes or memory for now: retry with backoff; not the child's fault, so it
      // does not count toward restart intensity.
      ++c->consecutive;
      auto delay = std::max(c->backoff.value_or(opt.backoff).delay(c->consecutive), std::chrono::milliseconds(10));
      schedule_launch(*c, delay);
      return;
    }
    handle_failure(*c, "could not start: " + err.message, steady::duration::zero());
  }

  bool allow_restart() { return restart_log.try_spend(steady::now(), opt.intensity, opt.period); }

  void handle_failure(child& c, const std::string& cause, steady::duration uptime) {
    const std::string id = c.id();
    switch (c.strat) {
      case strategy::stop:
        if (c.u) c.u->set_final(process_state::failed, "process " + id + " failed: " + cause);
        emit(event(event_kind::stopped, id, 0, cause));
        return;
      case strategy::escalate:
        if (c.u) c.u->set_final(process_state::failed, "process " + id + " failed: " + cause);
        emit(event(event_kind::escalated, id, 0, cause));
        go_down(false, "child " + id + " failed: " + cause);
        return;
      case strategy::restart:
        break;
    }
    // The child's own budget first: a crash-looping program goes fatal alone (supervisord's
    // FATAL) instead of spending the whole tree's intensity.
    const int own_max = c.max_restarts.value_or(opt.intensity);
    const auto own_period = c.restart_period.value_or(opt.period);
    if (c.u && c.own_budget && !c.budget.try_spend(steady::now(), own_max, own_period)) {
      if (c.restart_timer) loop.cancel_timer(std::exchange(c.restart_timer, 0));
      c.u->set_final(process_state::fatal, "process " + id + " is fatal: " + cause);
      emit(event(event_kind::fatal, id, 0,
                 "more than " + std::to_string(own_max) + " restarts in " + std::to_string(own_period.count()) +
                     " ms (last: " + cause + ")",
                 c.u->info().restart_count));
      return;
    }
    if (!allow_restart()) {
      if (c.u) c.u->set_final(process_state::failed, "process " + id + " failed: " + cause);
      go_down(true, "restart intensity exceeded: more than " + std::to_string(opt.intensity) + " restarts in " +
                        std::to_string(opt.period.count()) + " ms (last: " + id + " " + cause + ")");
      return;
    }
    const backoff_policy& bo = c.backoff ? *c.backoff : opt.backoff;
    c.consecutive = uptime >= bo.reset_after ? 1 : c.consecutive + 1;
    const auto delay = bo.delay(c.consecutive);
    const std::size_t at = index_of(c);
    std::vector<std::size_t> group;
    switch (opt.policy) {
      case restart_policy::one_for_one: group = {at}; break;
      case restart_policy::one_for_all:
        for (std::size_t i = 0; i < children.size(); ++i) group.push_back(i);
        break;
      case restart_policy::rest_for_one:
        for (std::size_t i = at; i < children.size(); ++i) group.push_back(i);
        break;
    }
    restart_group(at, group, delay, cause);
  }

  void restart_group(std::size_t failed_at, const std::vector<std::size_t>& group, std::chrono::milliseconds delay,
                     const std::string& cause) {
    std::vector<std::size_t> members;
    for (auto i : group)
      if (!children[i].removed && !children[i].removing) members.push_back(i);
    for (auto i : members) {
      auto& m = children[i];
      if (m.restart_timer) loop.cancel_timer(std::exchange(m.restart_timer, 0));
      if (m.u) m.u->set_restarting();
      lifecycle_event e = event(event_kind::restarting, m.id(), 0,
                                i == failed_at ? cause : "sibling " + children[failed_at].id() + " failed", 0);
      if (m.u) e.restarts = m.u->info().restart_count;
      e.delay = delay;
      emit(e);
    }
    // Stop the running siblings in reverse start order, then start the whole group in order.
    auto self = shared_from_this();
    auto relaunch = [self, members, delay] {
      for (auto i : members) self->schedule_launch(self->children[i], delay, true);
    };
    std::vector<std::size_t> to_stop;
    for (auto it = members.rbegin(); it != members.rend(); ++it)
      if (*it != failed_at) to_stop.push_back(*it);
    stop_sequence(to_stop, 0, relaunch, true);
  }

  // Stops children[idx[k..]] one after the other, then calls done.
  // Stops children[idx[k..]] one after the other (the next once the previous is reaped), then
  // calls done. Neighbours in idx that share a stop group (the instances of one program) are
  // stopped together: they do not depend on each other.
  void stop_sequence(std::vector<std::size_t> idx, std::size_t k, std::function<void()> done, bool restarting) {
    if (k == idx.size()) {
      done();
      return;
    }
    std::size_t end = k + 1;
    const std::string& group = children[idx[k]].stop_group;
    if (!group.empty())
      while (end < idx.size() && children[idx[end]].stop_group == group) ++end;
    auto self = shared_from_this();
    auto left = std::make_shared<std::size_t>(end - k);
    auto next = [self, idx, end, done, restarting, left] {
      if (--*left == 0) self->stop_sequence(idx, end, done, restarting);
    };
    for (std::size_t j = k; j < end; ++j) {
      auto& c = children[idx[j]];
      if (c.restart_timer) loop.cancel_timer(std::exchange(c.restart_timer, 0));
      if (c.u) {
        c.u->request_stop(next, restarting);
      } else {
        c.sub->stop_all(next);
      }
    }
  }

  // Starts a new instance of `c` now: a unit launches; a nested supervisor restarts its children.
  void relaunch(child& c, bool counts_as_restart) {
    c.started = steady::now();
    if (c.u) {
      if (counts_as_restart) c.u->count_restart();
      c.u->launch();
    } else {
      c.sub->restart_all();
    }
  }

  void schedule_launch(child& c, std::chrono::milliseconds delay, bool counts_as_restart = false) {
    const std::string id = c.id();
    auto self = shared_from_this();
    auto go = [self, id, counts_as_restart] {
      child* x = self->find(id);
      if (x == nullptr || self->stopped || self->down) return;
      x->restart_timer = 0;
      self->relaunch(*x, counts_as_restart);
    };
    if (c.restart_timer) loop.cancel_timer(std::exchange(c.restart_timer, 0));
    if (delay.count() <= 0) {
      go();
    } else {
      c.restart_timer = loop.add_timer(delay, go);
    }
  }

  // Gave up (restart intensity) or a child escalated: stop everything, then tell the parent.
  void go_down(bool intensity, const std::string& cause) {
    if (down || stopped) return;
    down = true;
    gave_up = gave_up || intensity;
    if (intensity) emit(event(event_kind::gave_up, opt.name, 0, cause));
    auto self = shared_from_this();
    stop_all([self, cause] { self->escalate_up(cause); });
  }

  void escalate_up(const std::string& cause) {
    if (auto p = parent.lock()) {
      p->sub_failed(this, "supervisor " + opt.name + " failed: " + cause);
    } else {
      emit(event(event_kind::escalated, opt.name, 0, cause));
      if (opt.on_escalate) opt.on_escalate(cause);
    }
  }

  void sub_failed(supervisor_core* sub, const std::string& cause) {
    for (auto& c : children)
      if (c.sub.get() == sub && !c.removed) {
        if (stopped || down) return;
        handle_failure(c, cause, steady::now() - c.started);
        return;
      }
  }

  // ---- stop / restart of the whole supervisor

  void stop_all(std::function<void()> done) {
    std::vector<std::size_t> idx;
    for (std::size_t i = children.size(); i-- > 0;)
      if (!children[i].removed) idx.push_back(i);
    for (auto& c : children)
      if (c.restart_timer) loop.cancel_timer(std::exchange(c.restart_timer, 0));
    stop_sequence(idx, 0, std::move(done), false);
  }

  void restart_all() {
    down = false;
    restart_log.clear();
    for (auto& c : children) c.budget.clear();
    started = steady::now();
    for (auto& c : children) {
      if (c.removed) continue;
      c.consecutive = 0;
      relaunch(c, true);
    }
  }

  process_info info_as_child() const {
    process_info i;
    i.id = opt.name;
    i.state = stopped ? process_state::stopped : down ? process_state::failed : process_state::running;
    return i;
  }
};

}  // namespace procsup::detail

namespace procsup {

using detail::supervisor_core;

supervisor::supervisor(supervisor_options options) {
  event_loop& l = options.loop ? *options.loop : detail::default_loop();
  core_ = std::make_shared<supervisor_core>(std::move(options), l);
}

supervisor::supervisor(std::shared_ptr<detail::supervisor_core> core) : core_(std::move(core)) {}

supervisor::~supervisor() {
  if (core_->parent.lock()) return;  // a nested supervisor's lifetime belongs to its parent
  try {
    stop();
  } catch (...) {
  }
}

const std::string& supervisor::name() const { return core_->opt.name; }
event_loop& supervisor::loop() { return core_->loop; }

bool supervisor::gave_up() const {
  return core_->loop.call([&] { return core_->gave_up; });
}

std::shared_ptr<detail::unit> supervisor::add(detail::unit_spec spec, strategy s, bool wait) {
  if (wait && core_->loop.in_loop_thread())
    throw std::logic_error("spawn() on the event-loop thread would deadlock (use spawn_program(..., wait = false))");
  const bool restart_on_exit = false;
  auto u = std::make_shared<detail::unit>(core_->loop, std::move(spec));
  std::promise<std::string> started;
  auto f = started.get_future();
  auto core = core_;
  core_->loop.call([&] {
    core->refuse_if_stopped();
    core->adopt(u, s, restart_on_exit);
    if (wait) u->when_started(core->first_start_waiter(u->id(), [&started](const std::string& err) { started.set_value(err); }));
    u->launch();
  });
  if (wait) {
    if (auto err = f.get(); !err.empty()) throw process_error("process " + u->id() + " failed to start: " + err);
  }
  return u;
}

std::vector<std::shared_ptr<detail::unit>> supervisor::add_many(std::vector<detail::unit_spec> specs, strategy s) {
  if (core_->loop.in_loop_thread()) throw std::logic_error("spawn_many() on the event-loop thread would deadlock");
  std::vector<std::shared_ptr<detail::unit>> units;
  units.reserve(specs.size());
  for (auto& spec : specs) units.push_back(std::make_shared<detail::unit>(core_->loop, std::move(spec)));
  if (units.empty()) return units;

  // Filled from the loop thread as the children come up (or fail), waited on here.
  struct batch {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t left = 0;
    std::string first_error;
    void done(const std::string& id, const std::string& err) {
      std::lock_guard lk(mu);
      if (!err.empty() && first_error.empty()) first_error = "process " + id + " failed to start: " + err;
      if (--left == 0) cv.notify_all();
    }
  };
  auto b = std::make_shared<batch>();
  b->left = units.size();
  auto core = core_;
  core->loop.call([&] {
    core->refuse_if_stopped();
    for (auto& u : units) {
      core->adopt(u, s, false);
      u->when_started(core->first_start_waiter(u->id(), [b, id = u->id()](const std::string& err) { b->done(id, err); }));
    }
  });
  // One launch per loop iteration, so the loop keeps serving its other children (and this batch's
  // ready frames) in between. Each launch returns once its child is forked and set up; its init()
  // runs while the next one is forked.
  struct chain : std::enable_shared_from_this<chain> {
    std::shared_ptr<detail::supervisor_core> core;
    std::vector<std::shared_ptr<detail::unit>> units;
    std::shared_ptr<batch> b;
    void step(std::size_t i) {
      if (core->stopped) {  // stopped meanwhile: the rest never starts
        for (std::size_t k = i; k < units.size(); ++k) b->done(units[k]->id(), "its supervisor was stopped");
        return;
      }
      if (auto* c = core->find(units[i]->id()); c != nullptr) units[i]->launch();
      else b->done(units[i]->id(), "it was removed before it started");
      if (i + 1 < units.size()) core->loop.post([self = shared_from_this(), i] { self->step(i + 1); });
    }
  };
  auto c = std::make_shared<chain>();
  c->core = core;
  c->units = units;
  c->b = b;
  core->loop.post([c] { c->step(0); });

  std::string error;
  {
    std::unique_lock lk(b->mu);
    b->cv.wait(lk, [&] { return b->left == 0; });
    error = b->first_error;
  }
  if (!error.empty()) {
    for (auto& u : units) remove_child(u->id());
    throw process_error(error);
  }
  return units;
}

std::shared_ptr<detail::unit> supervisor::spawn_program(program_options o, strategy s, bool wait) {
  detail::unit_spec spec;
  spec.id = o.name.empty() ? detail::next_id("program") : o.name;
  spec.setup = o.exec.setup;
  spec.exec = std::move(o.exec);
  spec.protocol = o.protocol;
  spec.ready_later = o.ready_later;
  spec.stop_signal = o.stop_signal;
  spec.shutdown_timeout = o.stop_timeout;
  spec.success_codes = o.success_codes;
  spec.start_timeout = o.ready_timeout;
  spec.request_timeout = o.request_timeout;
  spec.channel = o.channel;
  spec.prepare_launch = std::move(o.prepare_launch);
  spec.cgroup = std::move(o.cgroup);
  if (wait && core_->loop.in_loop_thread())
    throw std::logic_error("spawn_program(wait = true) on the event-loop thread would deadlock");
  auto u = std::make_shared<detail::unit>(core_->loop, std::move(spec));
  auto core = core_;
  std::promise<std::string> started;
  auto f = started.get_future();
  core_->loop.call([&] {
    core->adopt(u, s, o.restart_on_exit, o.backoff, o.stop_group, o.own_budget, o.max_restarts,
                o.restart_period);
    if (!o.autostart) return;  // adopted, stopped: start_child() launches it
    if (wait) u->when_started([&started](const std::string& err) { started.set_value(err); });
    u->launch();
  });
  if (wait && o.autostart) {
    if (auto err = f.get(); !err.empty()) throw process_error("program " + u->id() + " failed to start: " + err);
  }
  return u;
}

std::shared_ptr<supervisor> supervisor::spawn_supervisor(supervisor_options options, strategy s) {
  if (!options.loop) options.loop = &core_->loop;
  auto sub = std::make_shared<supervisor_core>(std::move(options), core_->loop);
  auto core = core_;
  core_->loop.call([&] {
    sub->parent = core;
    supervisor_core::child c;
    c.sub = sub;
    c.strat = s;
    c.started = std::chrono::steady_clock::now();
    core->add(std::move(c));
  });
  return std::shared_ptr<supervisor>(new supervisor(sub));
}

void supervisor::supervise_id(const std::string& id, strategy s) {
  auto core = core_;
  core_->loop.call([&] {
    auto* c = core->find(id);
    if (c == nullptr) throw std::invalid_argument("supervisor " + core->opt.name + " has no child " + id);
    c->strat = s;
    if (c->u) c->u->set_strategy(s);
  });
}

void supervisor::supervise(const supervisor& child, strategy s) { supervise_id(child.name(), s); }

std::vector<process_info> supervisor::children() const {
  auto core = core_;
  return core_->loop.call([core] {
    std::vector<process_info> out;
    for (auto& c : core->children) {
      if (c.removed) continue;
      if (c.u) {
        auto i = c.u->info();
        i.on_failure = c.strat;
        out.push_back(std::move(i));
      } else {
        auto i = c.sub->info_as_child();
        i.on_failure = c.strat;
        out.push_back(std::move(i));
      }
    }
    return out;
  });
}

void supervisor::stop_async(std::function<void()> done) {
  auto core = core_;
  core->stopped = true;
  core->stop_all([core, done = std::move(done)] {
    core->emit(core->event(event_kind::stopped, core->opt.name, 0, "supervisor stopped"));
    if (done) done();
  });
}

void supervisor::stop() {
  auto core = core_;
  if (core->loop.in_loop_thread()) throw std::logic_error("supervisor::stop() on the event-loop thread: use stop_async()");
  std::promise<void> done;
  auto f = done.get_future();
  bool already = core->loop.call([&] {
    if (core->stopped) return true;
    stop_async([&done] { done.set_value(); });
    return false;
  });
  if (!already) f.get();
}

bool supervisor::start_child(const std::string& id) {
  auto core = core_;
  return core->loop.call([&] {
    auto* c = core->find(id);
    if (c == nullptr) return false;
    if (c->u && c->u->pid() == 0) {
      c->consecutive = 0;
      c->budget.clear();  // started by hand: a fatal program gets its whole budget again
      c->started = std::chrono::steady_clock::now();
      c->u->launch();
    } else if (c->sub && c->sub->down) {
      c->sub->restart_all();
    }
    return true;
  });
}

bool supervisor::stop_child(const std::string& id) {
  auto core = core_;
  std::promise<void> done;
  auto f = done.get_future();
  // Asked here, not in the lambda (which always runs on the loop thread): a caller on another
  // thread waits for the stop to complete.
  const bool on_loop = core->loop.in_loop_thread();
  bool found = core->loop.call([&] {
    auto* c = core->find(id);
    if (c == nullptr) return false;
    if (c->restart_timer) core->loop.cancel_timer(std::exchange(c->restart_timer, 0));
    auto finished = [&done, on_loop] {
      if (!on_loop) done.set_value();
    };
    if (c->u) c->u->request_stop(finished);
    else c->sub->stop_all(finished);
    return true;
  });
  if (found && !core->loop.in_loop_thread()) f.get();
  return found;
}

bool supervisor::restart_child(const std::string& id) {
  auto core = core_;
  std::promise<void> done;
  auto f = done.get_future();
  const bool on_loop = core->loop.in_loop_thread();
  bool found = core->loop.call([&] {
    auto* c = core->find(id);
    if (c == nullptr) return false;
    if (c->restart_timer) core->loop.cancel_timer(std::exchange(c->restart_timer, 0));
    auto relaunch = [core, id, on_loop, &done] {
      if (auto* x = core->find(id); x != nullptr && !core->stopped) {
        x->consecutive = 0;
        x->budget.clear();
        core->relaunch(*x, true);
      }
      if (!on_loop) done.set_value();
    };
    if (c->u) c->u->request_stop(relaunch);
    else c->sub->stop_all(relaunch);
    return true;
  });
  if (found && !on_loop) f.get();
  return found;
}

bool supervisor::signal_child(const std::string& id, int sig) {
  auto core = core_;
  return core->loop.call([&] {
    auto* c = core->find(id);
    if (c == nullptr || !c->u) return false;
    c->u->signal(sig);
    return true;
  });
}

bool supervisor::remove_child(const std::string& id, std::function<void()> done) {
  auto core = core_;
  std::promise<void> removed;
  auto f = removed.get_future();
  const bool on_loop = core->loop.in_loop_thread();
  bool found = core->loop.call([&] {
    auto* c = core->find(id);
    if (c == nullptr) return false;
    if (c->restart_timer) core->loop.cancel_timer(std::exchange(c->restart_timer, 0));
    c->removing = true;
    c->strat = strategy::stop;
    if (c->u) c->u->set_strategy(strategy::stop);
    // Found again by identity once stopped: the deque may have grown meanwhile.
    auto forget = [core, u = c->u, sub = c->sub, done = std::move(done), on_loop, &removed] {
      for (auto& x : core->children)
        if (!x.removed && x.u == u && x.sub == sub) {
          x.removed = true;
          x.removing = false;
        }
      if (done) done();
      if (!on_loop) removed.set_value();
    };
    if (c->u) c->u->request_stop(forget);
    else c->sub->stop_all(forget);
    return true;
  });
  if (found && !on_loop) f.get();
  return found;
}

void supervisor::set_restart_limits(restart_policy policy, int intensity, std::chrono::milliseconds period) {
  auto core = core_;
  core->loop.call([&] {
    core->opt.policy = policy;
    core->opt.intensity = intensity;
    core->opt.period = period;
  });
}

}  // namespace procsup
