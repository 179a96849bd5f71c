// Services (docs/services.md, issue 15) on the real binary: readiness of unmodified programs
// (the real systemd-notify and redis-server speaking sd_notify, the s6 notification fd, TCP /
// HTTP / exec probes), the notify watchdog, health checks that restart an unhealthy instance,
// and a hanging check that does not hold up a sibling's restart.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>
#include <fstream>

#include "helpers/program_harness.hpp"

namespace {

using namespace procsup::testing;

class program_services : public program_test {
 protected:
  std::string header() const { return "[supervisor]\nsocket = " + toml_str(dir_.socket()) + "\n"; }
  // A shell command that waits for the file `go` before running `then` (the test decides when a
  // program may become ready, instead of racing a sleep).
  std::string after_go(const std::string& go, const std::string& then) const {
    return "while [ ! -e " + go + " ]; do sleep 0.02; done; " + then;
  }
  static void touch(const std::string& path) { std::ofstream(path) << "x"; }
};

// A TCP port that was free a moment ago (bound to 0, read back, closed).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error("free_port");
  ::close(fd);
  return ntohs(a.sin_port);
}

bool have(const std::string& exe) { return ::access(exe.c_str(), X_OK) == 0; }

// A python3 HTTP server on `port`: /healthz answers 503 while the file `bad` exists, else 200.
std::string health_server(program_dir& dir, int port, const std::string& bad) {
  return dir.write("server.py",
                   "import http.server, os\n"
                   "class H(http.server.BaseHTTPRequestHandler):\n"
                   "    def do_GET(self):\n"
                   "        code = 503 if os.path.exists(" + toml_str(bad) + ") else 200\n"
                   "        self.send_response(code)\n"
                   "        self.send_header('Content-Length', '0')\n"
                   "        self.end_headers()\n"
                   "    def log_message(self, *a):\n"
                   "        pass\n"
                   "http.server.HTTPServer(('127.0.0.1', " + std::to_string(port) + "), H).serve_forever()\n");
}

TEST_F(program_services, a_notify_program_is_starting_until_systemd_notify_says_ready_with_its_status) {
  ASSERT_TRUE(have("/usr/bin/systemd-notify")) << "Debian's systemd package (scripts/setup.sh)";
  const std::string go = dir_.file("go");
  const std::string cfg = dir_.write("p.toml", header() +
      "[[program]]\nname = \"n\"\nready = \"notify\"\nready_timeout = \"60s\"\ncommand = " +
      toml_argv({"/bin/sh", "-c", after_go(go, "systemd-notify --ready --status=up; echo notify-rc=$?; exec sleep 600")}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("[n] spawned"));
  json st = status_of(dir_.socket(), "n");
  EXPECT_EQ(st["state"], "starting") << st.dump();
  EXPECT_EQ(st["ready"], false);
  EXPECT_EQ(st["ready_rule"], "notify");
  EXPECT_TRUE(st["status_text"].is_null());
  EXPECT_TRUE(p.events("ready").empty()) << "procsup is not ready while a program is starting";

  touch(go);
  auto ev = p.wait_event("[n] ready");
  ASSERT_TRUE(ev);
  EXPECT_EQ((*ev)["cause"], "READY=1");
  ASSERT_TRUE(p.wait_event("ready"));
  st = status_of(dir_.socket(), "n");
  EXPECT_EQ(st["state"], "running");
  EXPECT_EQ(st["ready"], true);
  EXPECT_EQ(st["status_text"], "up");
  // systemd-notify's barrier (BARRIER=1 + a pipe fd) was answered: it exits 0 at once, not after
  // its 5 s timeout with "Failed to invoke barrier".
  ASSERT_TRUE(p.wait_line([](const std::string& l) { return l.find("notify-rc=0") != std::string::npos; }, "notify-rc=0"));
  const std::string table = ctl(dir_.socket(), {"status"}).out;
  EXPECT_NE(table.find("STATUS"), std::string::npos) << table;
  EXPECT_NE(table.find("up"), std::string::npos) << table;
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0);
}

// A program speaking sd_notify itself (Python's sendmsg): EXTEND_TIMEOUT_USEC keeps it past its
// ready_timeout, fds it sends are all closed by procsup, MAINPID / ERRNO / RELOADING reach status.
TEST_F(program_services, notify_fields_extend_the_start_are_shown_and_every_fd_received_is_closed) {
  const std::string script = dir_.write("notifier.py",
      "import array, os, socket, sys, time\n"
      "addr = os.environ['NOTIFY_SOCKET']\n"
      "addr = '\\0' + addr[1:] if addr.startswith('@') else addr\n"
      "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
      "def send(msg, fds=()):\n"
      "    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', fds).tobytes())] if fds else []\n"
      "    s.sendmsg([msg.encode()], anc, 0, addr)\n"
      "send('EXTEND_TIMEOUT_USEC=30000000')\n"
      "time.sleep(3)  # beyond ready_timeout = 2s: only the extension keeps it alive\n"
      "r, w = os.pipe()\n"
      "send('STATUS=sending fds', [w, w, w])\n"
      "os.close(w)\n"
      "os.read(r, 1)  # EOF only once procsup has closed every copy of w\n"
      "print('all-closed', flush=True)\n"
      "send('MAINPID=%d\\nERRNO=5\\nREADY=1' % os.getpid())\n"
      "time.sleep(0.2)\n"
      "send('RELOADING=1')\n"
      "time.sleep(600)\n");
  const std::string cfg = dir_.write("p.toml", header() +
      "[[program]]\nname = \"py\"\nready = \"notify\"\nready_timeout = \"2s\"\ncommand = " + toml_argv({"python3", script}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_line([](const std::string& l) { return l.find("all-closed") != std::string::npos; }, "all-closed"));
  auto ready = p.wait_event("[py] ready");
  ASSERT_TRUE(ready);
  EXPECT_TRUE(p.events("[py] crashed").empty()) << "killed at its ready_timeout despite EXTEND_TIMEOUT_USEC";
  ASSERT_TRUE(p.wait_event("[py] reloading"));
  const json st = status_of(dir_.socket(), "py");
  EXPECT_EQ(st["main_pid"], (*ready)["pid"]) << st.dump();
  EXPECT_EQ(st["errno"], 5);
  EXPECT_EQ(st["notify_state"], "reloading");
  EXPECT_EQ(st["status_text"], "sending fds");
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0);
}

TEST_F(program_services, a_notify_datagram_from_a_process_outside_the_instance_is_ignored) {
  const std::string go = dir_.file("go");
  const std::string cfg = dir_.write("p.toml", header() +
      "[[program]]\nname = \"n\"\nready = \"notify\"\nready_timeout = \"60s\"\ncommand = " +
      toml_argv({"/bin/sh", "-c", "echo \"socket=$NOTIFY_SOCKET.\"; " + after_go(go, "systemd-notify --ready; exec sleep 600")}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  std::string address;
  ASSERT_TRUE(p.wait_line([&](const std::string& l) {
    const auto at = l.find("socket=@");
    if (at == std::string::npos) return false;
    address = l.substr(at + 8, l.find('.', at) - at - 8);
    return true;
  }, "the instance's NOTIFY_SOCKET"));
  // The test (not in the instance's session or cgroup) claims it is ready.
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path + 1, address.data(), address.size());
  const std::string msg = "READY=1\nSTATUS=forged";
  ASSERT_EQ(::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&a),
                     static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + address.size())),
            static_cast<ssize_t>(msg.size())) << std::strerror(errno);
  ::close(fd);
  auto ignored = p.wait_event("[n] notify message from outside the instance ignored");
  ASSERT_TRUE(ignored);
  EXPECT_EQ((*ignored)["sender_pid"], ::getpid());
  const json st = status_of(dir_.socket(), "n");
  EXPECT_EQ(st["state"], "starting") << st.dump();
  EXPECT_TRUE(st["status_text"].is_null());
  touch(go);
  ASSERT_TRUE(p.wait_event("[n] ready"));
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0);
}

TEST_F(program_services, redis_server_supervised_by_systemd_becomes_ready_through_its_own_sd_notify) {
  if (!have("/usr/bin/redis-server")) GTEST_SKIP() << "redis-server is not installed (scripts/setup.sh installs it)";
  const std::string cfg = dir_.write("p.toml", header() +
      "[[program]]\nname = \"redis\"\nready = \"notify\"\nready_timeout = \"60s\"\ncommand = " +
      toml_argv({"/usr/bin/redis-server", "--supervised", "systemd", "--port", "0", "--save", "", "--appendonly", "no",
                 "--unixsocket", dir_.file("redis.sock"), "--dir", dir_.file("")}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  auto ev = p.wait_event("[redis] ready");
  ASSERT_TRUE(ev);
  EXPECT_EQ((*ev)["cause"], "READY=1");
  const json st = status_of(dir_.socket(), "redis");
  EXPECT_EQ(st["ready"], true);
  EXPECT_EQ(st["status_text"], "Ready to accept connections") << st.dump();
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0);
}

TEST_F(program_services, a_missed_watchdog_ping_kills_the_instance_and_it_is_restarted) {
  ASSERT_TRUE(have("/usr/bin/systemd-notify"));
  const std::string cfg = dir_.write("p.toml", header() +
      "[[program]]\nname = \"w\"\nready = \"notify\"\nwatchdog = \"1s\"\ncommand = " +
      toml_argv({"/bin/sh", "-c",
                 "echo \"wd usec=$WATCHDOG_USEC pid=$WATCHDOG_PID main=$$\"; systemd-notify --ready; "
                 "for i in 1 2 3; do systemd-notify WATCHDOG=1; sleep 0.2; done; echo pings-stopped; exec sleep 600"}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  auto spawned = p.wait_event("[w] spawned");
  ASSERT_TRUE(spawned);
  const std::string main = std::to_string((*spawned)["pid"].get<long long>());
  // WATCHDOG_PID is the instance's own pid (set by the child itself before exec).
  ASSERT_TRUE(p.wait_line([&](const std::string& l) {
    return l.find("wd usec=1000000 pid=" + main + " main=" + main) != std::string::npos;
  }, "the watchdog variables"));
  ASSERT_TRUE(p.wait_event("[w] ready"));
  auto crashed = p.wait_event("[w] crashed");
  ASSERT_TRUE(crashed);
  EXPECT_EQ((*crashed)["cause"], "watchdog timeout");
  // The strategy (restart) applies.
  ASSERT_TRUE(p.wait_event("[w] spawned", json::object(), static_cast<std::size_t>((*crashed)["_index"].get<std::size_t>())));
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0);
}

TEST_F(program_services, a_notify_program_that_never_says_ready_fails_at_its_ready_timeout) {
  const std::string cfg = dir_.write("p.toml", header() +
      "[[program]]\nname = \"mute\"\nready = \"notify\"\nready_timeout = \"300ms\"\nstrategy = \"stop\"\ncommand = " +
      toml_argv({"/bin/sleep", "600"}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  auto crashed = p.wait_event("[mute] crashed");
  ASSERT_TRUE(crashed);
  EXPECT_EQ((*crashed)["cause"], "did not become ready within 300 ms");
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0);
}

TEST_F(program_services, a_newline_on_the_notification_fd_makes_it_ready) {
  const std::string go = dir_.file("go");
  const std::string cfg = dir_.write("p.toml", header() +
      "[[program]]\nname = \"s6\"\nready = { fd = 5 }\ncommand = " +
      toml_argv({"/bin/sh", "-c", after_go(go, "echo >&5; exec sleep 600")}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("[s6] spawned"));
  EXPECT_EQ(status_of(dir_.socket(), "s6")["state"], "starting");
  touch(go);
  auto ev = p.wait_event("[s6] ready");
  ASSERT_TRUE(ev);
  EXPECT_EQ((*ev)["cause"], "newline on fd 5");
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0);
}

TEST_F(program_services, tcp_http_and_exec_probes_make_programs_ready_once_they_pass) {
  const std::string go = dir_.file("go");
  const int tcp_port = free_port(), http_port = free_port();
  const std::string server = "exec python3 -m http.server --bind 127.0.0.1 ";
  const std::string cfg = dir_.write("p.toml", header() +
      "[[program]]\nname = \"tcp\"\nready = { tcp = \"127.0.0.1:" + std::to_string(tcp_port) + "\" }\n"
      "ready_interval = \"50ms\"\nready_timeout = \"60s\"\ncommand = " +
      toml_argv({"/bin/sh", "-c", after_go(go, server + std::to_string(tcp_port))}) + "\n"
      "[[program]]\nname = \"http\"\nready = { http = \"http://127.0.0.1:" + std::to_string(http_port) + "/\" }\n"
      "ready_interval = \"50ms\"\nready_timeout = \"60s\"\ncommand = " +
      toml_argv({"/bin/sh", "-c", after_go(go, server + std::to_string(http_port))}) + "\n"
      "[[program]]\nname = \"exec\"\nready = { exec = [\"test\", \"-e\", " + toml_str(go) + "] }\n"
      "ready_interval = \"50ms\"\nready_timeout = \"60s\"\ncommand = " + toml_argv({"/bin/sleep", "600"}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("[exec] spawned"));
  for (const char* id : {"tcp", "http", "exec"}) {
    const json st = status_of(dir_.socket(), id);
    EXPECT_EQ(st["state"], "starting") << st.dump();
  }
  EXPECT_EQ(status_of(dir_.socket(), "tcp")["ready_error"], "Connection refused");
  touch(go);
  auto tcp = p.wait_event("[tcp] ready");
  auto http = p.wait_event("[http] ready");
  auto exec = p.wait_event("[exec] ready");
  ASSERT_TRUE(tcp && http && exec);
  EXPECT_EQ((*tcp)["cause"], "connect 127.0.0.1:" + std::to_string(tcp_port) + ": connected");
  EXPECT_EQ((*http)["cause"], "GET /: 200");
  EXPECT_EQ((*exec)["cause"], "exec test: exit 0");
  ASSERT_TRUE(p.wait_event("ready"));
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0);
}

TEST_F(program_services, an_unhealthy_instance_is_killed_after_its_failures_and_restarted_with_that_cause) {
  const int port = free_port();
  const std::string bad = dir_.file("bad");
  const std::string script = health_server(dir_, port, bad);
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/healthz";
  const std::string cfg = dir_.write("p.toml", header() +
      "[[program]]\nname = \"web\"\nready = { http = " + toml_str(url) + " }\nready_timeout = \"60s\"\n"
      "health = { http = " + toml_str(url) + ", interval = \"300ms\", timeout = \"2s\", failures = 3 }\n"
      "command = " + toml_argv({"python3", script}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("[web] ready"));
  touch(bad);
  auto first = p.wait_event("[web] health check failed", {{"failures", "1/3"}});
  ASSERT_TRUE(first);
  EXPECT_EQ((*first)["check"], "GET /healthz: 503");
  ASSERT_TRUE(p.wait_event("[web] health check failed", {{"failures", "2/3"}}));
  auto crashed = p.wait_event("[web] crashed");
  ASSERT_TRUE(crashed);
  EXPECT_EQ((*crashed)["cause"], "unhealthy: GET /healthz: 503 after 3 checks");
  const std::size_t at = (*crashed)["_index"].get<std::size_t>();
  ASSERT_TRUE(p.wait_event("[web] spawned", json::object(), at));
  ::unlink(bad.c_str());
  ASSERT_TRUE(p.wait_event("[web] ready", json::object(), at));
  const json st = status_of(dir_.socket(), "web");
  EXPECT_EQ(st["restarts"], 1);
  EXPECT_EQ(st["last_error"], "unhealthy: GET /healthz: 503 after 3 checks");
  EXPECT_TRUE(st["health"] == "starting" || st["health"] == "healthy") << st.dump();
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0);
}

TEST_F(program_services, status_shows_unhealthy_n_of_failures_between_failed_checks) {
  const std::string bad = dir_.file("bad");
  touch(bad);
  const std::string cfg = dir_.write("p.toml", header() +
      "[[program]]\nname = \"h\"\nhealth = { exec = [\"test\", \"!\", \"-e\", " + toml_str(bad) +
      "], interval = \"60s\", failures = 3 }\ncommand = " + toml_argv({"/bin/sleep", "600"}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("[h] health check failed", {{"failures", "1/3"}}));
  const json st = status_of(dir_.socket(), "h");
  EXPECT_EQ(st["health"], "unhealthy (1/3)") << st.dump();
  EXPECT_EQ(st["health_error"], "exited with code 1");
  const std::string table = ctl(dir_.socket(), {"status"}).out;
  EXPECT_NE(table.find("unhealthy (1/3)"), std::string::npos) << table;
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0);
}

// The time of a JSON log line, in ms since the epoch's day start (enough to subtract two).
long long ms_of(const json& ev) {
  const std::string t = ev.value("time", "");  // 2026-12-04T02:15:57.008Z
  const int h = std::stoi(t.substr(11, 2)), m = std::stoi(t.substr(14, 2)), s = std::stoi(t.substr(17, 2));
  const int ms = std::stoi(t.substr(20, 3));
  return ((h * 60LL + m) * 60 + s) * 1000 + ms;
}

TEST_F(program_services, a_hanging_health_check_does_not_delay_a_siblings_restart) {
  const std::string tag = unique_tag("hang");
  const std::string cfg = dir_.write("p.toml", header() +
      "[[program]]\nname = \"slow\"\nhealth = { exec = [\"python3\", \"-c\", \"import time; time.sleep(60)\", " +
      toml_str(tag) + "], interval = \"100ms\", timeout = \"50s\" }\ncommand = " + toml_argv({"/bin/sleep", "600"}) +
      "\n[[program]]\nname = \"crashy\"\ncommand = " + toml_argv({"/bin/sh", "-c", "sleep 0.3; exit 3"}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  // The check is running (and will hang for 50 s) ...
  ASSERT_TRUE(p.wait_event("[slow] ready"));
  const auto until = std::chrono::steady_clock::now() + default_deadline;
  while (live_processes_tagged(tag).empty() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_FALSE(live_processes_tagged(tag).empty()) << "the hanging check never started";
  // ... while the sibling crashes and is restarted three times, each at once.
  std::size_t from = p.lines().size();
  long long worst = 0;
  for (int i = 0; i < 3; ++i) {
    auto crashed = p.wait_event("[crashy] crashed", json::object(), from);
    ASSERT_TRUE(crashed);
    auto spawned = p.wait_event("[crashy] spawned", json::object(), (*crashed)["_index"].get<std::size_t>());
    ASSERT_TRUE(spawned);
    auto restarting = p.events("[crashy] restarting");
    const long long delay = restarting.empty() ? 0 : restarting.back().value("delay_ms", 0LL);
    worst = std::max(worst, ms_of(*spawned) - ms_of(*crashed) - delay);
    from = (*spawned)["_index"].get<std::size_t>() + 1;
  }
  EXPECT_FALSE(live_processes_tagged(tag).empty()) << "the check still hangs";
  // Generous for a loaded 2-core box: a restart that waited for the check would take ~50 s.
  EXPECT_LT(worst, 2000) << "a restart waited " << worst << " ms beyond its backoff";
  std::printf("restart of a sibling while a health check hangs: worst %lld ms beyond the backoff\n", worst);
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0);
  EXPECT_TRUE(wait_tagged_gone(tag).empty()) << "the hanging check is killed at shutdown";
}

TEST_F(program_services, check_rejects_bad_ready_and_health_tables_with_their_line) {
  const std::string cfg = dir_.write("bad.toml",
      "[[program]]\nname = \"a\"\ncommand = [\"true\"]\nready = { fd = 3, tcp = \"127.0.0.1:1\" }\n"
      "[[program]]\nname = \"b\"\ncommand = [\"true\"]\nwatchdog = \"1s\"\n"
      "[[program]]\nname = \"c\"\ncommand = [\"true\"]\nhealth = { interval = \"1s\" }\n"
      "[[program]]\nname = \"d\"\ncommand = [\"true\"]\nready = { http = \"ftp://x\" }\n");
  auto r = run_procsup_cli({"check", cfg});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("bad.toml:4:9: program[0].ready: needs exactly one of fd, tcp, http, exec; got 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bad.toml:8:12: program[1].watchdog: needs ready = \"notify\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("program[2].health: needs exactly one of http, tcp, exec; got 0"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("program[3].ready.http: expected an http:// URL"), std::string::npos) << r.err;
}

// ---- depends_on

TEST_F(program_services, a_dependent_starts_only_once_its_dependency_is_ready) {
  const std::string go = dir_.file("go");
  const std::string cfg = dir_.write("p.toml", header() +
      "[[program]]\nname = \"api\"\ndepends_on = [\"db\"]\ncommand = " + toml_argv({"/bin/sleep", "600"}) +
      "\n[[program]]\nname = \"db\"\nready = { exec = [\"test\", \"-e\", " + toml_str(go) +
      "] }\nready_interval = \"20ms\"\nready_timeout = \"60s\"\ncommand = " + toml_argv({"/bin/sleep", "600"}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  auto waiting = p.wait_event("[api] waiting for its dependencies");
  ASSERT_TRUE(waiting);
  EXPECT_EQ((*waiting)["depends_on"], json::array({"db"}));
  ASSERT_TRUE(p.wait_event("[db] spawned"));
  EXPECT_TRUE(p.events("[api] spawned").empty()) << "api started before db was ready";
  const json st = status_of(dir_.socket(), "api");
  EXPECT_EQ(st["state"], "waiting") << st.dump();
  EXPECT_EQ(st["waiting_for"], json::array({"db"}));
  touch(go);
  auto ready = p.wait_event("[db] ready");
  auto spawned = p.wait_event("[api] spawned");
  ASSERT_TRUE(ready && spawned);
  EXPECT_GT((*spawned)["_index"].get<std::size_t>(), (*ready)["_index"].get<std::size_t>());
  std::printf("api spawned %lld ms after db's ready event\n", ms_of(*spawned) - ms_of(*ready));
  ASSERT_TRUE(p.wait_event("ready"));  // procsup's own readiness waits for the dependent too
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0);
}

TEST_F(program_services, shutdown_stops_dependents_before_their_dependencies) {
  const std::string cfg = dir_.write("p.toml", header() +
      "[[program]]\nname = \"db\"\ncommand = " + toml_argv({"/bin/sleep", "600"}) +
      "\n[[program]]\nname = \"api\"\ndepends_on = [\"db\"]\ncommand = " + toml_argv({"/bin/sleep", "600"}) +
      "\n[[program]]\nname = \"web\"\ndepends_on = [\"api\", \"db\"]\ncommand = " + toml_argv({"/bin/sleep", "600"}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("ready"));
  p.kill(SIGTERM);
  auto web = p.wait_event("[web] exited");
  auto api = p.wait_event("[api] exited");
  auto db = p.wait_event("[db] exited");
  ASSERT_TRUE(web && api && db);
  EXPECT_LT((*web)["_index"].get<std::size_t>(), (*api)["_index"].get<std::size_t>());
  EXPECT_LT((*api)["_index"].get<std::size_t>(), (*db)["_index"].get<std::size_t>());
  EXPECT_EQ(p.wait_exit(), 0);
}

TEST_F(program_services, on_dependency_restart_restarts_a_dependent_when_its_dependency_comes_back) {
  const std::string marker = dir_.file("crashed-once");
  const std::string cfg = dir_.write("p.toml", header() +
      "[[program]]\nname = \"db\"\ncommand = " +
      toml_argv({"/bin/sh", "-c", "if [ ! -e " + marker + " ]; then touch " + marker + "; sleep 0.5; exit 1; fi; exec sleep 600"}) +
      "\n[[program]]\nname = \"api\"\ndepends_on = [\"db\"]\non_dependency_restart = \"restart\"\ncommand = " +
      toml_argv({"/bin/sleep", "600"}) +
      "\n[[program]]\nname = \"cron\"\ndepends_on = [\"db\"]\ncommand = " + toml_argv({"/bin/sleep", "600"}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("[db] crashed"));
  auto again = p.wait_event("[api] restarting: its dependency restarted");
  ASSERT_TRUE(again);
  ASSERT_TRUE(p.wait_event("[api] spawned", json::object(), (*again)["_index"].get<std::size_t>()));
  EXPECT_EQ(status_of(dir_.socket(), "api")["restarts"], 1);
  EXPECT_EQ(status_of(dir_.socket(), "cron")["restarts"], 0) << "on_dependency_restart defaults to ignore";
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0);
}

TEST_F(program_services, a_program_added_by_reload_waits_for_its_dependency_too) {
  const std::string go = dir_.file("go");
  const std::string first = header() + "[[program]]\nname = \"db\"\ncommand = " + toml_argv({"/bin/sleep", "600"}) + "\n";
  const std::string cfg = dir_.write("p.toml", first);
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("ready"));
  dir_.write("p.toml", first +
      "[[program]]\nname = \"cache\"\nready = { exec = [\"test\", \"-e\", " + toml_str(go) + "] }\nready_interval = \"20ms\"\n"
      "ready_timeout = \"60s\"\ncommand = " + toml_argv({"/bin/sleep", "600"}) +
      "\n[[program]]\nname = \"api\"\ndepends_on = [\"db\", \"cache\"]\ncommand = " + toml_argv({"/bin/sleep", "600"}) + "\n");
  const auto r = ctl(dir_.socket(), {"reload"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_TRUE(p.wait_event("reload applied"));
  ASSERT_TRUE(p.wait_event("[cache] spawned"));
  EXPECT_EQ(status_of(dir_.socket(), "api")["state"], "waiting");
  EXPECT_TRUE(p.events("[api] spawned").empty());
  touch(go);
  auto ready = p.wait_event("[cache] ready");
  auto spawned = p.wait_event("[api] spawned");
  ASSERT_TRUE(ready && spawned);
  EXPECT_GT((*spawned)["_index"].get<std::size_t>(), (*ready)["_index"].get<std::size_t>());
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0);
}

TEST_F(program_services, ctl_stop_of_a_dependency_stops_its_dependents_first_and_ctl_start_starts_dependencies_first) {
  const std::string sleep = toml_argv({"/bin/sleep", "600"});
  const std::string cfg = dir_.write("p.toml", header() +
      "[[program]]\nname = \"db\"\ncommand = " + sleep +
      "\n[[program]]\nname = \"api\"\ndepends_on = [\"db\"]\ncommand = " + sleep +
      "\n[[program]]\nname = \"web\"\ndepends_on = [\"api\"]\ncommand = " + sleep +
      "\n[[program]]\nname = \"cron\"\ncommand = " + sleep + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("ready"));
  auto r = ctl(dir_.socket(), {"stop", "db"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("web: stopped\napi: stopped\ndb: stopped"), std::string::npos) << r.out;
  auto web = p.wait_event("[web] exited");
  auto api = p.wait_event("[api] exited");
  auto db = p.wait_event("[db] exited");
  ASSERT_TRUE(web && api && db);
  EXPECT_LT((*web)["_index"].get<std::size_t>(), (*api)["_index"].get<std::size_t>());
  EXPECT_LT((*api)["_index"].get<std::size_t>(), (*db)["_index"].get<std::size_t>());
  EXPECT_EQ(status_of(dir_.socket(), "cron")["state"], "running") << "not a dependent of db";
  EXPECT_EQ(status_of(dir_.socket(), "web")["state"], "stopped");

  const std::size_t mark = p.lines().size();
  r = ctl(dir_.socket(), {"start", "web"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto db_at = r.out.find("db: started"), api_at = r.out.find("api: started"), web_at = r.out.find("web: started");
  ASSERT_TRUE(db_at != std::string::npos && api_at != std::string::npos && web_at != std::string::npos) << r.out;
  EXPECT_TRUE(db_at < api_at && api_at < web_at) << r.out;
  auto s_db = p.wait_event("[db] spawned", json::object(), mark);
  auto s_api = p.wait_event("[api] spawned", json::object(), mark);
  auto s_web = p.wait_event("[web] spawned", json::object(), mark);
  ASSERT_TRUE(s_db && s_api && s_web);
  EXPECT_LT((*s_db)["_index"].get<std::size_t>(), (*s_api)["_index"].get<std::size_t>());
  EXPECT_LT((*s_api)["_index"].get<std::size_t>(), (*s_web)["_index"].get<std::size_t>());
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0);
}

TEST_F(program_services, a_dependency_that_fails_for_good_fails_the_programs_waiting_on_it) {
  const std::string sleep = toml_argv({"/bin/sleep", "600"});
  const std::string cfg = dir_.write("p.toml", header() +
      "[[program]]\nname = \"db\"\nstrategy = \"stop\"\nready = { exec = [\"false\"] }\nready_interval = \"20ms\"\n"
      "ready_timeout = \"60s\"\ncommand = " + toml_argv({"/bin/sh", "-c", "exit 3"}) +
      "\n[[program]]\nname = \"api\"\ndepends_on = [\"db\"]\ncommand = " + sleep +
      "\n[[program]]\nname = \"web\"\ndepends_on = [\"api\"]\ncommand = " + sleep + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  auto api = p.wait_event("[api] cannot start: a dependency failed");
  ASSERT_TRUE(api);
  EXPECT_EQ((*api)["dependency"], "db");
  EXPECT_NE((*api)["cause"].get<std::string>().find("db"), std::string::npos) << api->dump();
  auto web = p.wait_event("[web] cannot start: a dependency failed");
  ASSERT_TRUE(web);
  EXPECT_EQ((*web)["dependency"], "api");
  const json st = status_of(dir_.socket(), "api");
  EXPECT_EQ(st["state"], "failed") << st.dump();
  EXPECT_NE(st["last_error"].get<std::string>().find("a dependency failed: db"), std::string::npos) << st.dump();
  // Starting it again starts db first, which fails again: the reply says so, api stays down.
  const auto r = ctl(dir_.socket(), {"start", "api"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("db: did not start"), std::string::npos) << r.out << r.err;
  EXPECT_TRUE(p.events("[api] spawned").empty());
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0);
}

TEST_F(program_services, ctl_stop_of_a_waiting_program_keeps_it_down_until_ctl_start) {
  const std::string go = dir_.file("go");
  const std::string cfg = dir_.write("p.toml", header() +
      "[[program]]\nname = \"db\"\nready = { exec = [\"test\", \"-e\", " + toml_str(go) +
      "] }\nready_interval = \"20ms\"\nready_timeout = \"60s\"\ncommand = " + toml_argv({"/bin/sleep", "600"}) +
      "\n[[program]]\nname = \"api\"\ndepends_on = [\"db\"]\ncommand = " + toml_argv({"/bin/sleep", "600"}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("[api] waiting for its dependencies"));
  auto r = ctl(dir_.socket(), {"stop", "api"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("api: stopped (it was waiting for its dependencies)"), std::string::npos) << r.out;
  EXPECT_EQ(status_of(dir_.socket(), "api")["state"], "stopped");
  touch(go);
  ASSERT_TRUE(p.wait_event("[db] ready"));
  ASSERT_TRUE(p.wait_event("ready"));  // procsup's own: after db's ready was handled (dependents started by then)
  EXPECT_TRUE(p.events("[api] spawned").empty()) << "a program stopped by ctl must not start by itself";
  r = ctl(dir_.socket(), {"start", "api"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("api: started (pid "), std::string::npos) << r.out;
  EXPECT_EQ(status_of(dir_.socket(), "api")["state"], "running");
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0);
}

TEST_F(program_services, check_rejects_unknown_dependencies_and_cycles_with_their_line) {
  const std::string unknown = dir_.write("unknown.toml",
      "[[program]]\nname = \"a\"\ncommand = [\"true\"]\ndepends_on = [\"nope\"]\n");
  auto r = run_procsup_cli({"check", unknown});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("unknown.toml:4:14: program[0].depends_on: unknown program \"nope\""), std::string::npos) << r.err;
  const std::string cycle = dir_.write("cycle.toml",
      "[[program]]\nname = \"db\"\ncommand = [\"true\"]\n"
      "[[program]]\nname = \"worker\"\ncommand = [\"true\"]\ndepends_on = [\"api\"]\n"
      "[[program]]\nname = \"api\"\ncommand = [\"true\"]\ndepends_on = [\"db\", \"worker\"]\n");
  r = run_procsup_cli({"check", cycle});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("cycle.toml:7:14: program[1].depends_on: cycle worker -> api -> worker"), std::string::npos) << r.err;
}

// ---- sockets held across restarts

TEST_F(program_services, held_sockets_reach_the_program_as_fd_3_and_up_with_the_listen_variables) {
  const int port = free_port();
  const std::string path = dir_.file("api.sock");
  {  // a stale socket file of an earlier run: replaced
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::close(fd);
  }
  const std::string cfg = dir_.write("p.toml", header() +
      "[[program]]\nname = \"api\"\nsockets = [\"tcp://127.0.0.1:" + std::to_string(port) + "\", \"unix://" + path +
      "\"]\nsocket_mode = \"0600\"\ncommand = " +
      toml_argv({"/bin/sh", "-c", "echo \"fds=$LISTEN_FDS names=$LISTEN_FDNAMES pid=$LISTEN_PID main=$$\"; exec sleep 600"}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  auto spawned = p.wait_event("[api] spawned");
  ASSERT_TRUE(spawned);
  const std::string pid = std::to_string((*spawned)["pid"].get<long long>());
  ASSERT_TRUE(p.wait_line([&](const std::string& l) {
    return l.find("fds=2 names=tcp_127.0.0.1_" + std::to_string(port) + ":unix_" ) != std::string::npos &&
           l.find(" pid=" + pid + " main=" + pid) != std::string::npos;
  }, "the LISTEN_* variables with LISTEN_PID = the program's pid"));
  // fd 3 and 4 are the listening sockets.
  char link[256] = {};
  ASSERT_GT(::readlink(("/proc/" + pid + "/fd/3").c_str(), link, sizeof link - 1), 0);
  EXPECT_EQ(std::string(link).rfind("socket:", 0), 0u) << link;
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  // A connection is accepted by the kernel (the backlog) even though the program never accepts.
  const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
  ::close(c);
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0);
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "the socket file is removed at exit";
}

TEST_F(program_services, a_socket_that_cannot_be_bound_stops_procsup_at_start_naming_the_address) {
  const int taken = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(taken, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(taken, 1), 0);
  ASSERT_EQ(::getsockname(taken, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const std::string address = "tcp://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  const std::string cfg = dir_.write("p.toml", header() +
      "[[program]]\nname = \"api\"\nsockets = [" + toml_str(address) + "]\ncommand = " + toml_argv({"/bin/sleep", "600"}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  auto ev = p.wait_event("[api] cannot open its sockets");
  ASSERT_TRUE(ev);
  EXPECT_EQ((*ev)["error"], address + ": bind: Address already in use");
  EXPECT_EQ(p.wait_exit(), 2);
  EXPECT_TRUE(p.events("[api] spawned").empty());
  ::close(taken);
  auto r = run_procsup_cli({"check", dir_.write("bad.toml", "[[program]]\nname = \"a\"\ncommand = [\"true\"]\n"
                                                          "sockets = [\"udp://1.2.3.4:5\"]\n")});
  EXPECT_NE(r.err.find("bad.toml:4:12: program[0].sockets[0]: \"udp://1.2.3.4:5\": expected tcp://HOST:PORT or unix:///PATH"),
            std::string::npos) << r.err;
}

TEST_F(program_services, socket_owner_sets_the_unix_socket_files_owner_and_check_rejects_bad_owners) {
  if (::geteuid() != 0) GTEST_SKIP() << "chown to another user needs root";
  const passwd* nobody = ::getpwnam("nobody");
  const group* nogroup = ::getgrnam("nogroup");
  ASSERT_TRUE(nobody != nullptr && nogroup != nullptr);
  const std::string path = dir_.file("owned.sock");
  const std::string cfg = dir_.write("p.toml", header() +
      "[[program]]\nname = \"api\"\nsockets = [\"unix://" + path + "\"]\nsocket_mode = \"0660\"\n"
      "socket_owner = \"nobody:nogroup\"\ncommand = " + toml_argv({"/bin/sleep", "600"}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("[api] spawned"));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_uid, nobody->pw_uid);
  EXPECT_EQ(st.st_gid, nogroup->gr_gid);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0);

  const std::string bad = dir_.write("bad.toml",
      "[[program]]\nname = \"a\"\ncommand = [\"true\"]\nsockets = [\"unix:///tmp/x.sock\"]\nsocket_owner = \"no-such-user-x\"\n"
      "[[program]]\nname = \"b\"\ncommand = [\"true\"]\nsockets = [\"unix:///tmp/y.sock\"]\nsocket_owner = \"root:no-such-group-x\"\n"
      "[[program]]\nname = \"c\"\ncommand = [\"true\"]\nsockets = [\"tcp://127.0.0.1:1\"]\nsocket_owner = \"nobody\"\n");
  auto r = run_procsup_cli({"check", bad});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad.toml:5:16: program[0].socket_owner: \"no-such-user-x\": unknown user \"no-such-user-x\""),
            std::string::npos) << r.err;
  EXPECT_NE(r.err.find("program[1].socket_owner: \"root:no-such-group-x\": unknown group \"no-such-group-x\""),
            std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bad.toml:15:16: program[2].socket_owner: needs a unix:// address in sockets"), std::string::npos) << r.err;
}

// A real HTTP server that exits after every 50th request, restarted by procsup at once, and a
// client making 2,000 sequential requests: with `sockets`, no connection is refused.
struct crash_run {
  int ok = 0, errors = 0, restarts = 0;
  std::string kinds;
};

crash_run run_crashing_server(program_dir& dir, const std::string& socket_path, bool held) {
  const int port = free_port();
  const std::string server = dir.write(held ? "server-held.py" : "server-own.py",
      "import os, socket, sys\n"
      "from http.server import HTTPServer, BaseHTTPRequestHandler\n"
      "class H(BaseHTTPRequestHandler):\n"
      "    protocol_version = 'HTTP/1.0'\n"
      "    def do_GET(self):\n"
      "        self.send_response(200)\n"
      "        self.send_header('Content-Length', '2')\n"
      "        self.end_headers()\n"
      "        self.wfile.write(b'ok')\n"
      "    def log_message(self, *a):\n"
      "        pass\n"
      "if os.environ.get('LISTEN_FDS') == '1':\n"
      "    assert os.environ['LISTEN_PID'] == str(os.getpid())\n"
      "    srv = HTTPServer(('127.0.0.1', 0), H, bind_and_activate=False)\n"
      "    srv.socket.close()\n"
      "    srv.socket = socket.socket(fileno=3)\n"
      "else:\n"
      "    srv = HTTPServer(('127.0.0.1', " + std::to_string(port) + "), H)\n"
      "print('serving', flush=True)\n"
      "for _ in range(50):\n"
      "    srv.handle_request()\n"
      "sys.exit(1)\n");
  const std::string client = dir.write("client.py",
      "import http.client, json, sys, time\n"
      "port = int(sys.argv[1])\n"
      "ok = errors = 0\n"
      "kinds = {}\n"
      "for i in range(2000):\n"
      "    try:\n"
      "        c = http.client.HTTPConnection('127.0.0.1', port, timeout=30)\n"
      "        c.request('GET', '/')\n"
      "        r = c.getresponse()\n"
      "        if r.status == 200 and r.read() == b'ok':\n"
      "            ok += 1\n"
      "        else:\n"
      "            errors += 1\n"
      "        c.close()\n"
      "    except Exception as e:\n"
      "        errors += 1\n"
      "        kinds[type(e).__name__] = kinds.get(type(e).__name__, 0) + 1\n"
      "print(json.dumps({'ok': ok, 'errors': errors, 'kinds': kinds}))\n");
  const std::string cfg = dir.write(held ? "held.toml" : "own.toml",
      "[supervisor]\nsocket = " + toml_str(socket_path) + "\nintensity = 100000\nperiod = \"60s\"\n"
      "[[program]]\nname = \"web\"\n" +
      (held ? "sockets = [\"tcp://127.0.0.1:" + std::to_string(port) + "\"]\n" : std::string()) +
      "backoff = { initial = \"0ms\", max = \"0ms\" }\ncommand = " + toml_argv({"python3", server}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  crash_run out;
  if (!p.wait_line([](const std::string& l) { return l.find("serving") != std::string::npos; }, "serving")) return out;
  const std::string result = dir.file(held ? "held.json" : "own.json");
  const int fd = ::open(result.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const pid_t c = detail::spawn({"/usr/bin/python3", client, std::to_string(port)}, fd, 2);
  ::close(fd);
  const int status = detail::wait_child_bounded(c, std::chrono::minutes(3));
  EXPECT_EQ(detail::exit_code_of(status), 0);
  const json r = json::parse(read_file(result), nullptr, false);
  EXPECT_TRUE(r.is_object()) << read_file(result);
  if (r.is_object()) {
    out.ok = r.value("ok", 0);
    out.errors = r.value("errors", 0);
    out.kinds = r["kinds"].dump();
  }
  out.restarts = static_cast<int>(p.events("[web] crashed").size());
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0);
  return out;
}

TEST_F(program_services, no_connection_is_refused_across_crashes_while_procsup_holds_the_socket) {
  const crash_run held = run_crashing_server(dir_, dir_.socket(), true);
  const crash_run own = run_crashing_server(dir_, dir_.socket(), false);
  std::printf("2000 sequential requests, server exits after every 50th:\n"
              "  sockets held by procsup: %d answered, %d errors, %d restarts\n"
              "  server binds its own:    %d answered, %d errors %s, %d restarts\n",
              held.ok, held.errors, held.restarts, own.ok, own.errors, own.kinds.c_str(), own.restarts);
  EXPECT_EQ(held.ok, 2000);
  EXPECT_EQ(held.errors, 0);
  EXPECT_GE(held.restarts, 39);  // 2,000 / 50 - 1: it really crashed all along
}

}  // namespace
