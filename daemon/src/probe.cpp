// Probes (probe.hpp): TCP connect on the loop, a command as a child watched by its pidfd, and
// HTTP GET with cpp-httplib on one worker thread that posts each result back to the loop.
#include "procsup/daemon/probe.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <httplib.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "procsup/supervisor/launcher.hpp"
#include "procsup/supervisor/types.hpp"

namespace procsup::daemon {

namespace {

std::string ms_text(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

// "host:port" with a numeric host (or localhost); false if it is not one.
bool parse_host_port(const std::string& text, sockaddr_storage& out, socklen_t& len) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = text.substr(0, colon);
  const int port = std::atoi(text.c_str() + colon + 1);
  if (port <= 0 || port > 65535) return false;
  if (host == "localhost") host = "127.0.0.1";
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::memset(&out, 0, sizeof out);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(port));
    len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(port));
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

}  // namespace

std::string probe_spec::describe() const {
  switch (type) {
    case kind::tcp: return "connect " + target;
    case kind::http: {
      // "GET /healthz": the path of the URL.
      const auto slash = target.find('/', 7);
      return "GET " + (slash == std::string::npos ? std::string("/") : target.substr(slash));
    }
    case kind::exec: return "exec " + (command.empty() ? std::string() : command.front());
  }
  return "?";
}

// ---- the HTTP worker: one thread, a queue of GETs, results posted to the loop

class http_worker {
 public:
  using result_fn = std::function<void(bool ok, std::string detail)>;
  explicit http_worker(event_loop& loop) : loop_(loop), thread_([this] { work(); }) {}
  ~http_worker() {
    {
      std::lock_guard lk(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();  // a GET under way ends within its timeout
  }
  void get(std::string url, std::chrono::milliseconds timeout, result_fn done) {
    {
      std::lock_guard lk(mu_);
      queue_.push_back({std::move(url), timeout, std::move(done)});
    }
    cv_.notify_one();
  }

 private:
  struct job {
    std::string url;
    std::chrono::milliseconds timeout;
    result_fn done;
  };
  void work() {
    for (;;) {
      job j;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [this] { return quit_ || !queue_.empty(); });
        if (quit_) return;
        j = std::move(queue_.front());
        queue_.pop_front();
      }
      auto [ok, detail] = fetch(j.url, j.timeout);
      loop_.post([done = std::move(j.done), ok = ok, detail = std::move(detail)] { done(ok, detail); });
    }
  }
  static std::pair<bool, std::string> fetch(const std::string& url, std::chrono::milliseconds timeout) {
    const auto slash = url.find('/', 7);
    const std::string origin = slash == std::string::npos ? url : url.substr(0, slash);
    const std::string path = slash == std::string::npos ? std::string("/") : url.substr(slash);
    httplib::Client cli(origin);
    const auto sec = static_cast<time_t>(timeout.count() / 1000);
    const auto usec = static_cast<time_t>((timeout.count() % 1000) * 1000);
    cli.set_connection_timeout(sec, usec);
    cli.set_read_timeout(sec, usec);
    cli.set_write_timeout(sec, usec);
    cli.set_keep_alive(false);
    auto res = cli.Get(path.c_str());
    if (!res) return {false, httplib::to_string(res.error())};
    const int code = res->status;
    return {code >= 200 && code < 300, std::to_string(code)};
  }

  event_loop& loop_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<job> queue_;
  bool quit_ = false;
  std::thread thread_;
};

std::shared_ptr<http_worker> make_http_worker(event_loop& loop) { return std::make_shared<http_worker>(loop); }

// ---- probe

probe::probe(event_loop& loop, probe_spec spec, std::shared_ptr<http_worker> http)
    : loop_(loop), spec_(std::move(spec)), http_(std::move(http)) {}

probe::~probe() {
  cancel();
  *alive_ = false;
}

void probe::run(done_fn done) {
  if (busy_) return;
  busy_ = true;
  done_ = std::move(done);
  ++generation_;
  switch (spec_.type) {
    case probe_spec::kind::tcp: run_tcp(); break;
    case probe_spec::kind::exec: run_exec(); break;
    case probe_spec::kind::http: run_http(); break;
  }
}

void probe::clear() {
  if (timer_) loop_.cancel_timer(std::exchange(timer_, 0));
  if (fd_ >= 0) {
    loop_.unwatch(fd_);
    ::close(std::exchange(fd_, -1));
  }
  if (child_ > 0) ::kill(-std::exchange(child_, 0), SIGKILL);  // reaped by its pidfd watch
}

void probe::cancel() {
  clear();
  busy_ = false;
  done_ = nullptr;
  ++generation_;  // an HTTP result or child exit still on its way is dropped
}

void probe::finish(bool ok, const std::string& detail) {
  clear();
  busy_ = false;
  ++generation_;  // whatever of this check is still on its way (a child's exit) is dropped
  auto done = std::exchange(done_, nullptr);
  if (done) done(ok, detail);  // last: it may destroy this probe
}

void probe::run_tcp() {
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (!parse_host_port(spec_.target, addr, len)) {
    loop_.post([this, alive = alive_, gen = generation_] {
      if (*alive && gen == generation_) finish(false, "bad address " + spec_.target + " (a numeric host:port)");
    });
    return;
  }
  fd_ = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    const std::string err = std::strerror(errno);
    loop_.post([this, alive = alive_, gen = generation_, err] {
      if (*alive && gen == generation_) finish(false, "socket: " + err);
    });
    return;
  }
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), len) == 0) {
    loop_.post([this, alive = alive_, gen = generation_] {
      if (*alive && gen == generation_) finish(true, "connected");
    });
    return;
  }
  if (errno != EINPROGRESS) {
    const std::string err = std::strerror(errno);
    ::close(std::exchange(fd_, -1));
    loop_.post([this, alive = alive_, gen = generation_, err] {
      if (*alive && gen == generation_) finish(false, err);
    });
    return;
  }
  loop_.watch(fd_, EPOLLOUT, [this](std::uint32_t) {
    int err = 0;
    socklen_t l = sizeof err;
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err == 0) finish(true, "connected");
    else finish(false, std::strerror(err));
  });
  timer_ = loop_.add_timer(spec_.timeout, [this] {
    timer_ = 0;
    finish(false, "timed out after " + ms_text(spec_.timeout));
  });
}

void probe::run_exec() {
  exec_spec ex;
  ex.path = spec_.command.at(0);
  ex.argv = spec_.command;
  ex.env = spec_.env;
  ex.setup.new_session = true;
  ex.setup.parent_death_signal = SIGKILL;
  const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0)
    for (int fd : {0, 1, 2}) ex.setup.fds.emplace_back(null, fd);  // a check's output is not the program's
  auto r = launch_exec(ex);
  if (null >= 0) ::close(null);
  if (auto* err = std::get_if<launch_error>(&r)) {
    const std::string what = err->message;
    loop_.post([this, alive = alive_, gen = generation_, what] {
      if (*alive && gen == generation_) finish(false, what);
    });
    return;
  }
  child_ = std::get<pid_t>(r);
  loop_.watch_child(child_, [this, alive = alive_, gen = generation_](int status) {
    if (!*alive || gen != generation_) return;  // cancelled: killed, now reaped
    child_ = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) finish(true, "exit 0");
    else finish(false, describe_wait_status(status));
  });
  timer_ = loop_.add_timer(spec_.timeout, [this] {
    timer_ = 0;
    finish(false, "timed out after " + ms_text(spec_.timeout));
  });
}

void probe::run_http() {
  http_->get(spec_.target, spec_.timeout, [this, alive = alive_, gen = generation_](bool ok, std::string detail) {
    if (*alive && gen == generation_) finish(ok, detail);
  });
}

}  // namespace procsup::daemon
