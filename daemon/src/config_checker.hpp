// Private to the config parser (config*.cpp): the checker that collects errors with
// file:line:col and the dotted key, and the parts of a [[program]] table each file parses.
//   config.cpp            the file and its tables: [supervisor], [[program]], depends_on
//   config_program.cpp    one [[program]] table: its keys, user, output, issue 20's keys
//   config_probes.cpp     ready = ... and health = ...
//   config_resources.cpp  limits = { ... }: rlimits and cgroup limits
//   config_names.cpp      durations, sizes, signals and enum names (public helpers)
#pragma once

#include <csignal>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "procsup/daemon/config.hpp"

namespace procsup::daemon::config_detail {

using std::chrono::milliseconds;

inline std::string_view type_name(const toml::node& n) {
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
  // A string that `parse` turns into a value: else `expected` (not a string) or
  // `bad` "TEXT"`hint` (a string it does not take).
  template <class Parse>
  auto parsed_string(const toml::node& n, const std::string& key, std::string_view expected, Parse parse,
                     std::string_view bad, std::string_view hint) -> decltype(parse(std::string_view{})) {
    const auto* s = n.as_string();
    if (s == nullptr) {
      wrong_type(n, key, expected);
      return std::nullopt;
    }
    auto v = parse(s->get());
    if (!v) error(n.source(), key, std::string(bad) + " \"" + s->get() + "\"" + std::string(hint));
    return v;
  }
  std::optional<milliseconds> duration(const toml::node& n, const std::string& key) {
    return parsed_string(n, key, "a duration string like \"10s\"", parse_duration, "bad duration",
                         " (use ms, s, m or h, e.g. \"500ms\", \"10s\")");
  }
  // A duration that must be longer than 0 (a period, an interval).
  std::optional<milliseconds> positive_duration(const toml::node& n, const std::string& key) {
    auto d = duration(n, key);
    if (d && d->count() <= 0) {
      error(n.source(), key, "must be longer than 0");
      return std::nullopt;
    }
    return d;
  }
  // argv: a non-empty array of strings, appended to `out`; false if it is not one.
  bool command(const toml::node& n, const std::string& key, std::vector<std::string>& out) {
    const auto* a = n.as_array();
    if (a == nullptr || a->empty()) {
      error(n.source(), key, "expected a non-empty array of strings (argv)");
      return false;
    }
    for (std::size_t i = 0; i < a->size(); ++i)
      if (auto s = string((*a)[i], key + "[" + std::to_string(i) + "]")) out.push_back(*s);
    return true;
  }
  std::optional<std::uint64_t> size(const toml::node& n, const std::string& key) {
    if (const auto* i = n.as_integer()) {
      if (i->get() >= 0) return static_cast<std::uint64_t>(i->get());
      error(n.source(), key, "size must not be negative");
      return std::nullopt;
    }
    return parsed_string(n, key, "a size like \"10MiB\"", parse_size, "bad size",
                         " (use B, KiB, MiB or GiB, e.g. \"10MiB\")");
  }
  std::optional<int> signal(const toml::node& n, const std::string& key) {
    if (const auto* i = n.as_integer()) {
      if (i->get() >= 1 && i->get() < NSIG) return static_cast<int>(i->get());
      error(n.source(), key, "unknown signal " + std::to_string(i->get()));
      return std::nullopt;
    }
    return parsed_string(n, key, "a signal name like \"TERM\"", parse_signal, "unknown signal", "");
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

std::string dir_of(const std::string& file);

// config_program.cpp
void parse_program(checker& c, const toml::table& t, const std::string& prefix, const std::string& base, program_config& p);

// config_probes.cpp
void parse_ready(checker& c, const toml::node& v, const std::string& key, program_config& p);
void parse_health(checker& c, const toml::node& v, const std::string& key, program_config& p);

// config_resources.cpp
void parse_limits(checker& c, const toml::table& t, const std::string& prefix, std::vector<rlimit_setting>& out,
                  cgroup_limits& resources);

}  // namespace procsup::daemon::config_detail
