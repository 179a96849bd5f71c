// A unit's launch: the instance's setup, channel, fork or exec, its watches; readiness; a launch
// that failed. See detail/unit.hpp; the transitions are in detail/unit_phase.hpp.
#include <sys/epoll.h>
#include <sys/wait.h>
#include <signal.h>

#include <cstring>

#include "procsup/supervisor/detail/unit.hpp"
#include "procsup/worker/main.hpp"
#include "unit_text.hpp"

namespace procsup::detail {

namespace {
// Every forked child's channel region, process-wide. Never destroyed (regions may be released
// while statics go away); its chunks are unmapped as soon as they are empty.
shm::region_pool& channel_pool() {
  static auto* pool = new shm::region_pool();
  return *pool;
}
}  // namespace

void unit::launch(launch_kind kind) {
  unit_phase from;
  {
    std::lock_guard lk(mu_);
    from = phase_;
    if (unit_step(from, unit_event::launch, {}).action != unit_action::start) return;  // an instance runs
    // Sends made while it launches queue for it.
    phase_ = unit_phase::starting;
    goal_ = stop_goal::stopped;
    if (kind == launch_kind::restart || kind == launch_kind::restart_now) ++restarts_;
  }
  told(from, unit_event::launch, unit_phase::starting);
  kill_reason_.clear();
  {
    std::lock_guard rk(path_.reader);
    init_error_.clear();
    handler_error_.clear();
    protocol_error_.clear();
  }
  ready_seen_ = false;

  const bool with_channel = static_cast<bool>(spec_.body) || spec_.protocol;
  std::optional<ipc::channel> chan;
  std::vector<int> close_after;
  // The instance's pid, or why it did not start.
  auto start = [&]() -> std::variant<pid_t, launch_error> {
    child_setup setup = spec_.setup;
    if (spec_.cgroup) {
      setup.cgroup_procs_fd = spec_.cgroup->procs_fd();
      if (setup.cgroup_procs_fd < 0) {
        // Out of fds: not started at all rather than started outside its cgroup.
        const int e = errno;
        return launch_error{e, "cgroup", "cannot open " + spec_.cgroup->path() + "/cgroup.procs: " + std::strerror(e)};
      }
      setup.cgroup_dir_fd = spec_.cgroup->dir_fd();  // -1: the move through cgroup.procs above
      if (spec_.cgroup->tracks_memory()) oom_kills_at_start_ = spec_.cgroup->oom_kills();
    }
    try {
      if (spec_.prepare_launch) close_after = spec_.prepare_launch(setup);
    } catch (const std::system_error& e) {
      // Out of fds for its output pipes (EMFILE): a failed start of this instance, retried by its
      // strategy, never an error of the supervisor.
      return launch_error{e.code().value(), "pipe", e.what()};
    }
    try {
      // A forked child's channel comes from the pool (few mappings in the parent, so forks stay
      // fast with many children); an exec'd worker gets a memfd of its own.
      if (with_channel) chan = spec_.body ? ipc::channel::create(spec_.channel, channel_pool()) : ipc::channel::create(spec_.channel);
      if (spec_.body) {
        // The child maps its region at the parent's address and keeps the eventfd under its own
        // number.
        setup.maps.push_back(chan->region_source());
        setup.fds.emplace_back(chan->parent_eventfd(), chan->parent_eventfd());
        auto* c = &*chan;
        auto* body = &spec_.body;
        // Not waiting for the child's setup (closing the parent's other fds in it is most of the
        // start when the parent has many): the loop goes on, the setup pipe reports later.
        auto forked = launch_fork_async(setup, [c, body] {
          auto ep = c->child_end();
          return (*body)(ep);
        });
        if (auto* f = std::get_if<forked_child>(&forked)) {
          setup_report_fd_ = f->report_fd;
          return f->pid;
        }
        return std::get<launch_error>(forked);
      }
      // The spec as it is (no copy of its argv and environment per restart), with this run's
      // setup; a protocol worker's environment also names its channel.
      const exec_spec* ex = &*spec_.exec;
      exec_spec with_channel_env;
      if (spec_.protocol) {
        setup.fds.emplace_back(chan->memfd(), worker::channel_memfd);
        setup.fds.emplace_back(chan->parent_eventfd(), worker::channel_eventfd);
        with_channel_env = *spec_.exec;
        with_channel_env.env.push_back(std::string(worker::channel_env) + "=" + std::to_string(worker::channel_memfd) +
                                       ":" + std::to_string(worker::channel_eventfd));
        ex = &with_channel_env;
      }
      // A restart at once: its start first, our bookkeeping after.
      return launch_exec(*ex, setup, kind == launch_kind::restart_now);
    } catch (const std::exception& e) {
      return launch_error{errno, "channel", std::string("cannot create the channel: ") + e.what()};
    }
  };
  const std::variant<pid_t, launch_error> r = start();
  for (int fd : close_after) sys::close_fd(fd);
  // A restart from an exit handler: the previous instance is reaped only now, after the new one
  // is on its way.
  loop_.reap_exited();

  if (auto* err = std::get_if<launch_error>(&r)) {
    fail_launch(*err, from, nullptr);
    return;
  }
  const pid_t pid = std::get<pid_t>(r);
  {
    std::lock_guard rk(path_.reader);
    std::lock_guard lk(mu_);
    pid_ = pid;
    started_at_ = std::chrono::system_clock::now();
    started_mono_ = std::chrono::steady_clock::now();
    if (chan) {
      chan_ = std::move(chan);
      // A forked child has its mapping; an exec'd one has its own copy of the memfd.
      chan_->keep_out_of_forks();
      ep_ = chan_->parent_end();
      send_start_locked();
    }
  }
  if (emit) {
    // The cause says which start this is (events carry a cause for every kind).
    const char* how = spec_.body ? "forked" : spec_.protocol ? "exec'd worker" : "exec'd program";
    emit({event_kind::spawned, spec_.id, pid, std::chrono::system_clock::now(),
          std::string(how) + (restarts_ == 0 ? ", first start" : ", restart " + std::to_string(restarts_)), restarts_, {}, -1});
  }
  std::weak_ptr<unit> weak = weak_from_this();
  if (auto err = loop_.try_watch_child(pid, [weak](int status, exit_context& ctx) {
        if (auto self = weak.lock()) self->on_exit(status, ctx);
      })) {
    // No pidfd for it (EMFILE): it cannot be watched, so it must not run. A failed start.
    signal_all(SIGKILL);
    ::waitpid(pid, nullptr, 0);
    {
      std::lock_guard rk(path_.reader);
      std::lock_guard lk(mu_);
      drop_channel_locked();
      pid_ = 0;
    }
    if (setup_report_fd_ >= 0) sys::close_fd(std::exchange(setup_report_fd_, -1));
    fail_launch(launch_error{*err, "pidfd", "pidfd_open for " + spec_.id + ": " + std::strerror(*err)}, from, nullptr);
    return;
  }
  if (setup_report_fd_ >= 0)
    loop_.watch(setup_report_fd_, EPOLLIN, [weak](std::uint32_t) {
      if (auto self = weak.lock()) self->on_setup_report();
    });
  if (!with_channel && !spec_.ready_later) {
    on(unit_event::ready);
    return;
  }
  arm_phase_timer(spec_.start_timeout, unit_event::start_timeout);
  if (!with_channel) return;  // ready_later: the owner calls mark_ready()
  loop_.watch(ep_.wake_fd(), EPOLLIN, [weak](std::uint32_t) {
    if (auto self = weak.lock()) self->pump_channel();
  });
  pump_channel();  // arms the wakeup for the ready frame
}

void unit::become_ready() {
  cancel_phase_timer();
  pid_t pid;
  {
    std::lock_guard lk(mu_);
    pid = pid_;
    flush_pending_locked();
  }
  if (emit) {
    const bool worker = spec_.body || spec_.protocol;
    const std::string how = std::exchange(ready_how_, {});
    emit({event_kind::ready, spec_.id, pid, std::chrono::system_clock::now(),
          worker ? "init() finished" : how.empty() ? "exec'd" : how, restarts_, {}, -1});
  }
  notify_started("");
  ensure_hang_timer();
  pump_channel();
}

void unit::fail_launch(const launch_error& err, unit_phase from, exit_context* ctx) {
  // The owner's answer, the unit's own part of it, then who waited, the event, the owner's part.
  exit_decision d = on_launch_failed ? on_launch_failed(*this, err)
                                     : default_decision(false, "process " + spec_.id + " could not start: " + err.message);
  step_facts facts;
  facts.decided = d.what;
  const unit_event ev = from == unit_phase::setup_failed ? unit_event::exited : unit_event::launch_failed;
  const unit_transition t = unit_step(from, ev, facts);
  {
    std::lock_guard lk(mu_);
    last_error_ = err.message;
    apply_decision_locked(d);
    phase_ = t.next;
  }
  told(from, ev, t.next);
  if (ctx) ctx->reap_now();
  notify_started(err.message);
  if (emit) emit({event_kind::spawn_failed, spec_.id, 0, std::chrono::system_clock::now(), err.message, restarts_, {}, -1});
  if (carry_out) carry_out(*this, d);
  complete_async();
}

void unit::send_start_locked() {
  next_id_ = 1;
  last_answered_ = 0;
  start_info info{spec_.id, ++instances_, restarts_, last_error_, last_exit_status_};
  // A fresh ring holds the frame unless it is tiny: shorten the texts to fit, or send an empty
  // body (the child then gets a default start_info) rather than none (it would wait for ever).
  const std::size_t room = ep_.max_body();
  auto body = worker::encode_start_info(info);
  if (body.size() > room) {
    const std::size_t over = body.size() - room;
    info.last_error.resize(info.last_error.size() > over ? info.last_error.size() - over : 0);
    body = worker::encode_start_info(info);
    if (body.size() > room) body.clear();
  }
  (void)ep_.try_send(ipc::frame_kind::start, 0, body);  // a fresh ring has room for it
}

void unit::on_setup_report() {
  launch_error err;
  const auto st = read_setup_report(setup_report_fd_, err);
  if (st == setup_report::pending) return;
  close_setup_report();
  if (st == setup_report::failed) {
    event_data d;
    d.error = std::move(err);
    on(unit_event::setup_failed, std::move(d));
  }
}

void unit::close_setup_report() {
  loop_.unwatch(setup_report_fd_);
  sys::close_fd(std::exchange(setup_report_fd_, -1));
}

}  // namespace procsup::detail
