// A real Prometheus (Debian's `prometheus` binary, our own instance: temp TSDB, a config in the
// test dir, loopback, 1 s scrape interval) scrapes procsup's /metrics; a program is killed twice;
// Prometheus' HTTP API must then report procsup_program_restarts_total = 2 and
// procsup_program_up = 1 for it (issue 16's "done when"). Label `slow`.
#include <netinet/in.h>
#include <sys/socket.h>

#include "helpers/http_client.hpp"
#include "helpers/program_harness.hpp"

namespace {

using namespace procsup::testing;

// A loopback port nobody listens on now (Prometheus cannot be told to pick one and say which).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  ::close(fd);
  return ntohs(sa.sin_port);
}

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '_' || c == '-' || c == '.') out += static_cast<char>(c);
    else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// The value of an instant query's single sample, or "" (no sample yet, or no answer).
std::string query_value(const std::string& prom, const std::string& promql) {
  auto r = http_get(prom, "/api/v1/query?query=" + url_encode(promql));
  if (r.status != 200) return "";
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_discarded() || j.value("status", "") != "success") return "";
  const auto& res = j["data"]["result"];
  if (!res.is_array() || res.size() != 1) return "";
  return res[0]["value"][1].get<std::string>();
}

class prometheus_scrape : public program_test {};

TEST_F(prometheus_scrape, a_real_prometheus_sees_two_restarts_and_the_program_up) {
  const std::string promtool = "/usr/bin/prometheus";
  ASSERT_TRUE(std::filesystem::exists(promtool)) << "install Debian's prometheus (scripts/setup.sh)";
  const auto cfg = dir_.write_config(
      "[[program]]\nname = \"victim\"\ncommand = " + toml_argv({test_target, "sleep", "1000"}) +
          "\nbackoff = { initial = \"0s\", max = \"100ms\" }\n",
      "cgroups = false\nhttp = \"127.0.0.1:0\"\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  auto ev = p.wait_event("http listening");
  ASSERT_TRUE(ev);
  const std::string target = (*ev)["address"].get<std::string>();
  ASSERT_TRUE(p.wait_event("[victim] ready"));

  const std::string prom = "127.0.0.1:" + std::to_string(free_port());
  dir_.write("prometheus.yml", "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                               "scrape_configs:\n  - job_name: procsup\n    static_configs:\n"
                               "      - targets: ['" + target + "']\n");
  std::filesystem::create_directory(dir_.file("tsdb"));
  const int log = ::open(dir_.file("prometheus.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const pid_t prom_pid = detail::spawn({promtool, "--config.file=" + dir_.file("prometheus.yml"),
                                        "--storage.tsdb.path=" + dir_.file("tsdb"), "--web.listen-address=" + prom,
                                        "--log.level=warn"},
                                       log, log);
  ::close(log);
  struct reap {
    pid_t pid;
    ~reap() {
      ::kill(pid, SIGTERM);
      bool late = false;
      detail::wait_child_bounded(pid, 20s, &late);
      if (late) {
        ::kill(pid, SIGKILL);
        detail::wait_child_bounded(pid, 10s);
      }
    }
  } prom_guard{prom_pid};

  // Polling Prometheus is the only way to learn what it has scraped (it emits no event).
  auto await_value = [&](const std::string& promql, const std::string& want) {
    const auto until = std::chrono::steady_clock::now() + 90s;
    std::string got;
    while (std::chrono::steady_clock::now() < until) {
      got = query_value(prom, promql);
      if (got == want) return got;
      std::this_thread::sleep_for(250ms);
    }
    return got;
  };
  // Prometheus keeps its own `instance` (the target) and renames ours to exported_instance.
  const std::string restarts = "procsup_program_restarts_total{program=\"victim\",exported_instance=\"0\"}";
  const std::string up = "procsup_program_up{program=\"victim\",exported_instance=\"0\"}";
  ASSERT_EQ(await_value(restarts, "0"), "0") << read_file(dir_.file("prometheus.log"));

  for (int kill = 1; kill <= 2; ++kill) {
    const auto from = p.lines().size();
    const auto st = status_of(dir_.socket(), "victim");
    ASSERT_TRUE(st["pid"].is_number());
    ASSERT_EQ(::kill(st["pid"].get<pid_t>(), SIGKILL), 0);
    ASSERT_TRUE(p.wait_event("[victim] spawned", json::object(), from));
    ASSERT_TRUE(p.wait_event("[victim] ready", json::object(), from));
    // Scraped between the kills, so each restart is seen (not only the final count).
    EXPECT_EQ(await_value(restarts, std::to_string(kill)), std::to_string(kill));
  }
  EXPECT_EQ(await_value(restarts, "2"), "2");
  EXPECT_EQ(await_value(up, "1"), "1");
  EXPECT_EQ(await_value("procsup_program_exits_total{program=\"victim\",cause=\"signal\"}", "2"), "2");
  EXPECT_EQ(await_value("up{job=\"procsup\"}", "1"), "1") << "Prometheus' own view of the target";

  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0);
}

}  // namespace
