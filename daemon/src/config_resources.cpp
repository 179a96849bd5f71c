// limits = { ... } of a [[program]] (config_checker.hpp): rlimits (nofile, nproc, as, ...)
// and the cgroup limits (memory, memory_high, cpu = "N%", pids, io_weight).
#include <sys/resource.h>

#include <limits>
#include <map>

#include "config_checker.hpp"

namespace procsup::daemon::config_detail {
namespace {

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

}  // namespace

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

}  // namespace procsup::daemon::config_detail
