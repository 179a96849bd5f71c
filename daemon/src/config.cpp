// TOML -> config structs. A small checker (config_checker.hpp) walks every table: each key is
// looked up in a table of known keys, each value is type-checked, and every problem becomes a
// config_error (collected). This file reads the file and its top-level tables; a [[program]]
// table is parsed in config_program.cpp.
#include "procsup/daemon/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <tuple>

#include "config_checker.hpp"
#include "procsup/daemon/http_server.hpp"
#include "procsup/supervisor/launcher.hpp"

namespace procsup::daemon::config_detail {

std::string dir_of(const std::string& file) {
  const auto slash = file.rfind('/');
  if (slash == std::string::npos) {
    char cwd[4096];
    return ::getcwd(cwd, sizeof cwd) != nullptr ? std::string(cwd) : std::string(".");
  }
  return slash == 0 ? "/" : file.substr(0, slash);
}

namespace {

void parse_supervisor(checker& c, const toml::table& t, supervisor_config& out) {
  for (auto&& [k, v] : t) {
    const std::string key = "supervisor." + std::string(k.str());
    if (k == "policy") {
      if (auto p = c.choice<restart_policy>(v, key, {{"one_for_one", restart_policy::one_for_one},
                                                    {"one_for_all", restart_policy::one_for_all},
                                                    {"rest_for_one", restart_policy::rest_for_one}}))
        out.policy = *p;
    } else if (k == "intensity") {
      if (auto i = c.integer(v, key, 0, 1'000'000)) out.intensity = static_cast<int>(*i);
    } else if (k == "period") {
      if (auto d = c.positive_duration(v, key)) out.period = *d;
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
}  // namespace procsup::daemon::config_detail

namespace procsup::daemon {

using namespace config_detail;

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

}  // namespace procsup::daemon
