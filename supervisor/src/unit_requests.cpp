// The reply fast path of a unit: sends from any thread (straight into the instance's ring when
// it runs and nothing waits before them, else the bounded queue), the reply ring's reader
// (drained by the loop, or by a caller of get() spinning on it), the queue's flush, hang
// detection and the loop-thread sends of send_bytes_async(). Its locks: path_.reader (the reader)
// before mu_. See detail/unit.hpp.
#include "procsup/supervisor/detail/unit.hpp"
#include "unit_text.hpp"

namespace procsup::detail {

void unit::fail_all_locked(std::deque<pending_send>& q, const std::string& why) {
  for (auto& p : q) p.state->fail(why);
  q.clear();
}
void unit::flush_pending_locked() {
  if (phase_ != unit_phase::running || !has_channel()) return;
  while (!pending_.empty()) {
    auto& p = pending_.front();
    const std::uint64_t id = next_id_;
    auto st = ep_.try_send(ipc::frame_kind::request, id, p.body);
    if (st == shm::ring_status::full) return;
    if (st == shm::ring_status::ok) {
      ++next_id_;
      inflight_.add(id, std::move(p));
    } else if (st == shm::ring_status::too_large) {
      p.state->fail("request of " + std::to_string(p.body.size()) + " bytes exceeds process " + spec_.id +
                    "'s channel limit of " + std::to_string(ep_.max_body()) + " bytes");
    } else {
      return;  // corrupt: pump_channel() kills it
    }
    pending_.pop_front();
  }
}

std::shared_ptr<reply_state> unit::send_bytes(std::vector<std::byte> body) {
  auto st = std::make_shared<reply_state>();
  st->owner = weak_from_this();
  bool need_pump = false;
  {
    std::lock_guard lk(mu_);
    const process_state state = public_state(phase_, goal_);
    switch (state) {
      case process_state::stopped:
      case process_state::failed:
      case process_state::fatal:
      case process_state::stopping:
        st->fail("process " + spec_.id + " is " + to_string(state) +
                 (last_error_.empty() ? std::string() : " (last error: " + last_error_ + ")"));
        return st;
      case process_state::starting:
        break;
      case process_state::running:
        if (pending_.empty() && has_channel()) {
          const std::uint64_t id = next_id_;
          auto r = ep_.try_send(ipc::frame_kind::request, id, body);
          if (r == shm::ring_status::ok) {
            ++next_id_;
            inflight_.add(id, pending_send{std::move(body), st});  // kept in case it must be re-sent
            // Now, while the child works on it, rather than on the reply's path.
            retired_.clear();
            goto sent;
          }
          if (r == shm::ring_status::too_large) {
            st->fail("request of " + std::to_string(body.size()) + " bytes exceeds process " + spec_.id +
                     "'s channel limit of " + std::to_string(ep_.max_body()) + " bytes");
            return st;
          }
          need_pump = true;  // full (or corrupt): the loop waits for space (or kills it)
        }
        break;
    }
    if (pending_.size() >= spec_.max_pending) {
      st->fail("process " + spec_.id + ": send queue is full (" + std::to_string(spec_.max_pending) +
               " requests waiting while it " + (state == process_state::starting ? "starts" : "is busy") + ")");
      return st;
    }
    pending_.push_back({std::move(body), st});
  }
sent:
  if (need_pump) post_pump();
  if (spec_.request_timeout.count() > 0 && !hang_timer_on_.load(std::memory_order_relaxed)) {
    std::weak_ptr<unit> weak = weak_from_this();
    loop_.post([weak] {
      if (auto self = weak.lock()) self->ensure_hang_timer();
    });
  }
  return st;
}

void unit::drain_locked() {
  if (!has_channel()) return;
  for (;;) {
    ipc::message m;
    auto r = ep_.try_receive(m);
    if (r == shm::ring_status::empty) return;
    if (r != shm::ring_status::ok) {
      if (protocol_error_.empty()) protocol_error_ = "its channel is corrupt: " + ep_.error();
      return;
    }
    switch (m.kind) {
      case ipc::frame_kind::reply:
      case ipc::frame_kind::error:
      case ipc::frame_kind::rejected: {
        std::shared_ptr<reply_state> st;
        if (m.id == 0 && m.kind == ipc::frame_kind::error) {
          init_error_ = as_text(m.body);
        } else {
          std::lock_guard lk(mu_);
          if (pending_send answered; inflight_.take(m.id, answered)) {
            st = std::move(answered.state);
            // A small body is freed by the next send (off the reply's path); a large one, or any
            // once 64 wait (a stream that never takes the fast path), here.
            if (answered.body.capacity() <= 4096 && retired_.size() < 64) retired_.push_back(std::move(answered.body));
            last_answered_ = m.id;  // answered: never sent again
          }
          // An error frame says handle() threw and the instance is on its way out: sends from
          // now on wait for the next instance instead of going to the dying one (also without a
          // restart: such sends then fail once its exit is confirmed, naming how it failed,
          // rather than racing the dying instance). The one event applied by the reader, on any
          // thread (its action is the phase alone), so that no send slips in before the loop
          // hears of it. A rejected frame fails its request alone: the instance goes on serving.
          if (m.kind == ipc::frame_kind::error) phase_ = unit_step(phase_, unit_event::error_frame, {}).next;
        }
        if (st) {
          if (m.kind == ipc::frame_kind::reply) {
            st->fulfill(m.body);
          } else if (m.kind == ipc::frame_kind::rejected) {
            st->fail(as_text(m.body));
          } else {
            handler_error_ = as_text(m.body);
            st->fail(handler_error_);
          }
        } else if (m.id != 0 && protocol_error_.empty()) {
          protocol_error_ = "it replied to request " + std::to_string(m.id) + ", which is not in flight";
        }
        break;
      }
      case ipc::frame_kind::ready:
        ready_seen_.store(true, std::memory_order_release);
        break;
      case ipc::frame_kind::heartbeat:
        break;
      default:
        if (protocol_error_.empty())
          protocol_error_ = std::string("it sent a frame of kind ") + ipc::to_string(m.kind) + " to its supervisor";
        break;
    }
    ep_.release();
    if (!protocol_error_.empty()) return;
  }
}

void unit::post_pump() {
  if (!path_.claim_pump()) return;
  loop_.post([weak = weak_from_this()] {
    if (auto self = weak.lock()) self->pump_channel();
  });
}

void unit::pump_channel() {
  path_.pump_started();
  if (!has_channel()) return;
  ep_.clear_wake();
  std::string broken;
  bool ready_now = false;
  {
    std::lock_guard rk(path_.reader);
    for (;;) {
      if (!has_channel()) return;
      drain_locked();
      if (!protocol_error_.empty()) {
        broken = protocol_error_;
        break;
      }
      if (ready_seen_.exchange(false, std::memory_order_acq_rel)) ready_now = true;
      std::size_t want_space = 0;
      bool want_read;
      {
        std::lock_guard lk(mu_);
        flush_pending_locked();
        if (!pending_.empty() && phase_ == unit_phase::running)
          want_space = std::min(pending_.front().body.size(), ep_.max_body());
        // The loop listens for replies only when somebody waits for them in the kernel, while a
        // hang timer runs, or to catch the ready frame; a caller in get() reads the ring itself
        // (so a hot request/reply loop makes no wake-up per reply).
        want_read = (phase_ == unit_phase::starting && !ready_now) || path_.someone_sleeps() ||
                    (spec_.request_timeout.count() > 0 && !inflight_.empty()) || !async_.empty();
      }
      if (!want_read && want_space == 0) break;
      if (ep_.arm_wakeup(want_space)) break;
      if (ep_.broken()) {
        broken = "its channel is corrupt: " + ep_.error();
        break;
      }
    }
  }
  if (!broken.empty()) {
    event_data d;
    d.cause = std::move(broken);
    on(unit_event::corrupt_channel, std::move(d));
    return;
  }
  if (ready_now) on(unit_event::ready);
  complete_async();
}

// The ring as request_path::wait() reads it (path_.reader held for each call).
struct unit::reply_ring {
  unit& u;
  void drain() { u.drain_locked(); }
  bool open() const { return u.has_channel(); }
  bool readable() const { return u.has_channel() && u.protocol_error_.empty(); }
  bool arm_wakeup() { return u.ep_.arm_wakeup(0); }
  bool needs_loop() const { return u.ready_seen_.load() || !u.protocol_error_.empty(); }
  void post_pump() { u.post_pump(); }
};

bool unit::wait_reply(reply_state& st, std::chrono::nanoseconds timeout) {
  if (st.ready()) return true;
  if (loop_.in_loop_thread())
    throw std::logic_error("waiting for a reply on the supervisor's event-loop thread would deadlock");
  reply_ring ring{*this};
  return path_.wait(st, timeout, ring);
}

void unit::ensure_hang_timer() {
  if (spec_.request_timeout.count() <= 0 || hang_timer_) return;
  {
    std::lock_guard lk(mu_);
    if (inflight_.empty() || phase_ != unit_phase::running) {
      hang_timer_on_ = false;
      return;
    }
    hang_seen_oldest_ = inflight_.oldest();
  }
  hang_timer_on_ = true;
  hang_timer_ = loop_.add_timer(spec_.request_timeout, [weak = weak_from_this()] {
    if (auto self = weak.lock()) {
      self->hang_timer_ = 0;
      self->hang_check();
    }
  });
  pump_channel();  // listen for replies while the timer runs
}

void unit::hang_check() {
  {
    std::lock_guard rk(path_.reader);
    drain_locked();
  }
  complete_async();
  std::uint64_t oldest = 0;
  {
    std::lock_guard lk(mu_);
    if (!inflight_.empty() && phase_ == unit_phase::running) oldest = inflight_.oldest();
  }
  if (oldest == 0) {
    hang_timer_on_ = false;
    return;
  }
  if (oldest == hang_seen_oldest_) {
    event_data d;
    d.cause = "hung: request " + std::to_string(oldest) + " got no reply within " + ms_text(spec_.request_timeout);
    on(unit_event::hang_timeout, std::move(d));
    return;
  }
  ensure_hang_timer();
}

void unit::send_bytes_async(std::vector<std::byte> body, async_done done) {
  auto st = send_bytes(std::move(body));
  async_.emplace_back(std::move(st), std::move(done));
  // Listen for the reply now: without async sends pending the loop may not be reading.
  pump_channel();
  complete_async();  // refused at once (stopped, queue full, too large)
}

void unit::complete_async() {
  if (async_.empty()) return;
  std::vector<std::pair<std::shared_ptr<reply_state>, async_done>> finished;
  for (auto it = async_.begin(); it != async_.end();) {
    if (it->first->ready()) {
      finished.push_back(std::move(*it));
      it = async_.erase(it);
    } else {
      ++it;
    }
  }
  // Outside the iteration: a callback may send again.
  for (auto& [st, done] : finished) {
    if (!done) continue;
    if (st->failed) done(false, st->error);
    else done(true, as_text(st->bytes));
  }
}

}  // namespace procsup::detail
