// One [[program]] table (config_checker.hpp): every key of a program, its user, its output
// targets, and issue 20's keys (failure budget, container exit, environment).
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "config_checker.hpp"
#include "procsup/daemon/environment.hpp"
#include "procsup/daemon/sockets.hpp"

namespace procsup::daemon::config_detail {
namespace {

bool valid_program_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
  });
}

bool valid_env_name(std::string_view name) {
  return !name.empty() && name.find('=') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

std::optional<output_target> parse_output(checker& c, const toml::node& v, const std::string& key, const std::string& base) {
  const auto s = c.string(v, key);
  if (!s) return std::nullopt;
  if (*s == "log") return output_target{output_target::kind::log, {}};
  if (*s == "inherit") return output_target{output_target::kind::inherit, {}};
  if (s->empty()) {
    c.error(v.source(), key, "expected \"log\", \"inherit\" or a file path");
    return std::nullopt;
  }
  output_target out{output_target::kind::file, s->front() == '/' ? *s : base + "/" + *s};
  // The file is created at run time, its directory is not: say so now, not at the first launch.
  const std::string dir = out.path.substr(0, std::max<std::size_t>(out.path.rfind('/'), 1));
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    c.error(v.source(), key, "directory " + dir + " of " + out.path + ": " + std::strerror(errno));
  else if (!S_ISDIR(st.st_mode))
    c.error(v.source(), key, dir + " (the directory of " + out.path + ") is not a directory");
  return out;
}

void resolve_user(checker& c, const toml::node& v, const std::string& key, program_config& p) {
  const auto name = c.string(v, key);
  if (!name) return;
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  const int rc = ::getpwnam_r(name->c_str(), &pw, buf.data(), buf.size(), &found);
  if (found == nullptr) {
    c.error(v.source(), key, "unknown user \"" + *name + "\"" + (rc != 0 ? std::string(": ") + std::strerror(rc) : ""));
    return;
  }
  p.user = *name;
  p.uid = pw.pw_uid;
  p.gid = pw.pw_gid;
  p.home = pw.pw_dir != nullptr ? pw.pw_dir : "/";
  p.shell = pw.pw_shell != nullptr && *pw.pw_shell != '\0' ? pw.pw_shell : "/bin/sh";
  int n = 64;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  if (::getgrouplist(name->c_str(), pw.pw_gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<std::size_t>(n));
    ::getgrouplist(name->c_str(), pw.pw_gid, groups.data(), &n);
  }
  groups.resize(static_cast<std::size_t>(std::max(n, 0)));
  p.groups = std::move(groups);
}

// ---- issue 20: failure budget, container exit, environment (max_restarts, restart_period,
// essential, exit_code, env_file, autostart; ${VAR} expansion of command, env and cwd).

bool parse_lifecycle_key(checker& c, std::string_view k, const toml::node& v, const std::string& key,
                         const std::string& base, program_config& p) {
  if (k == "max_restarts") {
    if (auto n = c.integer(v, key, 0, 1'000'000)) p.max_restarts = static_cast<int>(*n);
  } else if (k == "restart_period") {
    if (auto d = c.positive_duration(v, key)) p.restart_period = *d;
  } else if (k == "essential") {
    if (auto b = c.boolean(v, key)) p.essential = *b;
  } else if (k == "exit_code") {
    if (const auto* s = v.as_string()) {
      if (s->get() != "propagate")
        c.error(v.source(), key, "expected \"propagate\" or an exit code 0-255, got \"" + s->get() + "\"");
    } else if (v.is_integer()) {
      if (auto n = c.integer(v, key, 0, 255)) p.exit_code = static_cast<int>(*n);
    } else {
      c.wrong_type(v, key, "\"propagate\" or an exit code 0-255");
    }
  } else if (k == "env_file") {
    const auto* a = v.as_array();
    if (a == nullptr) {
      c.wrong_type(v, key, "an array of paths");
      return true;
    }
    for (std::size_t i = 0; i < a->size(); ++i) {
      const std::string ikey = key + "[" + std::to_string(i) + "]";
      auto path = c.string((*a)[i], ikey);
      if (!path) continue;
      // systemd's "-" prefix: a file that does not exist is skipped.
      const bool optional = !path->empty() && path->front() == '-';
      std::string file = optional ? path->substr(1) : *path;
      if (file.empty()) {
        c.error((*a)[i].source(), ikey, "empty path");
        continue;
      }
      if (file.front() != '/') file = base + "/" + file;
      p.env_files.push_back((optional ? "-" : "") + file);
      if (optional && ::access(file.c_str(), F_OK) != 0 && errno == ENOENT) continue;
      auto loaded = load_env_file(file);
      if (auto* errors = std::get_if<std::vector<config_error>>(&loaded)) {
        // The env file's own file:line, after where the config names it.
        for (const auto& e : *errors)
          c.error((*a)[i].source(), ikey, e.line > 0 ? e.file + ":" + std::to_string(e.line) + ": " + e.message
                                                     : e.file + ": " + e.message);
        continue;
      }
      for (auto& entry : std::get<env_entries>(loaded)) p.file_env.push_back(std::move(entry));
    }
  } else if (k == "autostart") {
    if (auto b = c.boolean(v, key)) p.autostart = *b;
  } else {
    return false;
  }
  return true;
}

// After the whole [[program]] table: ${VAR} expansion (from procsup's environment, so `check`
// reports an unset variable) and the checks that need several keys.
void finish_lifecycle_keys(checker& c, const toml::table& t, const std::string& prefix, program_config& p) {
  const auto lookup = process_environment();
  auto expand = [&](std::string& value, const toml::node* where, const std::string& key) {
    std::string error;
    if (auto out = expand_variables(value, lookup, error)) value = std::move(*out);
    else c.error(where != nullptr ? where->source() : t.source(), key, error);
  };
  if (const auto* a = t["command"].as_array(); a != nullptr && a->size() == p.command.size())
    for (std::size_t i = 0; i < p.command.size(); ++i)
      expand(p.command[i], a->get(i), prefix + ".command[" + std::to_string(i) + "]");
  if (const auto* e = t["env"].as_table())
    for (auto& [name, value] : p.env) expand(value, e->get(name), prefix + ".env." + name);
  if (const auto* cwd = t["cwd"].node(); cwd != nullptr && cwd->is_string()) expand(p.cwd, cwd, prefix + ".cwd");
  if (p.exit_code && !p.essential && p.strategy != strategy::escalate)
    c.error(t["exit_code"].node()->source(), prefix + ".exit_code",
            "has no effect: procsup ends with a program's exit only when it is essential = true or has "
            "strategy = \"escalate\"");
}

}  // namespace

void parse_program(checker& c, const toml::table& t, const std::string& prefix, const std::string& base, program_config& p) {
  p.line = static_cast<int>(t.source().begin.line);
  bool have_name = false;
  bool have_command = false;
  const toml::node* watchdog_at = nullptr;  // for its error
  const toml::node* sockets_at = nullptr;
  const toml::node* owner_at = nullptr;  // socket_owner, for its error
  for (auto&& [k, v] : t) {
    const std::string key = prefix + "." + std::string(k.str());
    if (k == "name") {
      if (auto s = c.string(v, key)) {
        if (!valid_program_name(*s))
          c.error(v.source(), key, "\"" + *s + "\" is not a valid name (1-64 of A-Z a-z 0-9 _ - .)");
        p.name = *s;
        have_name = true;
      }
    } else if (k == "command") {
      const auto* a = v.as_array();
      if (a == nullptr) {
        c.wrong_type(v, key, "an array of strings (argv)");
        have_command = true;  // reported already
        continue;
      }
      have_command = true;
      if (a->empty()) c.error(v.source(), key, "empty command");
      for (std::size_t i = 0; i < a->size(); ++i) {
        if (auto s = c.string((*a)[i], key + "[" + std::to_string(i) + "]")) p.command.push_back(*s);
      }
      if (!p.command.empty() && p.command.front().empty()) c.error(v.source(), key, "command[0] is empty");
    } else if (k == "strategy") {
      if (auto s = c.choice<strategy>(v, key, {{"restart", strategy::restart},
                                               {"stop", strategy::stop},
                                               {"escalate", strategy::escalate}}))
        p.strategy = *s;
    } else if (k == "restart_on_exit") {
      if (auto b = c.boolean(v, key)) p.restart_on_exit = *b;
    } else if (k == "success_codes") {
      const auto* a = v.as_array();
      if (a == nullptr) {
        c.wrong_type(v, key, "an array of exit codes");
        continue;
      }
      p.success_codes.clear();
      for (std::size_t i = 0; i < a->size(); ++i)
        if (auto code = c.integer((*a)[i], key + "[" + std::to_string(i) + "]", 0, 255))
          p.success_codes.push_back(static_cast<int>(*code));
    } else if (k == "instances") {
      const auto* i = v.as_integer();
      if (i != nullptr && i->get() < 1) c.error(v.source(), key, "instances must be at least 1");
      else if (auto n = c.integer(v, key, 1, 100'000)) p.instances = static_cast<int>(*n);
    } else if (k == "env") {
      if (const auto* e = c.table(v, key)) {
        for (auto&& [ek, ev] : *e) {
          const std::string ekey = key + "." + std::string(ek.str());
          if (ek.str().find('\0') != std::string_view::npos)
            c.error(ek.source(), ekey, "contains a NUL character (\\u0000): not a valid environment variable name");
          else if (!valid_env_name(ek.str())) c.error(ek.source(), ekey, "not a valid environment variable name");
          else if (auto s = c.string(ev, ekey)) p.env.emplace_back(std::string(ek.str()), *s);
        }
      }
    } else if (k == "cwd") {
      if (auto s = c.string(v, key)) p.cwd = *s;
    } else if (k == "user") {
      resolve_user(c, v, key, p);
    } else if (k == "stop_signal") {
      if (auto s = c.signal(v, key)) p.stop_signal = *s;
    } else if (k == "stop_timeout") {
      if (auto d = c.duration(v, key)) p.stop_timeout = *d;
    } else if (k == "backoff") {
      if (const auto* b = c.table(v, key)) {
        for (auto&& [bk, bv] : *b) {
          const std::string bkey = key + "." + std::string(bk.str());
          if (bk == "initial") {
            if (auto d = c.duration(bv, bkey)) p.backoff.initial = *d;
          } else if (bk == "max") {
            if (auto d = c.duration(bv, bkey)) p.backoff.max = *d;
          } else {
            c.error(bk.source(), bkey, "unknown key (known: initial, max)");
          }
        }
        if (p.backoff.max < p.backoff.initial) c.error(v.source(), key, "max must not be below initial");
      }
    } else if (k == "limits") {
      if (const auto* l = c.table(v, key)) parse_limits(c, *l, key, p.limits, p.resources);
    } else if (k == "stdout") {
      if (auto o = parse_output(c, v, key, base)) p.stdout_target = *o;
    } else if (k == "stderr") {
      if (auto o = parse_output(c, v, key, base)) p.stderr_target = *o;
    } else if (k == "log_max_size") {
      if (auto s = c.size(v, key)) {
        if (*s == 0) c.error(v.source(), key, "must be larger than 0");
        else p.log_max_size = *s;
      }
    } else if (k == "log_keep") {
      if (auto n = c.integer(v, key, 0, 1000)) p.log_keep = static_cast<int>(*n);
    } else if (k == "ready") {
      parse_ready(c, v, key, p);
    } else if (k == "depends_on") {
      p.depends_line = static_cast<int>(v.source().begin.line);
      p.depends_column = static_cast<int>(v.source().begin.column);
      const auto* a = v.as_array();
      if (a == nullptr) {
        c.wrong_type(v, key, "an array of program names");
        continue;
      }
      for (std::size_t i = 0; i < a->size(); ++i)
        if (auto s = c.string((*a)[i], key + "[" + std::to_string(i) + "]")) p.depends_on.push_back(*s);
    } else if (k == "sockets") {
      const auto* a = v.as_array();
      if (a == nullptr) {
        c.wrong_type(v, key, "an array of addresses (\"tcp://127.0.0.1:8080\", \"unix:///run/x.sock\")");
        continue;
      }
      sockets_at = &v;
      for (std::size_t i = 0; i < a->size(); ++i) {
        const std::string skey = key + "[" + std::to_string(i) + "]";
        if (auto s = c.string((*a)[i], skey)) {
          if (auto err = check_socket_address(*s); !err.empty()) c.error((*a)[i].source(), skey, "\"" + *s + "\": " + err);
          else p.sockets.push_back(*s);
        }
      }
    } else if (k == "socket_mode") {
      if (auto s = c.string(v, key)) {
        char* end = nullptr;
        const unsigned long m = std::strtoul(s->c_str(), &end, 8);
        if (s->empty() || *end != '\0' || m > 07777) c.error(v.source(), key, "expected an octal mode like \"0660\", got \"" + *s + "\"");
        else p.socket_mode = static_cast<unsigned>(m);
      }
    } else if (k == "socket_owner") {
      owner_at = &v;
      if (auto s = c.string(v, key)) {
        auto r = parse_socket_owner(*s);
        if (auto* err = std::get_if<std::string>(&r)) c.error(v.source(), key, "\"" + *s + "\": " + *err);
        else p.socket_owner = std::get<socket_file_owner>(r);
      }
    } else if (k == "on_dependency_restart") {
      if (auto r = c.choice<bool>(v, key, {{"ignore", false}, {"restart", true}})) p.restart_with_dependency = *r;
    } else if (k == "health") {
      parse_health(c, v, key, p);
    } else if (k == "ready_interval") {
      if (auto d = c.positive_duration(v, key)) p.ready_interval = *d;
    } else if (k == "watchdog") {
      if (auto d = c.duration(v, key)) p.watchdog = *d;
      watchdog_at = &v;
    } else if (k == "ready_timeout") {
      if (auto d = c.duration(v, key)) p.ready_timeout = *d;
    } else if (k == "hang_timeout") {
      if (auto d = c.duration(v, key)) p.hang_timeout = *d;
    } else if (parse_lifecycle_key(c, k.str(), v, key, base, p)) {
      // issue 20's keys (below)
    } else {
      c.error(k.source(), key, "unknown key");
    }
  }
  if (sockets_at != nullptr && p.ready == readiness::protocol)
    c.error(sockets_at->source(), prefix + ".sockets", "cannot be used with ready = \"protocol\" (its channel is fds 3 and 4)");
  if (sockets_at != nullptr && p.ready == readiness::fd && p.ready_fd < 3 + static_cast<int>(p.sockets.size()))
    c.error(sockets_at->source(), prefix + ".sockets",
            "fds 3-" + std::to_string(2 + p.sockets.size()) + " are the sockets: ready = { fd = " + std::to_string(p.ready_fd) +
                " } must be above them");
  if (owner_at != nullptr &&
      std::none_of(p.sockets.begin(), p.sockets.end(), [](const std::string& a) { return !unix_socket_path(a).empty(); }))
    c.error(owner_at->source(), prefix + ".socket_owner", "needs a unix:// address in sockets (it sets the socket file's owner)");
  if (watchdog_at != nullptr && p.watchdog.count() > 0 && p.ready != readiness::notify)
    c.error(watchdog_at->source(), prefix + ".watchdog", "needs ready = \"notify\" (the program pings with WATCHDOG=1)");
  if (!have_name) c.error(t.source(), prefix + ".name", "missing (every program needs a name)");
  if (!have_command) c.error(t.source(), prefix + ".command", "missing (the program's argv)");
  finish_lifecycle_keys(c, t, prefix, p);
}

}  // namespace procsup::daemon::config_detail
