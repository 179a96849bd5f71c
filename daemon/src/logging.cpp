// Logging setup: a colour-capable text sink or a JSON-lines sink, both synchronous. Structured
// fields reach the JSON sink through a thread-local set for the duration of one log call
// (sinks are synchronous, so the sink runs on the logging thread inside that call).
#include "procsup/daemon/logging.hpp"

#include <spdlog/sinks/ansicolor_sink.h>
#include <spdlog/sinks/base_sink.h>

#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <mutex>

namespace procsup::daemon {
namespace {

thread_local const nlohmann::json* current_fields = nullptr;

std::string iso_time(spdlog::log_clock::time_point tp) {
  const auto since = tp.time_since_epoch();
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since - secs).count();
  const std::time_t t = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

// {"time":"...","level":"info","msg":"...",<fields>} per line, written and flushed at once.
class json_sink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit json_sink(std::FILE* target) : target_(target) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    nlohmann::json line = {
        {"time", iso_time(msg.time)},
        {"level", std::string(spdlog::level::to_string_view(msg.level).data(), spdlog::level::to_string_view(msg.level).size())},
        {"msg", std::string(msg.payload.data(), msg.payload.size())},
    };
    if (current_fields != nullptr && current_fields->is_object())
      for (const auto& [k, v] : current_fields->items())
        if (k != "time" && k != "level" && k != "msg") line[k] = v;
    const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::fwrite(text.data(), 1, text.size(), target_);
    std::fflush(target_);
  }
  void flush_() override { std::fflush(target_); }

 private:
  std::FILE* target_;
};

std::string text_fields(const nlohmann::json& fields) {
  std::string out;
  if (!fields.is_object()) return out;
  for (const auto& [k, v] : fields.items()) {
    out += " " + k + "=";
    out += v.is_string() ? v.get<std::string>() : v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return out;
}

}  // namespace

std::optional<log_format> parse_log_format(std::string_view name) {
  if (name == "text") return log_format::text;
  if (name == "json") return log_format::json;
  return std::nullopt;
}

std::shared_ptr<spdlog::logger> make_logger(log_format format, spdlog::level::level_enum level, std::FILE* target) {
  spdlog::sink_ptr sink;
  if (format == log_format::json) {
    sink = std::make_shared<json_sink>(target);
  } else {
    // color_mode::automatic: colour only when target is a terminal.
    auto text = std::make_shared<spdlog::sinks::ansicolor_sink<spdlog::details::console_mutex>>(
        target, spdlog::color_mode::automatic);
    text->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
    sink = text;
  }
  auto logger = std::make_shared<spdlog::logger>("procsup", std::move(sink));
  logger->set_level(level);
  logger->flush_on(spdlog::level::trace);
  return logger;
}

void install_logger(log_format format, spdlog::level::level_enum level) {
  spdlog::set_default_logger(make_logger(format, level));
}

namespace {

// Which format the sinks speak is not known at the call: a logger with a JSON sink gets the
// fields as members, others the key=value suffix.
bool speaks_json(const spdlog::logger& logger) {
  for (const auto& s : logger.sinks())
    if (dynamic_cast<json_sink*>(s.get()) != nullptr) return true;
  return false;
}

nlohmann::json merged(const nlohmann::json& fields, const nlohmann::json& json_only) {
  nlohmann::json all = fields.is_object() ? fields : nlohmann::json::object();
  if (json_only.is_object())
    for (const auto& [k, v] : json_only.items()) all[k] = v;
  return all;
}

}  // namespace

void log_event(spdlog::logger& logger, spdlog::level::level_enum level, std::string_view msg,
               const nlohmann::json& fields, const nlohmann::json& json_only) noexcept {
  try {
    if (!logger.should_log(level)) return;
    if (speaks_json(logger)) {
      const nlohmann::json all = json_only.empty() ? nlohmann::json() : merged(fields, json_only);
      current_fields = json_only.empty() ? &fields : &all;
      logger.log(level, "{}", msg);
      current_fields = nullptr;
    } else {
      logger.log(level, "{}{}", msg, text_fields(fields));
    }
  } catch (...) {
    current_fields = nullptr;
  }
}

void log_event(spdlog::level::level_enum level, std::string_view msg, const nlohmann::json& fields,
               const nlohmann::json& json_only) noexcept {
  if (auto logger = spdlog::default_logger()) log_event(*logger, level, msg, fields, json_only);
}

void log_program_line(spdlog::logger& logger, std::string_view id, std::string_view text,
                      nlohmann::json fields) noexcept {
  try {
    std::string msg;
    msg.reserve(id.size() + 3 + text.size());
    msg.append("[").append(id).append("] ");
    const bool json = speaks_json(logger);
    if (json) {
      // A line that is itself a JSON object (a structured logger's) stays an object, under
      // "line"; msg keeps the prefix and the object's own msg / message, if it has one.
      const auto first = text.find_first_not_of(" \t");
      if (first != std::string_view::npos && text[first] == '{') {
        auto parsed = nlohmann::json::parse(text, nullptr, false);
        if (parsed.is_object()) {
          std::string own;
          for (const char* key : {"msg", "message"})
            if (auto it = parsed.find(key); it != parsed.end() && it->is_string()) {
              own = it->get<std::string>();
              break;
            }
          if (own.empty()) msg.pop_back();  // "[api]"
          else msg += own;
          fields["line"] = std::move(parsed);
          text = {};
        }
      }
    }
    msg.append(text);
    // Not procsup's diagnostics: never filtered by --log-level, so the logger's level is not
    // consulted (the sinks' own levels still are).
    const spdlog::details::log_msg line(logger.name(), spdlog::level::info, msg);
    if (json) current_fields = &fields;
    for (const auto& sink : logger.sinks())
      if (sink->should_log(line.level)) {
        sink->log(line);
        sink->flush();
      }
    current_fields = nullptr;
  } catch (...) {
    current_fields = nullptr;
  }
}

void log_program_line(std::string_view id, std::string_view text, nlohmann::json fields) noexcept {
  if (auto logger = spdlog::default_logger()) log_program_line(*logger, id, text, std::move(fields));
}

void log_lifecycle_event(const lifecycle_event& e) noexcept {
  try {
    nlohmann::json f = nlohmann::json::object();
    if (e.pid) f["pid"] = e.pid;
    if (!e.cause.empty()) f["cause"] = e.cause;
    if (e.kind == event_kind::restarting) f["delay_ms"] = e.delay.count();
    if (e.restarts) f["restarts"] = e.restarts;
    nlohmann::json only = {{"event", to_string(e.kind)}, {"restarts", e.restarts}};
    if (e.kind != event_kind::gave_up) {  // gave_up names the supervisor, not a program
      // Instance ids are "name" or "name:index" (program names have no ':').
      const auto colon = e.process_id.find(':');
      only["program"] = e.process_id.substr(0, colon);
      only["instance"] = colon == std::string::npos ? 0 : std::atoi(e.process_id.c_str() + colon + 1);
      only["id"] = e.process_id;
    }
    if (e.wait_status >= 0) {
      if (WIFEXITED(e.wait_status)) only["exit_code"] = WEXITSTATUS(e.wait_status);
      else if (WIFSIGNALED(e.wait_status)) only["signal"] = signal_name(WTERMSIG(e.wait_status));
    }
    auto level = spdlog::level::info;
    if (e.kind == event_kind::crashed || e.kind == event_kind::spawn_failed) level = spdlog::level::warn;
    if (e.kind == event_kind::gave_up || e.kind == event_kind::escalated || e.kind == event_kind::fatal) level = spdlog::level::err;
    log_event(level, "[" + e.process_id + "] " + to_string(e.kind), f, only);
  } catch (...) {
  }
}

}  // namespace procsup::daemon
