// The supervisor's public face: spawning, control by id, stopping; and the standalone process
// helpers. All state lives on the loop thread in supervisor_core (supervisor_core.hpp); the
// public methods post there. See supervisor.hpp.
#include "procsup/supervisor/supervisor.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>

#include "supervisor_core.hpp"

namespace procsup::detail {

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
  // No owner hooks: an instance's end is final (stopped if clean, else failed).
  u->emit = [](const lifecycle_event& e) {
    if (e.kind == event_kind::crashed) spdlog::warn("{} (pid {}) crashed: {}", e.process_id, e.pid, e.cause);
  };
}

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
      c->u->launch(detail::launch_kind::first_start);
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
        core->relaunch(*x, detail::launch_kind::restart);
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
