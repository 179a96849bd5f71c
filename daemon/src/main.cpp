// The procsup program's command line (CLI11, argv only; the config is TOML through toml++):
//   procsup [--log-format text|json] [--log-level LEVEL] run [CONFIG]
//   procsup check CONFIG
//   procsup ctl [--socket PATH | --config CONFIG] [--json] status [--json] | start NAME | stop NAME
//               | restart NAME | signal NAME SIG | logs NAME [-n N] [-f] | shutdown | reload | send NAME JSON
// Exit codes: procsup/daemon/exit_codes.hpp.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <string>

#include <unistd.h>

#include <cstdlib>

#include "procsup/daemon/config.hpp"
#include "procsup/daemon/containment.hpp"
#include "procsup/daemon/pid_namespace.hpp"
#include "procsup/daemon/demo.hpp"
#include "procsup/daemon/runner.hpp"
#include "procsup/daemon/control.hpp"
#include "procsup/daemon/exit_codes.hpp"
#include "procsup/daemon/logging.hpp"

namespace pd = procsup::daemon;

namespace {

constexpr const char* default_socket = "/run/procsup.sock";

int run_check(const std::string& file) {
  const auto result = pd::load_config(file);
  if (const auto* errors = std::get_if<std::vector<pd::config_error>>(&result)) {
    for (const auto& e : *errors) std::cerr << e.to_string() << "\n";
    std::cerr << file << ": " << errors->size() << (errors->size() == 1 ? " error" : " errors") << "\n";
    return pd::exit_codes::usage;
  }
  const auto& cfg = std::get<pd::config>(result);
  if (auto errors = pd::containment_errors(cfg); !errors.empty()) {
    for (const auto& e : errors) std::cerr << e.to_string() << "\n";
    std::cerr << file << ": " << errors.size() << (errors.size() == 1 ? " error" : " errors") << "\n";
    return pd::exit_codes::usage;
  }
  for (const auto& w : pd::config_warnings(cfg)) std::cerr << "warning: " << w << "\n";
  int instances = 0;
  for (const auto& p : cfg.programs) instances += p.instances;
  std::cout << file << ": ok (" << cfg.programs.size() << " programs, " << instances << " instances)\n";
  return pd::exit_codes::clean;
}

int run_run(const std::string& file, std::string exit_after, bool pid_namespace) {
  pd::config_result result;
  if (file.empty()) {
    const std::string dir = pd::own_directory();
    if (::access((dir + "/procsup-demo-decoder").c_str(), X_OK) != 0) {
      std::cerr << "procsup run: the demo programs are not next to procsup in " << dir
                << " (build the procsup target, or pass a CONFIG)\n";
      return pd::exit_codes::usage;
    }
    result = pd::parse_config(pd::demo_config_text(dir, "/tmp/procsup-demo.sock"), "(built-in demo)");
    for (const auto& line : pd::demo_hints(dir + "/procsup", "/tmp/procsup-demo.sock"))
      pd::log_event(spdlog::level::info, line);
  } else {
    result = pd::load_config(file);
  }
  if (const auto* errors = std::get_if<std::vector<pd::config_error>>(&result)) {
    for (const auto& e : *errors) std::cerr << e.to_string() << "\n";
    std::cerr << "procsup run: invalid config, nothing started\n";
    return pd::exit_codes::usage;
  }
  pd::run_options opt;
  if (exit_after.empty())
    if (const char* env = std::getenv("PROCSUP_EXIT_AFTER")) exit_after = env;
  if (!exit_after.empty()) {
    opt.exit_after = pd::parse_duration(exit_after);
    if (!opt.exit_after) {
      std::cerr << "procsup run: --exit-after \"" << exit_after << "\" is not a duration (e.g. 30s)\n";
      return pd::exit_codes::usage;
    }
  }
  auto cfg = std::get<pd::config>(std::move(result));
  if (file.empty()) cfg.path.clear();
  if (auto errors = pd::containment_errors(cfg); !errors.empty()) {
    for (const auto& e : errors) std::cerr << e.to_string() << "\n";
    std::cerr << "procsup run: invalid config, nothing started\n";
    return pd::exit_codes::usage;
  }
  if (pid_namespace || cfg.supervisor.pid_namespace) {
    std::string error;
    if (auto outer_exit = pd::enter_pid_namespace(error)) return *outer_exit;  // the outer process
    if (!error.empty()) {
      std::cerr << "procsup run: cannot start in a new PID namespace: " << error << "\n";
      return pd::exit_codes::usage;
    }
  }
  return pd::run(cfg, opt);
}

struct ctl_options {
  std::string socket;
  std::string config;
  bool json = false;
  std::string name;
  std::string signal;
  int lines = 50;       // logs -n
  bool follow = false;  // logs -f
  std::string body;  // send: the request, JSON text
};

std::string socket_path(const ctl_options& o) {
  if (!o.socket.empty()) return o.socket;
  if (!o.config.empty()) {
    const auto result = pd::load_config(o.config);
    if (const auto* cfg = std::get_if<pd::config>(&result)) return cfg->supervisor.socket;
  }
  return default_socket;
}

// `ctl logs NAME [-n N] [-f]`: the last N lines, then (-f) every new one until Ctrl-C. Lines are
// prefixed with "[instance] " when NAME has several instances; --json prints the protocol's
// objects, one per line.
int run_ctl_logs(const ctl_options& o) {
  const nlohmann::json request = {{"cmd", "logs"}, {"name", o.name}, {"lines", o.lines}, {"follow", o.follow}};
  bool prefix = false;
  bool first = true;
  int rc = pd::exit_codes::clean;
  auto print = [&](const nlohmann::json& line) {
    if (o.json) {
      std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      if (prefix) std::cout << "[" << line.value("id", "") << "] ";
      std::cout << line.value("line", "") << "\n";
    }
  };
  const auto err = pd::control_stream(socket_path(o), request, [&](const nlohmann::json& reply) {
    if (first) {
      first = false;
      if (!reply.is_object() || !reply.value("ok", false)) {
        std::cerr << "procsup ctl logs: "
                  << (reply.is_object() && reply.contains("error") ? reply["error"].dump() : reply.dump()) << "\n";
        rc = pd::exit_codes::internal_error;
        return false;
      }
      prefix = reply.value("instances", nlohmann::json::array()).size() > 1;
      for (const auto& line : reply.value("lines", nlohmann::json::array())) print(line);
      std::cout.flush();
      return o.follow;
    }
    print(reply);
    std::cout.flush();  // -f: each line as it comes
    return true;
  });
  if (err) {
    std::cerr << "procsup ctl: " << err->message << "\n";
    return pd::exit_codes::internal_error;
  }
  if (o.follow && rc == pd::exit_codes::clean) {
    std::cerr << "procsup ctl logs: procsup closed the connection\n";
    return pd::exit_codes::internal_error;
  }
  return rc;
}

int run_ctl(const std::string& cmd, const ctl_options& o) {
  if (cmd == "logs") return run_ctl_logs(o);
  nlohmann::json request = {{"cmd", cmd}};
  if (!o.name.empty()) request["name"] = o.name;
  if (cmd == "signal") {
    const auto sig = pd::parse_signal(o.signal);
    if (!sig) {
      std::cerr << "procsup ctl signal: unknown signal \"" << o.signal << "\"\n";
      return pd::exit_codes::usage;
    }
    request["signal"] = pd::signal_name(*sig).substr(3);  // "HUP"
  }
  if (cmd == "send") {
    request["body"] = nlohmann::json::parse(o.body, nullptr, false);
    if (request["body"].is_discarded()) {
      std::cerr << "procsup ctl send: the request is not valid JSON: " << o.body << "\n";
      return pd::exit_codes::usage;
    }
  }
  const std::string path = socket_path(o);
  const auto result = pd::control_request(path, request);
  if (const auto* err = std::get_if<pd::control_error>(&result)) {
    std::cerr << "procsup ctl: " << err->message << "\n";
    return pd::exit_codes::internal_error;
  }
  const auto& reply = std::get<nlohmann::json>(result);
  const bool ok = reply.is_object() && reply.value("ok", false);
  if (o.json) {
    if (cmd == "status" && ok && reply.contains("instances") && reply["instances"].is_array()) {
      for (const auto& i : reply["instances"]) std::cout << i.dump() << "\n";  // one object per instance
    } else {
      std::cout << reply.dump() << "\n";
    }
  } else if (!ok) {
    std::cerr << "procsup ctl " << cmd << ": "
              << (reply.is_object() && reply.contains("error") ? reply["error"].dump() : reply.dump()) << "\n";
    // reload: the new config's errors, one "file:line:col: key: message" per line
    if (reply.is_object() && reply.contains("errors") && reply["errors"].is_array())
      for (const auto& e : reply["errors"]) std::cerr << (e.is_string() ? e.get<std::string>() : e.dump()) << "\n";
  } else if (cmd == "send") {
    if (reply.contains("reply")) std::cout << reply["reply"].dump() << "\n";
    else std::cout << reply.value("reply_text", "") << "\n";
  } else if (cmd == "status") {
    std::cout << pd::format_status_table(reply.value("instances", nlohmann::json::array()));
  } else if (reply.contains("message") && reply["message"].is_string()) {
    std::cout << reply["message"].get<std::string>() << "\n";
  }
  return ok ? pd::exit_codes::clean : pd::exit_codes::internal_error;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"procsup: Erlang-style supervision of OS processes"};
  app.require_subcommand(1);
  std::string log_format = "text";
  std::string log_level = "info";
  app.add_option("--log-format", log_format, "text (default) or json (one object per line)")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

  std::string run_config;
  std::string exit_after;
  auto* run = app.add_subcommand("run", "supervise the programs of CONFIG (default: the built-in demo)");
  run->add_option("CONFIG", run_config, "TOML config file");
  run->add_option("--exit-after", exit_after,
                  "stop by itself after this long, e.g. 30s (scripted runs; also $PROCSUP_EXIT_AFTER)");

  std::string check_config;
  bool pid_namespace = false;
  run->add_flag("--pid-namespace", pid_namespace,
                "run as PID 1 of a new PID namespace: nothing survives a SIGKILL of procsup (root)");
  auto* check = app.add_subcommand("check", "validate CONFIG and exit (0 ok, 2 invalid)");
  check->add_option("CONFIG", check_config, "TOML config file")->required();

  ctl_options ctl_opts;
  auto* ctl = app.add_subcommand("ctl", "talk to a running procsup over its control socket");
  ctl->require_subcommand(1);
  ctl->add_option("--socket", ctl_opts.socket, std::string("control socket (default: the config's, else ") + default_socket + ")");
  ctl->add_option("--config", ctl_opts.config, "read the socket path from this config");
  ctl->add_flag("--json", ctl_opts.json, "print the raw JSON reply");
  auto* status = ctl->add_subcommand("status", "list every instance");
  status->add_flag("--json", ctl_opts.json, "one JSON object per instance");
  for (const char* cmd : {"start", "stop", "restart"})
    ctl->add_subcommand(cmd, std::string(cmd) + " a program")->add_option("NAME", ctl_opts.name, "program name")->required();
  auto* signal = ctl->add_subcommand("signal", "send a signal to a program's process groups");
  signal->add_option("NAME", ctl_opts.name, "program name")->required();
  signal->add_option("SIG", ctl_opts.signal, "signal, e.g. HUP")->required();
  auto* logs = ctl->add_subcommand("logs", "print a program's recent output (-f: and follow it)");
  logs->add_option("NAME", ctl_opts.name, "program name, or name:instance")->required();
  logs->add_option("-n,--lines", ctl_opts.lines, "how many of the last lines (default 50)")->check(CLI::NonNegativeNumber);
  logs->add_flag("-f,--follow", ctl_opts.follow, "keep printing new lines until Ctrl-C");
  logs->add_flag("--json", ctl_opts.json, "one JSON object per line");
  ctl->add_subcommand("shutdown", "stop every program and exit");
  ctl->add_subcommand("reload", "re-read the config file and apply the difference (as SIGHUP)");
  auto* send = ctl->add_subcommand("send", "send one JSON request to a protocol worker and print its reply");
  send->add_option("NAME", ctl_opts.name, "program name (its first running instance) or NAME:INDEX")->required();
  send->add_option("JSON", ctl_opts.body, "the request, e.g. '{\"hex\":\"68656c6c6f\"}'")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? pd::exit_codes::clean : pd::exit_codes::usage;
  }

  pd::install_logger(*pd::parse_log_format(log_format), spdlog::level::from_str(log_level));

  if (check->parsed()) return run_check(check_config);
  if (ctl->parsed()) {
    for (auto* sub : ctl->get_subcommands()) return run_ctl(sub->get_name(), ctl_opts);
    return pd::exit_codes::usage;
  }
  if (run->parsed()) return run_run(run_config, exit_after, pid_namespace);
  return pd::exit_codes::usage;
}
