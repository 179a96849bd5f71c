// The procsup program's command line (CLI11, argv only; the config is TOML through toml++):
//   procsup [--log-format text|json] [--log-level LEVEL] run [CONFIG]
//   procsup check CONFIG
//   procsup import FILE            (supervisord.conf or Procfile -> procsup.toml on stdout)
//   procsup ctl [--socket PATH | --config CONFIG] [--json] status [--json] [NAME...] | start NAME
//               | stop NAME | restart NAME | signal NAME SIG | logs NAME [-n N] [-f] | shutdown
//               | reload | send NAME JSON
//   procsup --version
// Exit codes: procsup/daemon/exit_codes.hpp; `ctl status` exits 3 when an instance it lists is
// not running (docs/cli.md). Errors are plain text on stderr; --json prints procsup's reply.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "procsup/daemon/config.hpp"
#include "procsup/daemon/containment.hpp"
#include "procsup/daemon/pid_namespace.hpp"
#include "procsup/daemon/demo.hpp"
#include "procsup/daemon/runner.hpp"
#include "procsup/daemon/control.hpp"
#include "procsup/daemon/exit_codes.hpp"
#include "procsup/daemon/import.hpp"
#include "procsup/daemon/logging.hpp"

namespace pd = procsup::daemon;

namespace {

constexpr const char* default_socket = "/run/procsup.sock";
// What `ctl status NAME` exits with when an instance is not running (as `systemctl is-active`).
constexpr int not_running = 3;

#ifndef PROCSUP_VERSION
#define PROCSUP_VERSION "unknown"
#endif

// A reply's error as plain text: procsup's message itself, not a JSON string literal.
std::string error_text(const nlohmann::json& reply) {
  if (reply.is_object() && reply.contains("error")) {
    const auto& e = reply["error"];
    return e.is_string() ? e.get<std::string>() : e.dump();
  }
  return reply.dump();
}

int run_import(const std::vector<std::string>& paths, const std::string& format_name) {
  std::vector<pd::import_file> files;
  for (const auto& path : paths) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::cerr << "procsup import: cannot read " << path << ": " << std::strerror(errno) << "\n";
      return pd::exit_codes::usage;
    }
    std::stringstream text;
    text << in.rdbuf();
    files.push_back({path, text.str()});
  }
  std::optional<pd::import_format> format;
  if (format_name == "supervisord") format = pd::import_format::supervisord;
  else if (format_name == "procfile") format = pd::import_format::procfile;
  else format = pd::guess_import_format(files.at(0).path, files.at(0).text);
  if (!format) {
    std::cerr << "procsup import: " << files[0].path
              << ": neither a supervisord config ([program:NAME] sections) nor a Procfile (NAME: command lines); "
                 "say which with --from supervisord|procfile\n";
    return pd::exit_codes::usage;
  }
  const auto r = pd::import_config(*format, files);
  for (const auto& e : r.errors) std::cerr << "procsup import: " << e << "\n";
  if (!r.errors.empty()) return pd::exit_codes::usage;
  std::cout << r.toml;
  return pd::exit_codes::clean;
}

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
    const std::string dir = pd::demo_programs_directory();
    if (dir.empty()) {
      std::cerr << "procsup run: the demo programs are neither next to procsup in " << pd::own_directory()
                << " nor in its libexec/procsup (build the procsup target, or pass a CONFIG)\n";
      return pd::exit_codes::usage;
    }
    // $PROCSUP_DEMO_SOCKET: another socket, so that a scripted demo (the install test) cannot
    // collide with one running in a terminal.
    const char* env_socket = std::getenv("PROCSUP_DEMO_SOCKET");
    const std::string socket = env_socket != nullptr && *env_socket != '\0' ? env_socket : "/tmp/procsup-demo.sock";
    result = pd::parse_config(pd::demo_config_text(dir, socket), "(built-in demo)");
    for (const auto& line : pd::demo_hints(pd::own_directory() + "/procsup", socket))
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
    if (auto outer_exit = pd::enter_pid_namespace(error)) {
      // The outer process is done: it ends at once. (Its exit handlers would fork, e.g. a leak
      // checker's tracer, into a PID namespace whose PID 1 is gone, and fail.)
      std::fflush(nullptr);
      ::_exit(*outer_exit);
    }
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
  std::vector<std::string> names;  // status NAME...
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
        std::cerr << "procsup ctl logs: " << error_text(reply) << "\n";
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

// `ctl status [NAME...]`: the table (or one JSON object per instance) of the named programs or
// instances (all without NAME); exit 0 only when every one of them is running (and ready), 3
// otherwise, also for a name procsup does not know.
int print_status(const ctl_options& o, const nlohmann::json& all) {
  nlohmann::json shown = nlohmann::json::array();
  bool unknown = false;
  if (o.names.empty()) {
    shown = all;
  } else {
    for (const auto& name : o.names) {
      bool found = false;
      for (const auto& i : all)
        if (i.value("id", "") == name || i.value("name", "") == name) {
          found = true;
          if (std::find(shown.begin(), shown.end(), i) == shown.end()) shown.push_back(i);
        }
      if (!found) {
        std::cerr << "procsup ctl status: no program or instance named \"" << name << "\"\n";
        unknown = true;
      }
    }
  }
  if (o.json) {
    for (const auto& i : shown) std::cout << i.dump() << "\n";  // one object per instance
  } else if (!shown.empty() || o.names.empty()) {
    std::cout << pd::format_status_table(shown);
  }
  const bool all_running = std::all_of(shown.begin(), shown.end(), [](const nlohmann::json& i) {
    return i.value("state", "") == "running";
  });
  return all_running && !unknown ? pd::exit_codes::clean : not_running;
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
  // start / stop / restart are answered once done: a stop may take its stop_timeout, a start
  // its ready_timeout (procsup bounds both).
  const bool waits = cmd == "start" || cmd == "stop" || cmd == "restart";
  const auto result = pd::control_request(path, request, waits ? std::chrono::minutes(10) : std::chrono::seconds(30));
  if (const auto* err = std::get_if<pd::control_error>(&result)) {
    std::cerr << "procsup ctl: " << err->message << "\n";
    return pd::exit_codes::internal_error;
  }
  auto reply = std::get<nlohmann::json>(result);
  const bool ok = reply.is_object() && reply.value("ok", false);
  if (cmd == "status" && ok) return print_status(o, reply.value("instances", nlohmann::json::array()));
  if (o.json) {
    std::cout << reply.dump() << "\n";
  } else if (!ok) {
    std::cerr << "procsup ctl " << cmd << ": " << error_text(reply) << "\n";
    // reload: the new config's errors, one "file:line:col: key: message" per line
    if (reply.is_object() && reply.contains("errors") && reply["errors"].is_array())
      for (const auto& e : reply["errors"]) std::cerr << (e.is_string() ? e.get<std::string>() : e.dump()) << "\n";
  } else if (cmd == "send") {
    if (reply.contains("reply")) std::cout << reply["reply"].dump() << "\n";
    else std::cout << reply.value("reply_text", "") << "\n";
  } else if (reply.contains("message") && reply["message"].is_string()) {
    std::cout << reply["message"].get<std::string>() << "\n";
  }
  return ok ? pd::exit_codes::clean : pd::exit_codes::internal_error;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"procsup: Erlang-style supervision of OS processes"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("procsup ") + PROCSUP_VERSION);
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

  std::vector<std::string> import_files;
  std::string import_from;
  auto* import = app.add_subcommand("import", "print a procsup.toml equivalent to a supervisord config or a Procfile");
  import->add_option("FILE", import_files, "supervisord.conf [conf.d/*.conf ...] or a Procfile")->required();
  import->add_option("--from", import_from, "the file's format (default: guessed from its name and content)")
      ->check(CLI::IsMember({"supervisord", "procfile"}));

  ctl_options ctl_opts;
  auto* ctl = app.add_subcommand("ctl", "talk to a running procsup over its control socket");
  ctl->require_subcommand(1);
  ctl->add_option("--socket", ctl_opts.socket, std::string("control socket (default: the config's, else ") + default_socket + ")");
  ctl->add_option("--config", ctl_opts.config, "read the socket path from this config");
  ctl->add_flag("--json", ctl_opts.json, "print the raw JSON reply");
  auto* status = ctl->add_subcommand("status", "list the instances (exit 0: all of them running, 3: not)");
  status->add_flag("--json", ctl_opts.json, "one JSON object per instance");
  status->add_option("NAME", ctl_opts.names, "programs or instances (name:i) to show (default: all)");
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
  if (import->parsed()) return run_import(import_files, import_from);
  if (ctl->parsed()) {
    for (auto* sub : ctl->get_subcommands()) return run_ctl(sub->get_name(), ctl_opts);
    return pd::exit_codes::usage;
  }
  if (run->parsed()) return run_run(run_config, exit_after, pid_namespace);
  return pd::exit_codes::usage;
}
