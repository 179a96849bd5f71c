// Shared by test_reload_*.cpp and test_protocol_*.cpp: runs the real `procsup run CONFIG` in a
// temporary directory (its log in procsup.log there), talks to its control socket, polls status.
// Waits poll with generous deadlines; nothing asserts on timing.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "helpers/process_guard.hpp"
#include "procsup/daemon/control.hpp"
#include "procsup/supervisor/launcher.hpp"

namespace procsup::testing {

using json = nlohmann::json;
using namespace std::chrono_literals;

struct cli_result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class procsup_daemon_test : public process_guard_test {
 protected:
  void SetUp() override {
    process_guard_test::SetUp();
    char tmpl[] = "/tmp/procsup-reload-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    config_ = dir_ + "/procsup.toml";
    socket_ = dir_ + "/procsup.sock";
  }
  void TearDown() override {
    stop_daemon();
    if (HasFailure()) std::cerr << "---- procsup.log ----\n" << log_text() << "---------------------\n";
    std::filesystem::remove_all(dir_);
    process_guard_test::TearDown();
  }

  // The [supervisor] table (socket in our directory) + `programs`.
  std::string config_text(const std::string& programs, const std::string& supervisor_extra = "") const {
    return "[supervisor]\nintensity = 100\nperiod = \"60s\"\nsocket = \"" + socket_ + "\"\n" + supervisor_extra +
           "\n" + programs;
  }
  void write_config(const std::string& text) const { std::ofstream(config_) << text; }

  void start_daemon() {
    const int log = ::open((dir_ + "/procsup.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    ASSERT_GE(log, 0);
    exec_spec spec;
    spec.path = PROCSUP_BINARY;
    spec.argv = {"procsup", "run", config_};
    spec.env = {"PATH=/usr/bin:/bin"};
    spec.setup.fds = {{log, 1}, {log, 2}};
    const auto r = launch_exec(spec);
    ::close(log);
    ASSERT_TRUE(std::holds_alternative<pid_t>(r)) << std::get<launch_error>(r).message;
    pid_ = std::get<pid_t>(r);
    ASSERT_TRUE(wait_for([&] { return ctl({{"cmd", "status"}}).value("ok", false); }))
        << "procsup did not answer on " << socket_;
  }

  void stop_daemon() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << describe_wait_status(status);
  }

  json ctl(const json& request) const {
    auto r = daemon::control_request(socket_, request, 60s);
    if (auto* j = std::get_if<json>(&r)) return *j;
    return {{"ok", false}, {"error", std::get<daemon::control_error>(r).message}, {"transport", true}};
  }

  // id -> status object
  std::map<std::string, json> status() const {
    std::map<std::string, json> out;
    const json r = ctl({{"cmd", "status"}});
    if (!r.value("ok", false)) return out;
    for (const auto& i : r["instances"]) out[i["id"].get<std::string>()] = i;
    return out;
  }
  pid_t pid_of(const std::string& id) const {
    auto s = status();
    auto it = s.find(id);
    if (it == s.end() || !it->second["pid"].is_number()) return 0;
    return it->second["pid"].get<pid_t>();
  }
  std::string state_of(const std::string& id) const {
    auto s = status();
    auto it = s.find(id);
    return it == s.end() ? "(absent)" : it->second["state"].get<std::string>();
  }
  bool running(const std::string& id) const { return state_of(id) == "running"; }

  static bool wait_for(const std::function<bool()>& pred, std::chrono::seconds limit = 40s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(30ms);
    }
    return pred();
  }

  // `procsup ARGS...` to completion, stdout and stderr captured.
  cli_result cli(const std::vector<std::string>& args) const {
    const std::string out_path = dir_ + "/cli.out", err_path = dir_ + "/cli.err";
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    exec_spec spec;
    spec.path = PROCSUP_BINARY;
    spec.argv = {"procsup"};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.env = {"PATH=/usr/bin:/bin"};
    spec.setup.fds = {{out, 1}, {err, 2}};
    const auto r = launch_exec(spec);
    ::close(out);
    ::close(err);
    cli_result res;
    if (!std::holds_alternative<pid_t>(r)) {
      ADD_FAILURE() << std::get<launch_error>(r).message;
      return res;
    }
    int status = 0;
    ::waitpid(std::get<pid_t>(r), &status, 0);
    res.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    res.out = read_file(out_path);
    res.err = read_file(err_path);
    return res;
  }

  static std::string read_file(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  std::string log_text() const { return read_file(dir_ + "/procsup.log"); }

  std::string dir_, config_, socket_;
  pid_t pid_ = 0;
};

}  // namespace procsup::testing
