// supervisor_core: launching and stopping its children (waves, relaunches, the whole tree).
// See supervisor_core.hpp.
#include "supervisor_core.hpp"

namespace procsup::detail {

// The governor makes the waves (restart_governor::stop_waves): the instances of one program
// share a stop group and do not depend on each other.
void supervisor_core::stop_sequence(std::shared_ptr<const stop_plan> waves, std::size_t k, std::function<void()> done,
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

void supervisor_core::relaunch(child& c, launch_kind kind) {
  c.started = steady::now();
  if (c.u) c.u->launch(kind);
  else c.sub->restart_all();
}

void supervisor_core::schedule_launch(child& c, std::chrono::milliseconds delay, launch_kind kind) {
  if (c.restart_timer) loop.cancel_timer(std::exchange(c.restart_timer, 0));
  const std::size_t slot = c.slot;
  auto self = shared_from_this();
  auto go = [self, slot](launch_kind k) {
    child& x = self->children[slot];
    if (x.removed || self->stopped || self->down) return;
    x.restart_timer = 0;
    self->relaunch(x, k);
  };
  if (delay.count() <= 0) {
    // At once (from the exit handler of the instance it replaces): the new instance goes first.
    go(kind == launch_kind::restart ? launch_kind::restart_now : kind);
  } else {
    c.restart_timer = loop.add_timer(delay, [go, kind] { go(kind); });
  }
}

void supervisor_core::stop_all(std::function<void()> done) {
  std::vector<std::size_t> idx;
  for (std::size_t i = children.size(); i-- > 0;)
    if (!children[i].removed) idx.push_back(i);
  for (auto& c : children)
    if (c.restart_timer) loop.cancel_timer(std::exchange(c.restart_timer, 0));
  stop_sequence(std::make_shared<const stop_plan>(governor.stop_waves(idx)), 0, std::move(done), false);
}

void supervisor_core::restart_all() {
  down = false;
  governor.reset_all();
  started = steady::now();
  for (auto& c : children) {
    if (!c.removed) relaunch(c, launch_kind::restart);
  }
}

process_info supervisor_core::info_as_child() const {
  process_info i;
  i.id = opt.name;
  i.state = stopped ? process_state::stopped : down ? process_state::failed : process_state::running;
  return i;
}

}  // namespace procsup::detail
