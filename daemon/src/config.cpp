// TOML -> config structs. A small checker walks every table: each key is looked up in a table of
// known keys, each value is type-checked, and every problem becomes a config_error (collected).
#include "procsup/daemon/config.hpp"
#include "procsup/daemon/sockets.hpp"

#include <fcntl.h>
#include "procsup/daemon/environment.hpp"
#include "procsup/daemon/http_server.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <toml++/toml.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <tuple>

namespace procsup::daemon {
namespace {

using std::chrono::milliseconds;

std::string_view type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

// Collects errors with file:line:col and the dotted key.
struct checker {
  std::string file;
  std::vector<config_error> errors;

  void error(const toml::source_region& where, std::string key, std::string message) {
    // A NUL from the file (in a key, or a value quoted in the message) is shown as TOML writes it.
    for (std::string* s : {&key, &message})
      for (std::size_t at; (at = s->find('\0')) != std::string::npos;) s->replace(at, 1, "\\u0000");
    errors.push_back({file, static_cast<int>(where.begin.line), static_cast<int>(where.begin.column), std::move(key),
                      std::move(message)});
  }
  void wrong_type(const toml::node& n, const std::string& key, std::string_view expected) {
    error(n.source(), key, "expected " + std::string(expected) + ", got " + std::string(type_name(n)));
  }

  // Every string of the config becomes a C string somewhere (argv, env, a path, a user name):
  // a NUL in it would cut it short there, silently.
  std::optional<std::string> string(const toml::node& n, const std::string& key) {
    if (const auto* s = n.as_string()) {
      if (s->get().find('\0') != std::string::npos) {
        error(n.source(), key, "contains a NUL character (\\u0000), which would cut it short");
        return std::nullopt;
      }
      return s->get();
    }
    wrong_type(n, key, "a string");
    return std::nullopt;
  }
  std::optional<std::int64_t> integer(const toml::node& n, const std::string& key, std::int64_t lo, std::int64_t hi) {
    const auto* i = n.as_integer();
    if (i == nullptr) {
      wrong_type(n, key, "an integer");
      return std::nullopt;
    }
    if (i->get() < lo || i->get() > hi) {
      error(n.source(), key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
                                 std::to_string(i->get()));
      return std::nullopt;
    }
    return i->get();
  }
  std::optional<bool> boolean(const toml::node& n, const std::string& key) {
    if (const auto* b = n.as_boolean()) return b->get();
    wrong_type(n, key, "a boolean");
    return std::nullopt;
  }
  std::optional<milliseconds> duration(const toml::node& n, const std::string& key) {
    const auto* s = n.as_string();
    if (s == nullptr) {
      wrong_type(n, key, "a duration string like \"10s\"");
      return std::nullopt;
    }
    auto d = parse_duration(s->get());
    if (!d) error(n.source(), key, "bad duration \"" + s->get() + "\" (use ms, s, m or h, e.g. \"500ms\", \"10s\")");
    return d;
  }
  std::optional<std::uint64_t> size(const toml::node& n, const std::string& key) {
    if (const auto* i = n.as_integer()) {
      if (i->get() >= 0) return static_cast<std::uint64_t>(i->get());
      error(n.source(), key, "size must not be negative");
      return std::nullopt;
    }
    const auto* s = n.as_string();
    if (s == nullptr) {
      wrong_type(n, key, "a size like \"10MiB\"");
      return std::nullopt;
    }
    auto v = parse_size(s->get());
    if (!v) error(n.source(), key, "bad size \"" + s->get() + "\" (use B, KiB, MiB or GiB, e.g. \"10MiB\")");
    return v;
  }
  std::optional<int> signal(const toml::node& n, const std::string& key) {
    if (const auto* i = n.as_integer()) {
      if (i->get() >= 1 && i->get() < NSIG) return static_cast<int>(i->get());
      error(n.source(), key, "unknown signal " + std::to_string(i->get()));
      return std::nullopt;
    }
    const auto* s = n.as_string();
    if (s == nullptr) {
      wrong_type(n, key, "a signal name like \"TERM\"");
      return std::nullopt;
    }
    auto sig = parse_signal(s->get());
    if (!sig) error(n.source(), key, "unknown signal \"" + s->get() + "\"");
    return sig;
  }
  template <class E>
  std::optional<E> choice(const toml::node& n, const std::string& key, std::initializer_list<std::pair<std::string_view, E>> options) {
    const auto s = string(n, key);
    if (!s) return std::nullopt;
    std::string names;
    for (const auto& [name, value] : options) {
      if (*s == name) return value;
      names += (names.empty() ? "" : " | ") + std::string(name);
    }
    error(n.source(), key, "unknown value \"" + *s + "\" (expected " + names + ")");
    return std::nullopt;
  }
  const toml::table* table(const toml::node& n, const std::string& key) {
    if (const auto* t = n.as_table()) return t;
    wrong_type(n, key, "a table");
    return nullptr;
  }
};

std::string dir_of(const std::string& file) {
  const auto slash = file.rfind('/');
  if (slash == std::string::npos) {
    char cwd[4096];
    return ::getcwd(cwd, sizeof cwd) != nullptr ? std::string(cwd) : std::string(".");
  }
  return slash == 0 ? "/" : file.substr(0, slash);
}

bool valid_program_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
  });
}

bool valid_env_name(std::string_view name) {
  return !name.empty() && name.find('=') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

void parse_supervisor(checker& c, const toml::table& t, supervisor_config& out) {
  for (auto&& [k, v] : t) {
    const std::string key = "supervisor." + std::string(k.str());
    if (k == "policy") {
      if (auto p = c.choice<group_policy>(v, key, {{"one_for_one", group_policy::one_for_one},
                                                  {"one_for_all", group_policy::one_for_all},
                                                  {"rest_for_one", group_policy::rest_for_one}}))
        out.policy = *p;
    } else if (k == "intensity") {
      if (auto i = c.integer(v, key, 0, 1'000'000)) out.intensity = static_cast<int>(*i);
    } else if (k == "period") {
      if (auto d = c.duration(v, key)) {
        if (d->count() <= 0) c.error(v.source(), key, "must be longer than 0");
        else out.period = *d;
      }
    } else if (k == "socket") {
      if (auto s = c.string(v, key)) {
        if (s->empty()) c.error(v.source(), key, "must not be empty");
        else out.socket = *s;
      }
    } else if (k == "http") {
      if (auto s = c.string(v, key)) {
        if (auto err = http_address_error(*s)) c.error(v.source(), key, *err);
        else out.http = *s;
      }
    } else if (k == "cgroups") {
      if (auto b = c.boolean(v, key)) out.cgroups = *b;
    } else if (k == "pid_namespace") {
      if (auto b = c.boolean(v, key)) out.pid_namespace = *b;
    } else if (k == "exit_when") {
      if (auto r = c.choice<exit_rule>(v, key, {{"never", exit_rule::never}, {"all_done", exit_rule::all_done}}))
        out.exit_when = *r;
    } else {
      c.error(k.source(), key, "unknown key");
    }
  }
}

// The cgroup part of `limits` (memory, memory_high, cpu = "N%", pids, io_weight); true if `k`
// was one of them.
bool parse_cgroup_limit(checker& c, std::string_view k, const toml::node& v, const std::string& key, cgroup_limits& out) {
  if (k == "memory" || k == "memory_high") {
    if (auto sz = c.size(v, key)) {
      if (*sz == 0) c.error(v.source(), key, "must be more than 0");
      else (k == "memory" ? out.memory_max : out.memory_high) = *sz;
    }
  } else if (k == "cpu" && v.is_string() && !v.as_string()->get().empty() && v.as_string()->get().back() == '%') {
    // A share of CPUs ("150%"); an integer or a duration ("60s") is RLIMIT_CPU (CPU seconds).
    const std::string text = v.as_string()->get();
    int pct = 0;
    std::size_t used = 0;
    try {
      pct = std::stoi(text, &used);
    } catch (...) {
      used = 0;
    }
    if (used == 0 || used + 1 != text.size() || text.back() != '%' || pct <= 0 || pct > 100'000)
      c.error(v.source(), key, "\"" + text + "\" is not a CPU share like \"150%\"");
    else
      out.cpu_percent = pct;
  } else if (k == "pids") {
    if (auto i = c.integer(v, key, 1, std::numeric_limits<std::int64_t>::max())) out.pids_max = static_cast<std::uint64_t>(*i);
  } else if (k == "io_weight") {
    if (auto i = c.integer(v, key, 1, 10'000)) out.io_weight = static_cast<int>(*i);
  } else {
    return false;
  }
  if (out.line == 0) {
    out.line = static_cast<int>(v.source().begin.line);
    out.column = static_cast<int>(v.source().begin.column);
  }
  return true;
}

void parse_limits(checker& c, const toml::table& t, const std::string& prefix, std::vector<rlimit_setting>& out,
                  cgroup_limits& resources) {
  enum class unit { count, size, seconds };
  static const std::map<std::string, std::pair<int, unit>, std::less<>> known = {
      {"nofile", {RLIMIT_NOFILE, unit::count}}, {"nproc", {RLIMIT_NPROC, unit::count}},
      {"as", {RLIMIT_AS, unit::size}},          {"data", {RLIMIT_DATA, unit::size}},
      {"stack", {RLIMIT_STACK, unit::size}},    {"core", {RLIMIT_CORE, unit::size}},
      {"fsize", {RLIMIT_FSIZE, unit::size}},    {"cpu", {RLIMIT_CPU, unit::seconds}},
  };
  for (auto&& [k, v] : t) {
    const std::string key = prefix + "." + std::string(k.str());
    if (parse_cgroup_limit(c, k.str(), v, key, resources)) continue;
    const auto it = known.find(k.str());
    if (it == known.end()) {
      c.error(k.source(), key,
              "unknown limit (known: as, core, cpu, data, fsize, nofile, nproc, stack; with cgroups: memory, "
              "memory_high, cpu = \"N%\", pids, io_weight)");
      continue;
    }
    std::optional<std::uint64_t> value;
    switch (it->second.second) {
      case unit::count:
        if (auto i = c.integer(v, key, 0, std::numeric_limits<std::int64_t>::max())) value = static_cast<std::uint64_t>(*i);
        break;
      case unit::size: value = c.size(v, key); break;
      case unit::seconds:
        // RLIMIT_CPU counts whole seconds; round up so "500ms" still limits.
        if (auto d = c.duration(v, key)) value = static_cast<std::uint64_t>((d->count() + 999) / 1000);
        break;
    }
    if (value) out.push_back({it->second.first, static_cast<rlim_t>(*value), static_cast<rlim_t>(*value)});
  }
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
    if (auto d = c.duration(v, key)) {
      if (d->count() <= 0) c.error(v.source(), key, "must be longer than 0");
      else p.restart_period = *d;
    }
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
  if (p.exit_code && !p.essential && p.strategy != restart_strategy::escalate)
    c.error(t["exit_code"].node()->source(), prefix + ".exit_code",
            "has no effect: procsup ends with a program's exit only when it is essential = true or has "
            "strategy = \"escalate\"");
}

// `ready`: a name ("none", "protocol", "notify") or a table with one probe: { fd = N },
// { tcp = "host:port" }, { http = "http://host:port/path" }, { exec = [argv] } (docs/services.md).
void parse_ready(checker& c, const toml::node& v, const std::string& key, program_config& p) {
  if (v.is_string()) {
    if (auto r = c.choice<readiness>(v, key, {{"none", readiness::none},
                                              {"exit", readiness::exit},
                                              {"protocol", readiness::protocol},
                                              {"notify", readiness::notify}}))
      p.ready = *r;
    return;
  }
  const auto* t = v.as_table();
  if (t == nullptr) {
    c.wrong_type(v, key, "\"none\" | \"protocol\" | \"notify\" or a table { fd | tcp | http | exec = ... }");
    return;
  }
  int forms = 0;
  for (const auto& [rk, rv] : *t) {
    const std::string rkey = key + "." + std::string(rk.str());
    if (rk == "fd") {
      ++forms;
      if (auto n = c.integer(rv, rkey, 3, 1023)) {
        p.ready = readiness::fd;
        p.ready_fd = static_cast<int>(*n);
      }
    } else if (rk == "tcp") {
      ++forms;
      if (auto s = c.string(rv, rkey)) {
        const auto colon = s->rfind(':');
        if (colon == std::string::npos || colon == 0 || colon + 1 == s->size() ||
            s->find_first_not_of("0123456789", colon + 1) != std::string::npos)
          c.error(rv.source(), rkey, "expected \"host:port\", got \"" + *s + "\"");
        p.ready = readiness::tcp;
        p.ready_address = *s;
      }
    } else if (rk == "http") {
      ++forms;
      if (auto s = c.string(rv, rkey)) {
        if (s->rfind("http://", 0) != 0 || s->size() <= 7)
          c.error(rv.source(), rkey, "expected an http:// URL, got \"" + *s + "\"");
        p.ready = readiness::http;
        p.ready_address = *s;
      }
    } else if (rk == "exec") {
      ++forms;
      const auto* a = rv.as_array();
      if (a == nullptr || a->empty()) {
        c.error(rv.source(), rkey, "expected a non-empty array of strings (argv)");
        continue;
      }
      p.ready = readiness::exec;
      for (std::size_t i = 0; i < a->size(); ++i)
        if (auto s = c.string((*a)[i], rkey + "[" + std::to_string(i) + "]")) p.ready_command.push_back(*s);
    } else {
      c.error(rk.source(), rkey, "unknown key (expected one of fd, tcp, http, exec)");
    }
  }
  if (forms != 1) c.error(v.source(), key, "needs exactly one of fd, tcp, http, exec; got " + std::to_string(forms));
}

void parse_health(checker& c, const toml::node& v, const std::string& key, program_config& p) {
  const auto* t = v.as_table();
  if (t == nullptr) {
    c.wrong_type(v, key, "a table { http | tcp | exec = ..., interval, timeout, failures, start_after }");
    return;
  }
  health_config h;
  int forms = 0;
  for (const auto& [hk, hv] : *t) {
    const std::string hkey = key + "." + std::string(hk.str());
    if (hk == "tcp" || hk == "http") {
      ++forms;
      if (auto s = c.string(hv, hkey)) {
        const bool http = hk == "http";
        if (http && (s->rfind("http://", 0) != 0 || s->size() <= 7))
          c.error(hv.source(), hkey, "expected an http:// URL, got \"" + *s + "\"");
        if (!http && (s->rfind(':') == std::string::npos || s->rfind(':') + 1 == s->size()))
          c.error(hv.source(), hkey, "expected \"host:port\", got \"" + *s + "\"");
        h.kind = http ? readiness::http : readiness::tcp;
        h.address = *s;
      }
    } else if (hk == "exec") {
      ++forms;
      const auto* a = hv.as_array();
      if (a == nullptr || a->empty()) {
        c.error(hv.source(), hkey, "expected a non-empty array of strings (argv)");
        continue;
      }
      h.kind = readiness::exec;
      for (std::size_t i = 0; i < a->size(); ++i)
        if (auto s = c.string((*a)[i], hkey + "[" + std::to_string(i) + "]")) h.command.push_back(*s);
    } else if (hk == "interval" || hk == "timeout" || hk == "start_after") {
      if (auto d = c.duration(hv, hkey)) {
        if (hk == "start_after") h.start_after = *d;
        else if (d->count() <= 0) c.error(hv.source(), hkey, "must be longer than 0");
        else (hk == "interval" ? h.interval : h.timeout) = *d;
      }
    } else if (hk == "failures") {
      if (auto n = c.integer(hv, hkey, 1, 1000)) h.failures = static_cast<int>(*n);
    } else {
      c.error(hk.source(), hkey, "unknown key (expected http, tcp, exec, interval, timeout, failures, start_after)");
    }
  }
  if (forms != 1) c.error(v.source(), key, "needs exactly one of http, tcp, exec; got " + std::to_string(forms));
  p.health = h;
}

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
      if (auto s = c.choice<restart_strategy>(v, key, {{"restart", restart_strategy::restart},
                                                       {"stop", restart_strategy::stop},
                                                       {"escalate", restart_strategy::escalate}}))
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
      if (auto d = c.duration(v, key)) {
        if (d->count() <= 0) c.error(v.source(), key, "must be longer than 0");
        else p.ready_interval = *d;
      }
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
      std::none_of(p.sockets.begin(), p.sockets.end(), [](const std::string& a) { return a.rfind("unix://", 0) == 0; }))
    c.error(owner_at->source(), prefix + ".socket_owner", "needs a unix:// address in sockets (it sets the socket file's owner)");
  if (watchdog_at != nullptr && p.watchdog.count() > 0 && p.ready != readiness::notify)
    c.error(watchdog_at->source(), prefix + ".watchdog", "needs ready = \"notify\" (the program pings with WATCHDOG=1)");
  if (!have_name) c.error(t.source(), prefix + ".name", "missing (every program needs a name)");
  if (!have_command) c.error(t.source(), prefix + ".command", "missing (the program's argv)");
  finish_lifecycle_keys(c, t, prefix, p);
}

// depends_on: known names, not itself, no cycle ("program[2].depends_on: cycle api -> worker -> api").
void check_dependencies(checker& c, const config& cfg) {
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < cfg.programs.size(); ++i) index.emplace(cfg.programs[i].name, i);
  auto fail = [&](std::size_t i, const std::string& message) {
    const auto& p = cfg.programs[i];
    c.errors.push_back({c.file, p.depends_line, p.depends_column, "program[" + std::to_string(i) + "].depends_on", message});
  };
  bool known = true;
  for (std::size_t i = 0; i < cfg.programs.size(); ++i)
    for (const auto& d : cfg.programs[i].depends_on) {
      if (d == cfg.programs[i].name) fail(i, "a program cannot depend on itself");
      else if (!index.count(d)) fail(i, "unknown program \"" + d + "\"");
      else continue;
      known = false;
    }
  if (!known) return;
  // Depth-first; reaching a program on the current path again closes a cycle (reported once, at
  // the program where it starts).
  std::vector<int> mark(cfg.programs.size(), 0);  // 0 new, 1 on the path, 2 done
  std::vector<std::size_t> path;
  std::function<bool(std::size_t)> visit = [&](std::size_t i) {
    mark[i] = 1;
    path.push_back(i);
    for (const auto& d : cfg.programs[i].depends_on) {
      const std::size_t j = index.at(d);
      if (mark[j] == 1) {
        std::string text;
        for (auto it = std::find(path.begin(), path.end(), j); it != path.end(); ++it) text += cfg.programs[*it].name + " -> ";
        fail(j, "cycle " + text + cfg.programs[j].name);
        return true;
      }
      if (mark[j] == 0 && visit(j)) return true;
    }
    mark[i] = 2;
    path.pop_back();
    return false;
  };
  for (std::size_t i = 0; i < cfg.programs.size(); ++i)
    if (mark[i] == 0 && visit(i)) return;
}

config_result parse_table(checker& c, const toml::table& root, const std::string& file) {
  config cfg;
  cfg.path = file;
  const std::string base = dir_of(file);
  std::map<std::string, int> first_line_of;  // program name -> line of its first definition
  for (auto&& [k, v] : root) {
    const std::string key(k.str());
    if (k == "supervisor") {
      if (const auto* t = c.table(v, key)) parse_supervisor(c, *t, cfg.supervisor);
    } else if (k == "program") {
      const auto* a = v.as_array();
      if (a == nullptr || !a->is_array_of_tables()) {
        c.wrong_type(v, key, "an array of tables ([[program]])");
        continue;
      }
      for (std::size_t i = 0; i < a->size(); ++i) {
        const std::string prefix = "program[" + std::to_string(i) + "]";
        program_config p;
        const toml::table& program_table = *(*a)[i].as_table();  // is_array_of_tables() checked
        parse_program(c, program_table, prefix, base, p);
        if (!p.name.empty()) {
          const auto [it, fresh] = first_line_of.emplace(p.name, p.line);
          if (!fresh) {
            c.error(program_table["name"].node()->source(), prefix + ".name",
                    "duplicate program name \"" + p.name + "\" (first defined at line " + std::to_string(it->second) + ")");
          }
        }
        cfg.programs.push_back(std::move(p));
      }
    } else {
      c.error(k.source(), key, "unknown key (known: supervisor, program)");
    }
  }
  if (c.errors.empty()) check_dependencies(c, cfg);
  if (!c.errors.empty()) {
    // Tables iterate in key order; report in file order.
    std::stable_sort(c.errors.begin(), c.errors.end(),
                     [](const config_error& a, const config_error& b) { return std::tie(a.line, a.column) < std::tie(b.line, b.column); });
    return std::move(c.errors);
  }
  return cfg;
}

}  // namespace

std::string config_error::to_string() const {
  std::string out = file + ":";
  if (line > 0) out += std::to_string(line) + ":" + std::to_string(column) + ":";
  out += " ";
  if (!key.empty()) out += key + ": ";
  return out + message;
}

config_result parse_config(std::string_view text, const std::string& file) {
  checker c;
  c.file = file;
  toml::table root;
  try {
    root = toml::parse(text, std::string_view{file});
  } catch (const toml::parse_error& e) {
    c.error(e.source(), "", std::string(e.description()));
    return std::move(c.errors);
  }
  return parse_table(c, root, file);
}

config_result load_config(const std::string& file) {
  auto fail = [&file](const std::string& why) {
    return std::vector<config_error>{{file, 0, 0, "", "cannot read config: " + why}};
  };
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below anyway.
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return fail(std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return fail(std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    // A directory reads as empty (an empty config: ok, nothing to run), a FIFO or a device as
    // whatever comes: neither is a config file.
    ::close(fd);
    const char* what = S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    return fail(std::string("it is ") + what + ", not a regular file");
  }
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      return fail(std::strerror(e));
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return parse_config(text, file);
}

std::vector<std::string> config_warnings(const config& cfg) {
  std::vector<std::string> out;
  const char* own_path = std::getenv("PATH");
  for (std::size_t i = 0; i < cfg.programs.size(); ++i) {
    const auto& p = cfg.programs[i];
    if (p.command.empty()) continue;
    std::string path_env = own_path != nullptr ? own_path : "";
    for (const auto& [name, value] : p.env)
      if (name == "PATH") path_env = value;
    int error = 0;
    if (procsup::resolve_executable(p.command.front(), path_env, error).empty())
      out.push_back(cfg.path + ":" + std::to_string(p.line) + ": program[" + std::to_string(i) + "].command: " +
                    p.command.front() + ": " + std::strerror(error) +
                    " (not an error: at run time it is reported and handled by strategy \"" +
                    std::string(to_string(p.strategy)) + "\")");
  }
  return out;
}

std::optional<milliseconds> parse_duration(std::string_view text) {
  std::uint64_t n = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  const auto [rest, ec] = std::from_chars(begin, end, n);
  if (ec != std::errc{} || rest == begin) return std::nullopt;
  const std::string_view unit(rest, static_cast<std::size_t>(end - rest));
  std::uint64_t scale = 0;
  if (unit == "ms") scale = 1;
  else if (unit == "s") scale = 1000;
  else if (unit == "m") scale = 60'000;
  else if (unit == "h") scale = 3'600'000;
  else return std::nullopt;
  constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<milliseconds::rep>::max());
  if (n > max / scale) return std::nullopt;
  return milliseconds(static_cast<milliseconds::rep>(n * scale));
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::uint64_t n = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  const auto [rest, ec] = std::from_chars(begin, end, n);
  if (ec != std::errc{} || rest == begin) return std::nullopt;
  const std::string_view unit(rest, static_cast<std::size_t>(end - rest));
  unsigned shift = 0;
  if (unit.empty() || unit == "B") shift = 0;
  else if (unit == "KiB") shift = 10;
  else if (unit == "MiB") shift = 20;
  else if (unit == "GiB") shift = 30;
  else return std::nullopt;
  if (n > (std::numeric_limits<std::uint64_t>::max() >> shift)) return std::nullopt;
  return n << shift;
}

std::optional<int> parse_signal(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (text.front() >= '0' && text.front() <= '9') {
    int n = 0;
    const auto [rest, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || rest != text.data() + text.size() || n < 1 || n >= NSIG) return std::nullopt;
    return n;
  }
  if (text.substr(0, 3) == "SIG") text.remove_prefix(3);
  for (int sig = 1; sig < NSIG; ++sig) {
    const char* abbrev = ::sigabbrev_np(sig);
    if (abbrev != nullptr && text == abbrev) return sig;
  }
  return std::nullopt;
}

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return std::string("SIG") + (abbrev != nullptr ? abbrev : std::to_string(sig));
}

std::string_view to_string(group_policy p) {
  switch (p) {
    case group_policy::one_for_one: return "one_for_one";
    case group_policy::one_for_all: return "one_for_all";
    case group_policy::rest_for_one: return "rest_for_one";
  }
  return "?";
}

std::string_view to_string(restart_strategy s) {
  switch (s) {
    case restart_strategy::restart: return "restart";
    case restart_strategy::stop: return "stop";
    case restart_strategy::escalate: return "escalate";
  }
  return "?";
}

std::string_view to_string(exit_rule r) {
  switch (r) {
    case exit_rule::never: return "never";
    case exit_rule::all_done: return "all_done";
  }
  return "?";
}

std::string_view to_string(readiness r) {
  switch (r) {
    case readiness::none: return "none";
    case readiness::exit: return "exit";
    case readiness::protocol: return "protocol";
    case readiness::notify: return "notify";
    case readiness::fd: return "fd";
    case readiness::tcp: return "tcp";
    case readiness::http: return "http";
    case readiness::exec: return "exec";
  }
  return "?";
}

}  // namespace procsup::daemon
