// [supervisor] http (issue 16), black-box on the real binary: /healthz, /readyz (a worker that
// never says ready is named in the 503), /status (the same array as `ctl status --json`),
// /metrics (accepted by `promtool check metrics`, counts a kill), errors, a unix socket address,
// a bind error as a start error, and abuse (idle floods, huge requests, clients that never read)
// without memory growth or a lockout.
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>

#include "helpers/http_client.hpp"
#include "helpers/program_harness.hpp"

#ifndef PROCSUP_PROTOCOL_WORKER
#error "PROCSUP_PROTOCOL_WORKER must be defined"
#endif

namespace {

using namespace procsup::testing;

std::string sleeper(const std::string& name, int instances) {
  return "[[program]]\nname = " + toml_str(name) + "\ncommand = " + toml_argv({test_target, "sleep", "1000"}) +
         "\ninstances = " + std::to_string(instances) + "\nbackoff = { initial = \"0s\", max = \"100ms\" }\n\n";
}

// VmRSS of `pid` in bytes (0 if unknown).
std::uint64_t rss_of(pid_t pid) {
  const std::string line = status_line(pid, "VmRSS:");
  if (line.empty()) return 0;
  return std::stoull(line.substr(6)) * 1024;
}

// `promtool check metrics` on `text`: its exit code and output.
std::pair<int, std::string> promtool_check(const program_dir& dir, const std::string& text) {
  const std::string in = dir.write("metrics.txt", text);
  const std::string out = dir.file("promtool.out");
  const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const pid_t pid = detail::spawn({"/bin/sh", "-c", "exec promtool check metrics < '" + in + "'"}, fd, fd);
  ::close(fd);
  const int code = detail::exit_code_of(detail::wait_child_bounded(pid, 30s));
  return {code, read_file(out)};
}

class http_endpoints : public program_test {
 protected:
  // Starts procsup on `programs` with http on a kernel-chosen loopback port; returns its address.
  std::string start(const std::string& programs, const std::string& http = "127.0.0.1:0") {
    cfg_ = dir_.write_config(programs, "cgroups = false\nhttp = " + toml_str(http) + "\n");
    p_.emplace(std::vector<std::string>{"--log-format", "json", "run", cfg_});
    auto ev = p_->wait_event("http listening");
    if (!ev) return "";
    const std::string a = (*ev)["address"].get<std::string>();
    return http.rfind("unix:", 0) == 0 ? http : a;
  }
  // procsup goes before the guard looks for leftovers.
  void TearDown() override {
    p_.reset();
    program_test::TearDown();
  }
  std::string cfg_;
  std::optional<procsup_process> p_;
};

TEST_F(http_endpoints, serve_health_readiness_status_and_metrics_of_the_running_programs) {
  const auto addr = start(sleeper("sl", 2));
  ASSERT_FALSE(addr.empty());
  ASSERT_TRUE(p_->wait_event("ready"));

  auto h = http_get(addr, "/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, "ok\n");

  auto r = http_get(addr, "/readyz");
  EXPECT_EQ(r.status, 200) << r.body;
  auto rj = json::parse(r.body);
  EXPECT_EQ(rj["ready"], true);
  EXPECT_EQ(rj["instances"], 2);

  // /status: one JSON array with the instances `ctl status --json` lists, same pids.
  auto s = http_get(addr, "/status");
  EXPECT_EQ(s.status, 200);
  EXPECT_NE(s.headers.find("application/json"), std::string::npos);
  auto arr = json::parse(s.body);
  ASSERT_TRUE(arr.is_array());
  auto ctl_view = status_json(dir_.socket());
  ASSERT_EQ(arr.size(), ctl_view.size());
  for (std::size_t i = 0; i < arr.size(); ++i) {
    EXPECT_EQ(arr[i]["id"], ctl_view[i]["id"]);
    EXPECT_EQ(arr[i]["pid"], ctl_view[i]["pid"]);
    EXPECT_EQ(arr[i]["state"], "running");
  }

  auto m = http_get(addr, "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.headers.find("text/plain; version=0.0.4"), std::string::npos) << m.headers;
  for (const char* want : {"procsup_up 1\n", "procsup_gave_up 0\n", "procsup_program_up{program=\"sl\",instance=\"0\"} 1\n",
                           "procsup_program_ready{program=\"sl\",instance=\"1\"} 1\n",
                           "procsup_program_restarts_total{program=\"sl\",instance=\"0\"} 0\n",
                           "procsup_program_state{program=\"sl\",instance=\"0\",state=\"running\"} 1\n",
                           "procsup_program_state{program=\"sl\",instance=\"0\",state=\"failed\"} 0\n",
                           "procsup_program_memory_bytes{program=\"sl\",instance=\"0\"} ", "process_open_fds ",
                           "process_resident_memory_bytes ", "process_start_time_seconds ", "process_cpu_seconds_total "})
    EXPECT_NE(m.body.find(want), std::string::npos) << want << "\n" << m.body;
  auto [code, out] = promtool_check(dir_, m.body);
  EXPECT_EQ(code, 0) << out;

  // A kill: counted by cause, as a restart, and in the restart latency histogram.
  const pid_t victim = arr[0]["pid"].get<pid_t>();
  const auto from = p_->lines().size();
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  ASSERT_TRUE(p_->wait_event("[sl:0] spawned", json::object(), from));
  m = http_get(addr, "/metrics");
  for (const char* want : {"procsup_program_exits_total{program=\"sl\",instance=\"0\",cause=\"signal\"} 1\n",
                           "procsup_program_restarts_total{program=\"sl\",instance=\"0\"} 1\n",
                           "procsup_restart_latency_seconds_count 1\n",
                           "procsup_restart_latency_seconds_bucket{le=\"+Inf\"} 1\n"})
    EXPECT_NE(m.body.find(want), std::string::npos) << want << "\n" << m.body;
  EXPECT_EQ(m.body.find("instance=\"1\",cause="), std::string::npos) << "sl:1 never exited";
  std::tie(code, out) = promtool_check(dir_, m.body);
  EXPECT_EQ(code, 0) << out;

  // Errors: unknown path, a write method; keep-alive serves a second request on one connection.
  EXPECT_EQ(http_get(addr, "/nope").status, 404);
  auto post = http_raw(addr, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(post.status, 405);
  auto two = http_raw(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(two.status, 200);
  EXPECT_NE(two.body.find("\"ready\":true"), std::string::npos) << two.body;

  p_->kill(SIGTERM);
  EXPECT_EQ(p_->wait_exit(), 0);
}

TEST_F(http_endpoints, readyz_is_503_naming_a_worker_that_never_says_ready) {
  const std::string go = dir_.file("go");
  const auto addr = start(sleeper("fine", 1) + "[[program]]\nname = \"late\"\ncommand = " +
                          toml_argv({PROCSUP_PROTOCOL_WORKER, "wait-file", go}) +
                          "\nready = \"protocol\"\nready_timeout = \"120s\"\n");
  ASSERT_FALSE(addr.empty());
  ASSERT_TRUE(p_->wait_event("[late] spawned"));
  ASSERT_TRUE(p_->wait_event("[fine] ready"));

  auto r = http_get(addr, "/readyz");
  EXPECT_EQ(r.status, 503);
  auto j = json::parse(r.body);
  EXPECT_EQ(j["ready"], false);
  ASSERT_EQ(j["not_ready"].size(), 1u) << r.body;
  EXPECT_EQ(j["not_ready"][0]["id"], "late");
  EXPECT_EQ(j["not_ready"][0]["state"], "starting");
  // Alive, though: liveness is about procsup's loop, not its programs.
  EXPECT_EQ(http_get(addr, "/healthz").status, 200);
  auto m = http_get(addr, "/metrics");
  EXPECT_NE(m.body.find("procsup_program_ready{program=\"late\",instance=\"0\"} 0\n"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("procsup_program_up{program=\"late\",instance=\"0\"} 1\n"), std::string::npos) << m.body;

  dir_.write("go", "");
  ASSERT_TRUE(p_->wait_event("[late] ready"));
  r = http_get(addr, "/readyz");
  EXPECT_EQ(r.status, 200) << r.body;
  p_->kill(SIGTERM);
  EXPECT_EQ(p_->wait_exit(), 0);
}

TEST_F(http_endpoints, abuse_grows_no_memory_and_locks_no_probe_out) {
  const auto addr = start(sleeper("sl", 1));
  ASSERT_FALSE(addr.empty());
  ASSERT_TRUE(p_->wait_event("ready"));
  const auto rss_before = rss_of(p_->pid());
  std::vector<int> held;

  // 1. Far more idle connections than the limit (64): the oldest idle ones make room.
  for (int i = 0; i < 300; ++i) {
    const int fd = http_connect(addr);
    ASSERT_GE(fd, 0);
    held.push_back(fd);
  }
  EXPECT_EQ(http_get(addr, "/healthz").status, 200);

  // 2. Huge requests: refused with 431 once past the request limit, not buffered.
  const std::string huge = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Junk: " + std::string(1 << 20, 'a') + "\r\n\r\n";
  for (int i = 0; i < 20; ++i) {
    const int fd = http_connect(addr);
    ASSERT_GE(fd, 0);
    http_send_all(fd, huge);  // may fail part-way: the server closes after its 431
    if (i == 0) {
      auto rep = http_read_reply(fd);
      EXPECT_EQ(rep.status, 431) << rep.headers;
    }
    ::close(fd);
  }
  EXPECT_EQ(http_get(addr, "/healthz").status, 200);

  // 3. Clients that pipeline many requests and never read: one response each is in flight.
  const std::string req = "GET /status HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string many;
  for (int i = 0; i < 500; ++i) many += req;
  for (int i = 0; i < 40; ++i) {
    const int fd = http_connect(addr);
    ASSERT_GE(fd, 0);
    std::size_t off = 0;
    while (off < many.size()) {  // until the socket buffers are full
      const ssize_t n = ::send(fd, many.data() + off, many.size() - off, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
    held.push_back(fd);
  }
  EXPECT_EQ(http_get(addr, "/healthz").status, 200);
  EXPECT_EQ(http_get(addr, "/readyz").status, 200);
  const auto rss = rss_of(p_->pid());
  EXPECT_GT(rss, 0u);
  EXPECT_LT(rss - std::min(rss, rss_before), 64u << 20) << "procsup's resident memory grew from " << rss_before << " to " << rss;
#if !defined(__SANITIZE_ADDRESS__)  // a sanitizer's shadow memory and quarantine come on top
  EXPECT_LT(rss, 64u << 20) << "procsup's resident memory after the abuse: " << rss;
#endif

  for (int fd : held) ::close(fd);
  EXPECT_EQ(http_get(addr, "/healthz").status, 200);
  p_->kill(SIGTERM);
  EXPECT_EQ(p_->wait_exit(), 0);
}

TEST_F(http_endpoints, serve_on_a_unix_socket_too) {
  const std::string sock = dir_.file("http.sock");
  const auto addr = start(sleeper("sl", 1), "unix:" + sock);
  ASSERT_FALSE(addr.empty());
  ASSERT_TRUE(p_->wait_event("ready"));
  EXPECT_EQ(http_get(addr, "/healthz").status, 200);
  auto s = http_get(addr, "/status");
  EXPECT_EQ(s.status, 200);
  EXPECT_EQ(json::parse(s.body).at(0)["id"], "sl");
  p_->kill(SIGTERM);
  EXPECT_EQ(p_->wait_exit(), 0);
  EXPECT_FALSE(std::filesystem::exists(sock)) << "the socket file is removed at exit";
}

TEST_F(http_endpoints, an_address_in_use_is_a_start_error_naming_it) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  const std::string taken = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
  const auto cfg = dir_.write_config(sleeper("sl", 1), "cgroups = false\nhttp = " + toml_str(taken) + "\n");
  procsup_process p({"run", cfg});
  EXPECT_EQ(p.wait_exit(), 2);
  const auto out = p.output();
  EXPECT_NE(out.find("cannot listen on http " + taken), std::string::npos) << out;
  EXPECT_NE(out.find("Address already in use"), std::string::npos) << out;
  EXPECT_EQ(out.find("spawned"), std::string::npos) << "nothing starts:\n" << out;
  ::close(fd);
}

TEST_F(http_endpoints, check_rejects_an_address_that_is_not_host_port_or_unix_path) {
  for (const char* bad : {"example.com:80", "127.0.0.1", "127.0.0.1:70000", "unix:relative.sock"}) {
    const auto cfg = dir_.write_config(sleeper("sl", 1), std::string("http = ") + toml_str(bad) + "\n");
    auto r = run_procsup_cli({"check", cfg});
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_NE(r.err.find(cfg + ":3:8: supervisor.http: \"" + std::string(bad) + "\""), std::string::npos)
        << bad << ": " << r.err << r.out;
  }
}

}  // namespace
