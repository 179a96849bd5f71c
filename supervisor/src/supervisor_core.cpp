// supervisor_core: the answers to its children's ends (the restart governor's decisions, mapped
// for the unit) and carrying them out: events, group restarts, going down. See supervisor_core.hpp.
#include "supervisor_core.hpp"

#include <spdlog/spdlog.h>

namespace procsup::detail {

void supervisor_core::emit(lifecycle_event e) {
  // The sink is called now (it may act before a restart); the log line may wait until the
  // restart is launched (event_loop::after_exit_handlers).
  if (opt.log)
    loop.after_exit_handlers([name = opt.name, e] {
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

lifecycle_event supervisor_core::event(event_kind k, const std::string& id, pid_t pid, std::string cause, int restarts) {
  lifecycle_event e;
  e.kind = k;
  e.process_id = id;
  e.pid = pid;
  e.time = std::chrono::system_clock::now();
  e.cause = std::move(cause);
  e.restarts = restarts;
  return e;
}

supervisor_core::child* supervisor_core::find(const std::string& id) {
  const auto it = by_id.find(id);
  if (it == by_id.end()) return nullptr;
  for (std::size_t i : it->second)
    if (!children[i].removed) return &children[i];
  return nullptr;
}

std::size_t supervisor_core::add(child c, restart_governor::child_config config) {
  c.slot = governor.add(std::move(config));
  by_id[c.id()].push_back(c.slot);
  children.push_back(std::move(c));
  return children.back().slot;
}

void supervisor_core::mark_removed(child& c) {
  c.removed = true;
  governor.retire(c.slot);
}

std::function<void(const std::string&)> supervisor_core::first_start_waiter(std::string id,
                                                                            std::function<void(const std::string&)> then) {
  if (auto* c = find(id)) c->first_start_pending = true;
  return [self = shared_from_this(), id = std::move(id), then = std::move(then)](const std::string& err) {
    if (auto* c = self->find(id)) {
      c->first_start_pending = false;
      if (!err.empty()) self->mark_removed(*c);
    }
    self->loop.post([then, err] { then(err); });
  };
}

supervisor_core::child& supervisor_core::adopt(const std::shared_ptr<unit>& u, restart_governor::child_config config) {
  child c;
  c.u = u;
  c.started = steady::now();
  const std::size_t slot = add(std::move(c), std::move(config));
  std::weak_ptr<supervisor_core> weak = weak_from_this();
  u->emit = [weak](const lifecycle_event& e) {
    if (auto self = weak.lock()) self->emit(e);
  };
  auto final_failed = [](std::string why) {
    exit_decision d;
    d.why = std::move(why);
    return d;
  };
  u->on_end = [weak, slot, final_failed](unit& x, const instance_end& end) {
    if (auto self = weak.lock()) return self->child_ended(slot, end);
    return final_failed("process " + x.id() + " " + end.cause);
  };
  u->on_launch_failed = [weak, slot, final_failed](unit& x, const launch_error& err) {
    if (auto self = weak.lock()) return self->launch_failed(slot, err);
    return final_failed("process " + x.id() + " could not start: " + err.message);
  };
  u->carry_out = [weak, slot](unit&, const exit_decision&) {
    if (auto self = weak.lock()) self->carry_out(self->children[slot]);
  };
  return children[slot];
}

// ---- failures

exit_decision supervisor_core::child_ended(std::size_t slot, const instance_end& end) {
  child& c = children[slot];
  if (c.removed || stopped || down || c.first_start_pending) {
    // Not kept (a first start that failed), or nobody restarts it: final.
    if (c.first_start_pending && !c.removed) mark_removed(c);
    c.first_start_pending = false;
    exit_decision d;
    d.what = end.clean ? exit_decision::kind::final_stopped : exit_decision::kind::final_failed;
    d.why = "process " + c.id() + " " + end.cause;
    return d;
  }
  return decide(c, {.clean = end.clean, .uptime = end.uptime}, end.cause);
}

exit_decision supervisor_core::launch_failed(std::size_t slot, const launch_error& err) {
  child& c = children[slot];
  exit_decision d;
  if (c.removed || stopped || down || c.first_start_pending) {
    if (c.first_start_pending && !c.removed) mark_removed(c);
    c.first_start_pending = false;
    d.what = exit_decision::kind::final_failed;
    d.why = "process " + c.id() + " could not start: " + err.message;
    return d;
  }
  const bool transient = (err.stage == "fork" || err.stage == "channel" || err.stage == "pipe" || err.stage == "pidfd" || err.stage == "cgroup") &&
                         (err.error == EAGAIN || err.error == ENOMEM || err.error == EMFILE || err.error == ENFILE);
  if (transient) {
    // Out of processes or memory for now: retry with backoff; not the child's fault, so it
    // does not count toward restart intensity.
    d.what = exit_decision::kind::restart;
    d.delay = governor.retry_delay(c.slot);
    d.counts_as_restart = false;
    answer a;
    a.retry = true;
    a.retry_delay = d.delay;
    c.pending = std::move(a);
    return d;
  }
  return decide(c, {.clean = false, .uptime = steady::duration::zero()}, "could not start: " + err.message);
}

exit_decision supervisor_core::decide(child& c, restart_governor::ending how, const std::string& why) {
  const std::string id = c.id();
  const std::string cause = how.clean ? "exited (" + why + "), restart_on_exit" : why;
  restart_decision d = governor.decide(c.slot, how, steady::now());
  exit_decision x;
  switch (d.what) {
    case restart_decision::kind::restart:
      x.what = exit_decision::kind::restart;
      x.delay = d.delay;
      x.take_group = d.group.size() > 1;
      break;
    case restart_decision::kind::stop:
      x.what = d.clean ? exit_decision::kind::final_stopped : exit_decision::kind::final_failed;
      x.why = d.clean ? "process " + id + " exited" : "process " + id + " failed: " + cause;
      break;
    case restart_decision::kind::escalate:
    case restart_decision::kind::give_up:
      x.what = exit_decision::kind::final_failed;
      x.go_down = true;
      x.why = "process " + id + " failed: " + cause;
      break;
    case restart_decision::kind::fatal:
      x.what = exit_decision::kind::fatal;
      x.why = "process " + id + " is fatal: " + cause;
      break;
  }
  answer a;
  a.d = std::move(d);
  a.cause = cause;
  a.why = why;
  c.pending = std::move(a);
  return x;
}

void supervisor_core::carry_out(child& c) {
  auto a = std::exchange(c.pending, std::nullopt);
  if (!a) return;  // a final answer of its own (removed, stopped, down): nothing more to do
  if (a->retry) {
    schedule_launch(c, a->retry_delay, launch_kind::retry);
    return;
  }
  const restart_decision& d = a->d;
  const std::string id = c.id();
  const int restarts = c.u ? c.u->info().restart_count : 0;
  switch (d.what) {
    case restart_decision::kind::restart:
      restart_group(c.slot, d, a->cause);
      return;
    case restart_decision::kind::stop:
      if (d.clean) emit(event(event_kind::stopped, id, 0, a->why, restarts));
      else emit(event(event_kind::stopped, id, 0, a->cause));
      return;
    case restart_decision::kind::escalate:
      emit(event(event_kind::escalated, id, 0, a->cause));
      go_down(false, "child " + id + " failed: " + a->cause);
      return;
    case restart_decision::kind::fatal:
      if (c.restart_timer) loop.cancel_timer(std::exchange(c.restart_timer, 0));
      emit(event(event_kind::fatal, id, 0, d.limit.describe() + " (last: " + a->cause + ")", restarts));
      return;
    case restart_decision::kind::give_up:
      go_down(true, "restart intensity exceeded: " + d.limit.describe() + " (last: " + id + " " + a->cause + ")");
      return;
  }
}

void supervisor_core::sub_failed(supervisor_core* sub, const std::string& cause) {
  for (auto& c : children)
    if (c.sub.get() == sub && !c.removed) {
      if (stopped || down) return;
      decide(c, {.clean = false, .uptime = steady::now() - c.started}, cause);
      carry_out(c);
      return;
    }
}

void supervisor_core::restart_group(std::size_t failed_at, const restart_decision& d, const std::string& cause) {
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
    for (auto i : group) self->schedule_launch(self->children[i], delay, launch_kind::restart);
  };
  stop_sequence(std::make_shared<const stop_plan>(d.stop_first), 0, relaunch, true);
}

void supervisor_core::go_down(bool intensity, const std::string& cause) {
  if (down || stopped) return;
  down = true;
  gave_up = gave_up || intensity;
  if (intensity) emit(event(event_kind::gave_up, opt.name, 0, cause));
  auto self = shared_from_this();
  stop_all([self, cause] { self->escalate_up(cause); });
}

void supervisor_core::escalate_up(const std::string& cause) {
  if (auto p = parent.lock()) {
    p->sub_failed(this, "supervisor " + opt.name + " failed: " + cause);
  } else {
    emit(event(event_kind::escalated, opt.name, 0, cause));
    if (opt.on_escalate) opt.on_escalate(cause);
  }
}

}  // namespace procsup::detail
