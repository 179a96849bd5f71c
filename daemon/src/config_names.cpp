// The config's units and names (config.hpp): durations, sizes, signals, enum values.
#include <signal.h>
#include <string.h>

#include <charconv>
#include <limits>
#include <utility>

#include "procsup/daemon/config.hpp"
#include "procsup/sys/signal.hpp"

namespace procsup::daemon {

using std::chrono::milliseconds;

namespace {

// "<digits><unit>": the number and the unit after it; nullopt without leading digits.
std::optional<std::pair<std::uint64_t, std::string_view>> number_and_unit(std::string_view text) {
  std::uint64_t n = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  const auto [rest, ec] = std::from_chars(begin, end, n);
  if (ec != std::errc{} || rest == begin) return std::nullopt;
  return std::pair{n, std::string_view(rest, static_cast<std::size_t>(end - rest))};
}

}  // namespace

std::optional<milliseconds> parse_duration(std::string_view text) {
  const auto split = number_and_unit(text);
  if (!split) return std::nullopt;
  const auto [n, unit] = *split;
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
  const auto split = number_and_unit(text);
  if (!split) return std::nullopt;
  const auto [n, unit] = *split;
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

std::string signal_name(int sig) { return sys::signal_name(sig); }

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
