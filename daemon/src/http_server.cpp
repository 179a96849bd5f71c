// The HTTP endpoints: Boost.Beast parses and writes HTTP/1.1 on one Asio thread; answers come
// from the supervisor's event loop (posted there, computed there, rendered here), so this
// thread never reads supervisor state. Bounded: connections (the oldest idle one makes room),
// request size, time to receive a request and to send a response, one response in flight per
// connection (a client that does not read holds one response, then times out).
#include "procsup/daemon/http_server.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <list>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "procsup/daemon/logging.hpp"

namespace procsup::daemon {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using unix_proto = net::local::stream_protocol;

namespace {

struct reply {
  http::status code = http::status::ok;
  std::string body;
  std::string type = "text/plain; charset=utf-8";
};
// Made on the loop thread (holding a copy of what it shows), called on the HTTP thread.
using render_fn = std::function<reply()>;

struct parsed_address {
  bool unix_socket = false;
  std::string path;
  net::ip::address ip;
  unsigned short port = 0;
};

std::variant<parsed_address, std::string> parse_address(const std::string& a) {
  parsed_address out;
  if (a.rfind("unix:", 0) == 0) {
    out.unix_socket = true;
    out.path = a.substr(5);
    if (out.path.empty() || out.path[0] != '/') return "\"" + a + "\": a unix socket needs an absolute path (unix:/run/procsup-http.sock)";
    if (out.path.size() >= sizeof(sockaddr_un::sun_path)) return "\"" + a + "\": the socket path is too long";
    return out;
  }
  const auto colon = a.rfind(':');
  if (colon == std::string::npos || colon + 1 == a.size())
    return "\"" + a + "\" is not HOST:PORT (127.0.0.1:9100) or unix:/PATH";
  std::string host = a.substr(0, colon);
  const std::string port = a.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  out.ip = net::ip::make_address(host, ec);
  if (ec) return "\"" + a + "\": \"" + host + "\" is not an IP address (a name is not resolved; localhost is 127.0.0.1)";
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) > 65535)
    return "\"" + a + "\": \"" + port + "\" is not a port (0-65535)";
  out.port = static_cast<unsigned short>(std::stoul(port));
  return out;
}

void set_cloexec(int fd) {
  if (fd >= 0) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
}

class session_base {
 public:
  virtual ~session_base() = default;
  virtual void close() = 0;
  bool reading = false;  // waiting for (the rest of) a request: may be evicted first
};

}  // namespace

std::optional<std::string> http_address_error(const std::string& address) {
  if (address.empty()) return std::nullopt;
  auto r = parse_address(address);
  if (auto* e = std::get_if<std::string>(&r)) return *e;
  return std::nullopt;
}

struct http_server::impl {
  impl(http_source& s, poster p, http_limits l) : source(s), post(std::move(p)), limits(l) {}

  std::shared_ptr<net::io_context> ioc = std::make_shared<net::io_context>(1);
  http_source& source;
  poster post;
  http_limits limits;
  std::string address;
  std::optional<tcp::acceptor> tcp_acceptor;
  std::optional<unix_proto::acceptor> unix_acceptor;
  std::string unix_path;  // removed again by the destructor
  net::steady_timer accept_pause{*ioc};
  std::list<std::weak_ptr<session_base>> sessions;  // in accept order
  bool stopping = false;
  usage_cache usage;  // this thread's
  std::thread thread;

  template <class Acceptor>
  void accept(Acceptor& acc);
  void admit(const std::shared_ptr<session_base>& s);
  void shutdown();
};

namespace {

template <class Protocol>
class session final : public session_base, public std::enable_shared_from_this<session<Protocol>> {
 public:
  session(typename Protocol::socket s, http_server::impl& srv)
      : stream_(std::move(s)), srv_(srv), buf_(srv.limits.max_request_bytes), timer_(*srv.ioc) {}

  void start() { read(); }

  void close() override {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    beast::error_code ec;
    stream_.socket().shutdown(Protocol::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  void read() {
    if (closed_) return;
    reading = true;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(srv_.limits.max_request_bytes));
    parser_->body_limit(0);
    stream_.expires_after(srv_.limits.idle_timeout);
    http::async_read(stream_, buf_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    reading = false;
    if (closed_ || srv_.stopping || ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset || ec == net::error::eof)
      return close();
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow)
      return send({http::status::request_header_fields_too_large,
                   "request larger than " + std::to_string(srv_.limits.max_request_bytes) + " bytes\n"},
                  false);
    if (ec == http::error::body_limit || ec == http::error::unexpected_body)
      return send({http::status::payload_too_large, "requests have no body here\n"}, false);
    if (ec) return send({http::status::bad_request, "bad request: " + ec.message() + "\n"}, false);

    const auto& req = parser_->get();
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    if (req.method() != http::verb::get) {
      reply r{http::status::method_not_allowed, "read-only: GET only\n"};
      return send(std::move(r), false);
    }
    std::string target(req.target());
    if (auto q = target.find('?'); q != std::string::npos) target.resize(q);
    dispatch(target);
  }

  void dispatch(const std::string& target) {
    http_source* src = &srv_.source;
    if (target == "/healthz") {
      // The loop's answer alone says it turns (the same check as the systemd watchdog).
      const auto ms = srv_.limits.health_timeout.count();
      return ask([] { return render_fn([] { return reply{http::status::ok, "ok\n"}; }); },
                 srv_.limits.health_timeout,
                 "the event loop did not answer within " + std::to_string(ms) + " ms\n");
    }
    if (target == "/readyz")
      return ask(
          [src] {
            return render_fn([st = src->status()] {
              nlohmann::json not_ready = nlohmann::json::array();
              for (const auto& o : st)
                if (o.value("state", "") != "running") {
                  nlohmann::json n = {{"id", o.value("id", "")}, {"state", o.value("state", "")}};
                  if (o.contains("last_error")) n["last_error"] = o["last_error"];
                  not_ready.push_back(std::move(n));
                }
              const bool ok = not_ready.empty();
              nlohmann::json body = {{"ready", ok}, {"instances", st.size()}};
              if (!ok) body["not_ready"] = std::move(not_ready);
              return reply{ok ? http::status::ok : http::status::service_unavailable, body.dump() + "\n",
                           "application/json"};
            });
          },
          srv_.limits.loop_timeout, "the event loop did not answer in time\n");
    if (target == "/status")
      return ask(
          [src] {
            return render_fn([st = src->status()] { return reply{http::status::ok, st.dump() + "\n", "application/json"}; });
          },
          srv_.limits.loop_timeout, "the event loop did not answer in time\n");
    if (target == "/metrics")
      return ask(
          [src, cache = &srv_.usage] {
            return render_fn([snap = src->metrics(), cache]() mutable {
              cache->fill(snap.instances, std::chrono::steady_clock::now());
              return reply{http::status::ok, render_metrics(snap, process_metrics::read_self()),
                           "text/plain; version=0.0.4; charset=utf-8"};
            });
          },
          srv_.limits.loop_timeout, "the event loop did not answer in time\n");
    if (target == "/")
      return send({http::status::ok, "procsup: GET /metrics /healthz /readyz /status\n"}, true);
    send({http::status::not_found, "not found: " + target + " (GET /metrics /healthz /readyz /status)\n"}, true);
  }

  // Computes on the loop, renders here; 503 with `late` when the loop does not answer in time.
  void ask(std::function<render_fn()> on_loop, std::chrono::milliseconds timeout, std::string late) {
    const std::uint64_t serial = ++serial_;
    answered_ = false;
    timer_.expires_after(timeout);
    timer_.async_wait([self = this->shared_from_this(), serial, late = std::move(late)](beast::error_code ec) {
      if (ec || serial != self->serial_ || self->answered_) return;
      self->answered_ = true;
      self->send({http::status::service_unavailable, late}, true);
    });
    std::weak_ptr<session> weak = this->shared_from_this();
    srv_.post([on_loop = std::move(on_loop), ioc = srv_.ioc, weak, serial] {
      render_fn render;
      try {
        render = on_loop();
      } catch (const std::exception& e) {
        render = [what = std::string(e.what())] { return reply{http::status::internal_server_error, what + "\n"}; };
      }
      net::post(*ioc, [weak, serial, render = std::move(render)] {
        if (auto self = weak.lock()) self->on_answer(serial, render);
      });
    });
  }

  void on_answer(std::uint64_t serial, const render_fn& render) {
    if (closed_ || serial != serial_ || answered_) return;
    answered_ = true;
    timer_.cancel();
    reply r;
    try {
      r = render();
    } catch (const std::exception& e) {
      r = {http::status::internal_server_error, std::string(e.what()) + "\n"};
    }
    send(std::move(r), true);
  }

  void send(reply r, bool keep) {
    if (closed_) return;
    res_ = {};
    res_.version(version_);
    res_.result(r.code);
    res_.set(http::field::server, "procsup");
    res_.set(http::field::content_type, r.type);
    if (r.code == http::status::method_not_allowed) res_.set(http::field::allow, "GET");
    res_.body() = std::move(r.body);
    res_.keep_alive(keep && keep_alive_);
    res_.prepare_payload();
    stream_.expires_after(srv_.limits.idle_timeout);  // a client that does not read times out
    http::async_write(stream_, res_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec || !self->res_.keep_alive()) {
        if (!ec) {
          beast::error_code ignored;
          self->stream_.socket().shutdown(Protocol::socket::shutdown_send, ignored);
        }
        return self->close();
      }
      self->read();
    });
  }

  beast::basic_stream<Protocol> stream_;
  http_server::impl& srv_;
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  http::response<http::string_body> res_;
  net::steady_timer timer_;  // the loop's answer
  std::uint64_t serial_ = 0;
  bool answered_ = true;
  bool closed_ = false;
  unsigned version_ = 11;
  bool keep_alive_ = false;
};

}  // namespace

template <class Acceptor>
void http_server::impl::accept(Acceptor& acc) {
  using protocol = typename Acceptor::protocol_type;
  acc.async_accept([this, &acc](beast::error_code ec, typename protocol::socket sock) {
    if (stopping) return;
    if (ec) {
      // EMFILE and the like: the listening socket stays readable; pause instead of spinning.
      log_event(spdlog::level::warn, "http: accept failed", {{"error", ec.message()}});
      accept_pause.expires_after(std::chrono::milliseconds(100));
      accept_pause.async_wait([this, &acc](beast::error_code e) {
        if (!e && !stopping) accept(acc);
      });
      return;
    }
    set_cloexec(sock.native_handle());
    auto s = std::make_shared<session<protocol>>(std::move(sock), *this);
    admit(s);
    s->start();
    accept(acc);
  });
}

void http_server::impl::admit(const std::shared_ptr<session_base>& s) {
  sessions.remove_if([](const std::weak_ptr<session_base>& w) { return w.expired(); });
  if (sessions.size() >= limits.max_connections) {
    // Full: the oldest connection waiting for a request goes (idle keep-alives, slow senders),
    // else the oldest of all; so a flood of idle connections cannot lock a probe out.
    auto victim = std::find_if(sessions.begin(), sessions.end(), [](const std::weak_ptr<session_base>& w) {
      auto p = w.lock();
      return p && p->reading;
    });
    if (victim == sessions.end()) victim = sessions.begin();
    if (auto p = victim->lock()) p->close();
    sessions.erase(victim);
  }
  sessions.push_back(s);
}

void http_server::impl::shutdown() {
  stopping = true;
  beast::error_code ec;
  if (tcp_acceptor) tcp_acceptor->close(ec);
  if (unix_acceptor) unix_acceptor->close(ec);
  accept_pause.cancel();
  for (auto& w : sessions)
    if (auto p = w.lock()) p->close();
  sessions.clear();
}

std::variant<std::unique_ptr<http_server>, std::string> http_server::open(const std::string& address,
                                                                          http_source& source, poster post,
                                                                          http_limits limits) {
  auto parsed = parse_address(address);
  if (auto* e = std::get_if<std::string>(&parsed)) return "http: " + *e;
  const auto& a = std::get<parsed_address>(parsed);
  auto p = std::make_unique<impl>(source, std::move(post), limits);
  beast::error_code ec;
  auto fail = [&](const char* what) { return "cannot listen on http " + address + ": " + what + ": " + ec.message(); };
  if (a.unix_socket) {
    struct stat st {};
    if (::lstat(a.path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) return "cannot listen on http " + address + ": the path exists and is not a socket";
      // A live socket is another server's; a stale one (nobody accepting) is replaced.
      unix_proto::socket probe(*p->ioc);
      probe.connect(unix_proto::endpoint(a.path), ec);
      if (!ec) return "cannot listen on http " + address + ": another server is listening there";
      ::unlink(a.path.c_str());
    }
    p->unix_acceptor.emplace(*p->ioc);
    auto& acc = *p->unix_acceptor;
    if (acc.open(unix_proto(), ec); ec) return fail("socket");
    set_cloexec(acc.native_handle());
    if (acc.bind(unix_proto::endpoint(a.path), ec); ec) return fail("bind");
    p->unix_path = a.path;
    if (acc.listen(static_cast<int>(limits.max_connections), ec); ec) return fail("listen");
    p->address = address;
  } else {
    p->tcp_acceptor.emplace(*p->ioc);
    auto& acc = *p->tcp_acceptor;
    const tcp::endpoint ep(a.ip, a.port);
    if (acc.open(ep.protocol(), ec); ec) return fail("socket");
    set_cloexec(acc.native_handle());
    acc.set_option(net::socket_base::reuse_address(true), ec);
    if (acc.bind(ep, ec); ec) return fail("bind");
    if (acc.listen(static_cast<int>(limits.max_connections), ec); ec) return fail("listen");
    const auto bound = acc.local_endpoint(ec);
    p->address = (a.ip.is_v6() ? "[" + a.ip.to_string() + "]" : a.ip.to_string()) + ":" +
                 std::to_string(ec ? a.port : bound.port());
  }
  impl* raw = p.get();
  if (raw->tcp_acceptor) raw->accept(*raw->tcp_acceptor);
  else raw->accept(*raw->unix_acceptor);
  // The thread inherits the caller's signal mask (run() blocks its signals before any thread).
  raw->thread = std::thread([raw] {
    for (;;) {
      try {
        raw->ioc->run();
        return;
      } catch (const std::exception& e) {
        log_event(spdlog::level::err, "http: internal error", {{"error", e.what()}});
      }
    }
  });
  return std::unique_ptr<http_server>(new http_server(std::move(p)));
}

http_server::http_server(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

http_server::~http_server() {
  impl* raw = impl_.get();
  net::post(*raw->ioc, [raw] { raw->shutdown(); });
  if (raw->thread.joinable()) raw->thread.join();
  if (!raw->unix_path.empty()) ::unlink(raw->unix_path.c_str());
}

const std::string& http_server::address() const noexcept { return impl_->address; }

}  // namespace procsup::daemon
