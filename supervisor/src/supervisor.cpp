// The supervisor: carries out its restart_governor's answers (restart a group after a delay,
// stop, escalate, go fatal, give up) on real children, and nesting. All state lives on the loop
// thread; the public methods post there. See supervisor.hpp.
#include "procsup/supervisor/supervisor.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <future>

#include "procsup/supervisor/restart_governor.hpp"

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
  supervisor_core(supervisor_options o, event_loop& l)
      : opt(std::move(o)), loop(l), governor(opt.policy, opt.intensity, opt.period, opt.backoff) {}

  // The mechanism side of a child; what its failures mean (strategy, budgets, backoff) is in
  // the governor under the same slot.
  struct child {
    std::shared_ptr<unit> u;
    std::shared_ptr<supervisor_core> sub;
    std::size_t slot = 0;  // its index in children and in the governor
    event_loop::timer_id restart_timer = 0;
    steady::time_point started{};
    bool removed = false;
    const std::string& id() const { return u ? u->id() : sub->opt.name; }
  };

  // Waves of children to stop (indices): a wave is stopped together, the next once it is reaped.
  using stop_plan = std::vector<std::vector<std::size_t>>;

  // As given. Its policy, intensity, period and backoff are the governor's from then on.
  supervisor_options opt;
  event_loop& loop;
  // Strategies, budgets, intensity, backoff and group choice: the one place restarts are decided.
  restart_governor governor;
  std::weak_ptr<supervisor_core> parent;
  std::deque<child> children;
  std::unordered_map<std::string, std::vector<std::size_t>> by_id;  // indices into children, by id
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
  void add(child c, restart_governor::child_config config) {
    c.slot = governor.add(std::move(config));
    by_id[c.id()].push_back(c.slot);
    children.push_back(std::move(c));
  }

  // Child `c` is gone for good: find() skips it and the governor never restarts it again (nor
  // takes it along in a sibling's group).
  void mark_removed(child& c) {
    c.removed = true;
    governor.retire(c.slot);
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
        if (auto* c = self->find(id)) self->mark_removed(*c);
      self->loop.post([then, err] { then(err); });
    };
  }

  void adopt(const std::shared_ptr<unit>& u, restart_governor::child_config config) {
    u->set_strategy(config.on_failure);
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
    c.started = steady::now();
    add(std::move(c), std::move(config));
  }

  // ---- failures

  void child_ended(unit& u, const std::string& id, const instance_end& end) {
    child* c = find(id);
    if (c == nullptr || stopped || down) {
      u.set_final(end.clean ? process_state::stopped : process_state::failed, "process " + id + " " + end.cause);
      return;
    }
    handle_failure(*c, {.clean = end.clean, .uptime = end.uptime}, end.cause);
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
      schedule_launch(*c, governor.retry_delay(c->slot));
      return;
    }
    handle_failure(*c, {.clean = false, .uptime = steady::duration::zero()}, "could not start: " + err.message);
  }

  // Child `c`'s instance failed, or exited cleanly, and nobody asked for it: carries out the
  // governor's answer. `why` is how it ended ("killed by SIGSEGV", "exited with code 0").
  void handle_failure(child& c, restart_governor::ending how, const std::string& why) {
    const std::string id = c.id();
    const std::string cause = how.clean ? "exited (" + why + "), restart_on_exit" : why;
    const restart_decision d = governor.decide(c.slot, how, steady::now());
    switch (d.what) {
      case restart_decision::kind::restart:
        restart_group(c.slot, d, cause);
        return;
      case restart_decision::kind::stop:
        if (d.clean) {
          if (c.u) c.u->set_final(process_state::stopped, "process " + id + " exited");
          emit(event(event_kind::stopped, id, 0, why, c.u ? c.u->info().restart_count : 0));
        } else {
          if (c.u) c.u->set_final(process_state::failed, "process " + id + " failed: " + cause);
          emit(event(event_kind::stopped, id, 0, cause));
        }
        return;
      case restart_decision::kind::escalate:
        if (c.u) c.u->set_final(process_state::failed, "process " + id + " failed: " + cause);
        emit(event(event_kind::escalated, id, 0, cause));
        go_down(false, "child " + id + " failed: " + cause);
        return;
      case restart_decision::kind::fatal:
        if (c.restart_timer) loop.cancel_timer(std::exchange(c.restart_timer, 0));
        if (c.u) c.u->set_final(process_state::fatal, "process " + id + " is fatal: " + cause);
        emit(event(event_kind::fatal, id, 0, d.limit.describe() + " (last: " + cause + ")",
                   c.u ? c.u->info().restart_count : 0));
        return;
      case restart_decision::kind::give_up:
        if (c.u) c.u->set_final(process_state::failed, "process " + id + " failed: " + cause);
        go_down(true, "restart intensity exceeded: " + d.limit.describe() + " (last: " + id + " " + cause + ")");
        return;
    }
  }

  // Restarts d.group after d.delay: each member is marked restarting (sends queue up), the
  // running siblings are stopped wave by wave (d.stop_first), then the group starts in order.
  void restart_group(std::size_t failed_at, const restart_decision& d, const std::string& cause) {
    for (auto i : d.group) {
      auto& m = children[i];
      if (m.restart_timer) loop.cancel_timer(std::exchange(m.restart_timer, 0));
      if (m.u) m.u->set_restarting();
      lifecycle_event e = event(event_kind::restarting, m.id(), 0,
                                i == failed_at ? cause : "sibling " + children[failed_at].id() + " failed", 0);
      if (m.u) e.restarts = m.u->info().restart_count;
      e.delay = d.delay;
      emit(e);
    }
    auto self = shared_from_this();
    auto relaunch = [self, group = d.group, delay = d.delay] {
      for (auto i : group) self->schedule_launch(self->children[i], delay, true);
    };
    stop_sequence(std::make_shared<const stop_plan>(d.stop_first), 0, relaunch, true);
  }

  // Stops the children of (*waves)[k], then of the waves after it, one wave after the other;
  // then calls done. The governor makes the waves (restart_governor::stop_waves): the instances
  // of one program share a stop group and do not depend on each other.
  void stop_sequence(std::shared_ptr<const stop_plan> waves, std::size_t k, std::function<void()> done,
                     bool restarting) {
    if (k == waves->size()) {
      done();
      return;
    }
    const std::vector<std::size_t>& wave = (*waves)[k];
    auto self = shared_from_this();
    auto left = std::make_shared<std::size_t>(wave.size());
    auto next = [self, waves, k, done, restarting, left] {
      if (--*left == 0) self->stop_sequence(waves, k + 1, done, restarting);
    };
    for (std::size_t i : wave) {
      auto& c = children[i];
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
        handle_failure(c, {.clean = false, .uptime = steady::now() - c.started}, cause);
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
    stop_sequence(std::make_shared<const stop_plan>(governor.stop_waves(idx)), 0, std::move(done), false);
  }

  void restart_all() {
    down = false;
    governor.reset_all();
    started = steady::now();
    for (auto& c : children) {
      if (!c.removed) relaunch(c, true);
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
    core->adopt(u, {.on_failure = s, .restart_on_exit = restart_on_exit});
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
      core->adopt(u, {.on_failure = s});
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

std::shared_ptr<detail::unit> supervisor::add_program(program_options o, strategy s, bool wait) {
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
    core->adopt(u, {.on_failure = s,
                    .restart_on_exit = o.restart_on_exit,
                    .backoff = o.backoff,
                    .own_budget = o.own_budget,
                    .max_restarts = o.max_restarts,
                    .restart_period = o.restart_period,
                    .stop_group = o.stop_group});
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
    c.started = std::chrono::steady_clock::now();
    core->add(std::move(c), {.on_failure = s});
  });
  return std::shared_ptr<supervisor>(new supervisor(sub));
}

void supervisor::supervise_id(const std::string& id, strategy s) {
  auto core = core_;
  core_->loop.call([&] {
    auto* c = core->find(id);
    if (c == nullptr) throw std::invalid_argument("supervisor " + core->opt.name + " has no child " + id);
    core->governor.set_strategy(c->slot, s);
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
        i.on_failure = core->governor.strategy_of(c.slot);
        out.push_back(std::move(i));
      } else {
        auto i = c.sub->info_as_child();
        i.on_failure = core->governor.strategy_of(c.slot);
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
      core->governor.reset(c->slot);  // started by hand: a fatal program gets its whole budget again
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
        core->governor.reset(x->slot);
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
    core->governor.retire(c->slot);  // it stays down and no sibling's restart revives it
    if (c->u) c->u->set_strategy(strategy::stop);
    // Found again by identity once stopped: the deque may have grown meanwhile.
    auto forget = [core, u = c->u, sub = c->sub, done = std::move(done), on_loop, &removed] {
      for (auto& x : core->children)
        if (!x.removed && x.u == u && x.sub == sub) core->mark_removed(x);
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
    core->governor.set_limits(policy, intensity, period);
  });
}

}  // namespace procsup
