// TOML -> config structs. A small checker walks every table: each key is looked up in a table of
// known keys, each value is type-checked, and every problem becomes a config_error (collected).
#include "procsup/daemon/config.hpp"
#include "procsup/daemon/http_server.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <toml++/toml.h>

#include <algorithm>
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
    errors.push_back({file, static_cast<int>(where.begin.line), static_cast<int>(where.begin.column), std::move(key),
                      std::move(message)});
  }
  void wrong_type(const toml::node& n, const std::string& key, std::string_view expected) {
    error(n.source(), key, "expected " + std::string(expected) + ", got " + std::string(type_name(n)));
  }

  std::optional<std::string> string(const toml::node& n, const std::string& key) {
    if (const auto* s = n.as_string()) return s->get();
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
  return output_target{output_target::kind::file, s->front() == '/' ? *s : base + "/" + *s};
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
  int n = 64;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  if (::getgrouplist(name->c_str(), pw.pw_gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<std::size_t>(n));
    ::getgrouplist(name->c_str(), pw.pw_gid, groups.data(), &n);
  }
  groups.resize(static_cast<std::size_t>(std::max(n, 0)));
  p.groups = std::move(groups);
}

void parse_program(checker& c, const toml::table& t, const std::string& prefix, const std::string& base, program_config& p) {
  p.line = static_cast<int>(t.source().begin.line);
  bool have_name = false;
  bool have_command = false;
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
          if (!valid_env_name(ek.str())) c.error(ek.source(), ekey, "not a valid environment variable name");
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
      if (auto r = c.choice<readiness>(v, key, {{"none", readiness::none},
                                                {"exit", readiness::exit},
                                                {"protocol", readiness::protocol}}))
        p.ready = *r;
    } else if (k == "ready_timeout") {
      if (auto d = c.duration(v, key)) p.ready_timeout = *d;
    } else if (k == "hang_timeout") {
      if (auto d = c.duration(v, key)) p.hang_timeout = *d;
    } else {
      c.error(k.source(), key, "unknown key");
    }
  }
  if (!have_name) c.error(t.source(), prefix + ".name", "missing (every program needs a name)");
  if (!have_command) c.error(t.source(), prefix + ".command", "missing (the program's argv)");
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
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    const int e = errno;
    return std::vector<config_error>{{file, 0, 0, "", std::string("cannot read config: ") + std::strerror(e)}};
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), file);
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

std::string_view to_string(readiness r) {
  switch (r) {
    case readiness::none: return "none";
    case readiness::exit: return "exit";
    case readiness::protocol: return "protocol";
  }
  return "?";
}

}  // namespace procsup::daemon
