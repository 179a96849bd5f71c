// Readiness rules and health checks per program instance (services.hpp): what each rule adds
// to a launch, what its notifications and probes do to the instance, and what `ctl status`
// shows of them. Costs nothing for a program without a rule: no socket, no timer.
#include "procsup/daemon/services.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <system_error>

#include "procsup/daemon/logging.hpp"
#include "procsup/daemon/notify_socket.hpp"
#include "procsup/daemon/probe.hpp"

namespace procsup::daemon {

namespace {
using json = nlohmann::json;
using std::chrono::milliseconds;

bool ready_later(readiness r) {
  return r == readiness::notify || r == readiness::fd || r == readiness::tcp || r == readiness::http ||
         r == readiness::exec;
}

probe_spec::kind probe_kind(readiness r) {
  return r == readiness::http ? probe_spec::kind::http : r == readiness::exec ? probe_spec::kind::exec : probe_spec::kind::tcp;
}

// A microsecond count from a notify field ("EXTEND_TIMEOUT_USEC=5000000"), if it is one.
std::optional<long long> usec_field(const std::string& text) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos || text.size() > 18) return std::nullopt;
  return std::stoll(text);
}
}  // namespace

struct services::instance {
  std::string id;
  const program_config* cfg = nullptr;
  procsup::program unit;
  pid_t pid = 0;  // the current instance's main process (0 between instances)
  bool running = false;  // ready and not ended
  // notify
  std::unique_ptr<notify_socket> sock;
  std::string phase;        // "" | "reloading" | "stopping" (RELOADING=1 / STOPPING=1 until READY=1)
  std::string status_text;  // STATUS=
  pid_t main_pid = 0;       // MAINPID=
  int errno_value = 0;      // ERRNO=
  milliseconds watchdog{0};
  event_loop::timer_id watchdog_timer = 0;
  // ready = { fd = N }: the read end of this launch's pipe
  int ready_read = -1;
  // probes
  std::unique_ptr<probe> ready_probe;
  event_loop::timer_id ready_timer = 0;
  std::string ready_error;  // the last failed readiness probe
  std::unique_ptr<probe> health_probe;
  event_loop::timer_id health_timer = 0;
  int health_failures = 0;  // consecutive
  int health_checks = 0;    // since the instance became ready
  std::string health_error;
};

services::services(event_loop& loop) : loop_(loop) {}

services::~services() {
  for (auto& [id, in] : instances_) {
    stop_checks(*in);
    if (in->sock) loop_.unwatch(in->sock->fd());
  }
}

services::instance* services::find(const std::string& id) {
  auto it = instances_.find(id);
  return it == instances_.end() ? nullptr : it->second.get();
}

std::shared_ptr<http_worker> services::http() {
  if (!http_) http_ = make_http_worker(loop_);
  return http_;
}

void services::configure(const std::string& id, const program_config& p, program_options& o) {
  auto in = std::make_unique<instance>();
  in->id = id;
  in->cfg = &p;
  instance& ref = *in;
  const auto env = o.exec.env;  // the program's own: what its exec probes get
  if (ready_later(p.ready)) o.ready_later = true;
  if (p.ready == readiness::notify) {
    in->sock = std::make_unique<notify_socket>();
    o.exec.env.push_back("NOTIFY_SOCKET=" + in->sock->address());
    if (p.watchdog.count() > 0) {
      in->watchdog = p.watchdog;
      o.exec.env.push_back("WATCHDOG_USEC=" + std::to_string(p.watchdog.count() * 1000));
      o.exec.setup.pid_env.push_back("WATCHDOG_PID");
    }
    loop_.watch(in->sock->fd(), EPOLLIN, [this, &ref](std::uint32_t) { on_notify(ref); });
  } else if (p.ready == readiness::fd) {
    const int target = p.ready_fd;
    auto inner = std::move(o.prepare_launch);
    o.prepare_launch = [this, &ref, inner = std::move(inner), target](child_setup& s) {
      std::vector<int> close_after = inner ? inner(s) : std::vector<int>{};
      int fds[2];
      if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        for (int fd : close_after) ::close(fd);
        throw std::system_error(errno, std::generic_category(), "notification fd pipe");
      }
      if (ref.ready_read >= 0) {
        loop_.unwatch(ref.ready_read);
        ::close(ref.ready_read);
      }
      ref.ready_read = fds[0];
      loop_.watch(fds[0], EPOLLIN, [this, &ref](std::uint32_t) { on_ready_fd(ref); });
      s.fds.emplace_back(fds[1], target);
      close_after.push_back(fds[1]);  // the child's end
      return close_after;
    };
  } else if (p.ready == readiness::tcp || p.ready == readiness::http || p.ready == readiness::exec) {
    probe_spec ps;
    ps.type = probe_kind(p.ready);
    ps.target = p.ready_address;
    ps.command = p.ready_command;
    ps.env = env;
    ps.timeout = std::max(p.ready_interval, milliseconds(1'000));
    in->ready_probe = std::make_unique<probe>(loop_, std::move(ps), ps.type == probe_spec::kind::http ? http() : nullptr);
  }
  if (p.health) {
    probe_spec ps;
    ps.type = probe_kind(p.health->kind);
    ps.target = p.health->address;
    ps.command = p.health->command;
    ps.env = env;
    ps.timeout = p.health->timeout;
    in->health_probe = std::make_unique<probe>(loop_, std::move(ps), ps.type == probe_spec::kind::http ? http() : nullptr);
  }
  instances_[id] = std::move(in);
}

void services::attach(const std::string& id, procsup::program u) {
  auto it = instances_.find(id);
  if (it != instances_.end()) it->second->unit = std::move(u);
}

void services::release(const std::string& id) {
  auto it = instances_.find(id);
  if (it == instances_.end()) return;
  instance& in = *it->second;
  stop_checks(in);
  if (in.sock) loop_.unwatch(in.sock->fd());
  if (in.ready_read >= 0) {
    loop_.unwatch(in.ready_read);
    ::close(in.ready_read);
  }
  instances_.erase(it);
}

void services::on_event(const lifecycle_event& e) {
  auto it = instances_.find(e.process_id);
  if (it == instances_.end()) return;
  instance& in = *it->second;
  switch (e.kind) {
    case event_kind::spawned:
      in.pid = e.pid;
      in.running = false;
      in.phase.clear();
      in.status_text.clear();
      in.main_pid = 0;
      in.errno_value = 0;
      in.ready_error.clear();
      if (in.watchdog.count() > 0) arm_watchdog(in);
      if (in.ready_probe) schedule_ready_probe(in, milliseconds(0));
      return;
    case event_kind::ready:
      became_ready(in);
      return;
    case event_kind::exited:
    case event_kind::crashed:
    case event_kind::spawn_failed:
      stop_checks(in);
      in.pid = 0;
      in.running = false;
      // What the dead instance sent and nobody read yet must not count for the next one.
      if (in.sock) in.sock->drain([](const notify_message&) {});
      return;
    default:
      return;
  }
}

void services::became_ready(instance& in) {
  in.running = true;
  if (in.ready_timer) loop_.cancel_timer(std::exchange(in.ready_timer, 0));
  if (in.ready_probe) in.ready_probe->cancel();  // no idle cost once ready
  if (in.ready_read >= 0) {  // s6: once ready, the fd is of no more use
    loop_.unwatch(in.ready_read);
    ::close(std::exchange(in.ready_read, -1));
  }
  in.health_failures = 0;
  in.health_checks = 0;
  in.health_error.clear();
  if (in.health_probe) schedule_health(in, in.cfg->health->start_after);
}

void services::stop_checks(instance& in) {
  if (in.watchdog_timer) loop_.cancel_timer(std::exchange(in.watchdog_timer, 0));
  if (in.ready_timer) loop_.cancel_timer(std::exchange(in.ready_timer, 0));
  if (in.health_timer) loop_.cancel_timer(std::exchange(in.health_timer, 0));
  if (in.ready_probe) in.ready_probe->cancel();
  if (in.health_probe) in.health_probe->cancel();
}

// ---- sd_notify

// An abstract socket can be reached by any local process: a datagram counts only if its sender
// (SCM_CREDENTIALS) runs as root, procsup's user or the program's, and, if it still exists, is in
// the instance's session or cgroup (NotifyAccess=all). A sender that has exited already
// (systemd-notify often has) is judged by its uid alone.
static bool sender_allowed(const notify_message& m, pid_t instance_pid, const program_config& cfg,
                    const std::shared_ptr<procsup::cgroup>& cg) {
  if (m.sender <= 0) return false;
  if (m.uid != 0 && m.uid != ::geteuid() && !(cfg.uid && m.uid == *cfg.uid)) return false;
  if (m.sender == instance_pid) return true;
  const pid_t sid = ::getsid(m.sender);
  if (sid < 0) return errno == ESRCH;  // gone: the uid decided
  if (sid == instance_pid) return true;
  if (cg) {
    std::ifstream f("/proc/" + std::to_string(m.sender) + "/cgroup");
    std::string line;
    while (std::getline(f, line))
      if (line.rfind("0::", 0) == 0) {
        const std::string rel = line.substr(3);
        const std::string& path = cg->path();
        return !rel.empty() && path.size() >= rel.size() && path.compare(path.size() - rel.size(), rel.size(), rel) == 0;
      }
  }
  return false;
}

void services::on_notify(instance& in) {
  in.sock->drain([this, &in](const notify_message& m) {
    if (in.pid == 0 || !in.unit) return;  // between instances: nobody to attribute it to
    if (!sender_allowed(m, in.pid, *in.cfg, in.unit.cgroup())) {
      log_event(spdlog::level::warn, "[" + in.id + "] notify message from outside the instance ignored",
                {{"sender_pid", m.sender}, {"sender_uid", static_cast<long long>(m.uid)}});
      return;
    }
    if (m.has("STATUS")) {
      in.status_text = m.get("STATUS");
      log_event(spdlog::level::info, "[" + in.id + "] status", {{"status", in.status_text}});
    }
    if (m.has("MAINPID")) {
      if (auto v = usec_field(m.get("MAINPID"))) in.main_pid = static_cast<pid_t>(*v);
    }
    if (m.has("ERRNO")) {
      if (auto v = usec_field(m.get("ERRNO"))) in.errno_value = static_cast<int>(*v);
    }
    if (m.has("WATCHDOG_USEC")) {
      if (auto v = usec_field(m.get("WATCHDOG_USEC")); v && *v > 0) in.watchdog = milliseconds((*v + 999) / 1000);
    }
    if (m.get("RELOADING") == "1") {
      in.phase = "reloading";
      log_event(spdlog::level::info, "[" + in.id + "] reloading", {{"pid", in.pid}});
    }
    if (m.get("STOPPING") == "1") {
      in.phase = "stopping";
      log_event(spdlog::level::info, "[" + in.id + "] stopping", {{"pid", in.pid}});
    }
    if (m.has("EXTEND_TIMEOUT_USEC")) {
      if (auto v = usec_field(m.get("EXTEND_TIMEOUT_USEC"))) in.unit.extend_start_timeout(milliseconds((*v + 999) / 1000));
    }
    if (m.get("READY") == "1") {
      if (in.phase == "reloading") in.phase.clear();
      in.unit.mark_ready(in.pid, "READY=1");
    }
    if (m.get("WATCHDOG") == "trigger") {
      log_event(spdlog::level::warn, "[" + in.id + "] WATCHDOG=trigger: killing it", {{"pid", in.pid}});
      in.unit.kill_with_cause("watchdog timeout (WATCHDOG=trigger)");
    } else if (m.get("WATCHDOG") == "1" || m.has("WATCHDOG_USEC")) {
      if (in.watchdog.count() > 0) arm_watchdog(in);
    }
  });
}

void services::arm_watchdog(instance& in) {
  if (in.watchdog_timer) loop_.cancel_timer(std::exchange(in.watchdog_timer, 0));
  const std::string id = in.id;
  in.watchdog_timer = loop_.add_timer(in.watchdog, [this, id] {
    instance* w = find(id);
    if (w == nullptr) return;
    w->watchdog_timer = 0;
    if (w->pid == 0 || !w->unit) return;
    log_event(spdlog::level::warn, "[" + id + "] no WATCHDOG=1 within " + std::to_string(w->watchdog.count()) + " ms: killing it",
              {{"pid", w->pid}});
    w->unit.kill_with_cause("watchdog timeout");
  });
}

// ---- s6 notification fd

void services::on_ready_fd(instance& in) {
  char buf[256];
  const ssize_t n = ::read(in.ready_read, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  const bool newline = n > 0 && std::memchr(buf, '\n', static_cast<std::size_t>(n)) != nullptr;
  if (newline && in.unit && in.pid != 0) {
    in.unit.mark_ready(in.pid, "newline on fd " + std::to_string(in.cfg->ready_fd));
    return;  // became_ready() closed the pipe
  }
  if (n <= 0) {  // closed without a newline: not ready (ready_timeout decides)
    loop_.unwatch(in.ready_read);
    ::close(std::exchange(in.ready_read, -1));
  }
}

// ---- probes

void services::schedule_ready_probe(instance& in, milliseconds after) {
  const std::string id = in.id;
  in.ready_timer = loop_.add_timer(after, [this, id] {
    instance* t = find(id);
    if (t == nullptr) return;
    t->ready_timer = 0;
    if (t->pid == 0 || t->running) return;
    t->ready_probe->run([this, id](bool ok, const std::string& detail) {
      instance* r = find(id);
      if (r == nullptr || r->pid == 0 || r->running) return;
      if (ok) {
        r->unit.mark_ready(r->pid, r->ready_probe->spec().describe() + ": " + detail);
        return;
      }
      r->ready_error = detail;
      schedule_ready_probe(*r, r->cfg->ready_interval);
    });
  });
}

void services::schedule_health(instance& in, milliseconds after) {
  const std::string id = in.id;
  in.health_timer = loop_.add_timer(after, [this, id] {
    instance* t = find(id);
    if (t == nullptr) return;
    t->health_timer = 0;
    if (t->pid == 0 || !t->running) return;
    t->health_probe->run([this, id](bool ok, const std::string& detail) {
      instance* r = find(id);
      if (r == nullptr || r->pid == 0 || !r->running) return;
      instance& h_in = *r;
      const health_config& h = *h_in.cfg->health;
      ++h_in.health_checks;
      if (ok) {
        if (h_in.health_failures > 0)
          log_event(spdlog::level::info, "[" + id + "] healthy again", {{"check", h_in.health_probe->spec().describe()}});
        h_in.health_failures = 0;
        h_in.health_error.clear();
        schedule_health(h_in, h.interval);
        return;
      }
      ++h_in.health_failures;
      h_in.health_error = detail;
      const std::string what = h_in.health_probe->spec().describe() + ": " + detail;
      log_event(spdlog::level::warn, "[" + id + "] health check failed",
                {{"check", what}, {"failures", std::to_string(h_in.health_failures) + "/" + std::to_string(h.failures)}});
      if (h_in.health_failures >= h.failures) {
        h_in.unit.kill_with_cause("unhealthy: " + what + " after " + std::to_string(h_in.health_failures) + " checks");
        return;
      }
      schedule_health(h_in, h.interval);
    });
  });
}

// ---- ctl status

void services::describe(const std::string& id, json& out) const {
  auto it = instances_.find(id);
  if (it == instances_.end()) return;
  const instance& in = *it->second;
  out["ready"] = in.running;
  out["ready_rule"] = std::string(to_string(in.cfg->ready));
  out["status_text"] = in.status_text.empty() ? json() : json(in.status_text);
  if (!in.phase.empty()) out["notify_state"] = in.phase;
  if (in.main_pid) out["main_pid"] = in.main_pid;
  if (in.errno_value) out["errno"] = in.errno_value;
  if (!in.ready_error.empty() && !in.running && in.pid) out["ready_error"] = in.ready_error;
  if (!in.cfg->health) {
    out["health"] = nullptr;
    return;
  }
  const int limit = in.cfg->health->failures;
  if (!in.running) out["health"] = nullptr;
  else if (in.health_failures > 0)
    out["health"] = "unhealthy (" + std::to_string(in.health_failures) + "/" + std::to_string(limit) + ")";
  else if (in.health_checks == 0) out["health"] = "starting";
  else out["health"] = "healthy";
  if (!in.health_error.empty()) out["health_error"] = in.health_error;
}

}  // namespace procsup::daemon
