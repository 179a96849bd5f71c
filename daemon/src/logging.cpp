// Logging setup: a colour-capable text sink or a JSON-lines sink, both synchronous. Structured
// fields reach the JSON sink through a thread-local set for the duration of one log call
// (sinks are synchronous, so the sink runs on the logging thread inside that call).
#include "procsup/daemon/logging.hpp"

#include <spdlog/sinks/ansicolor_sink.h>
#include <spdlog/sinks/base_sink.h>

#include <chrono>
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

void log_event(spdlog::logger& logger, spdlog::level::level_enum level, std::string_view msg,
               const nlohmann::json& fields) noexcept {
  try {
    if (!logger.should_log(level)) return;
    // Which format the sinks speak is not known here: give the JSON sink the fields and the
    // text sinks the key=value suffix only when no JSON sink is attached.
    bool json = false;
    for (const auto& s : logger.sinks()) json = json || dynamic_cast<json_sink*>(s.get()) != nullptr;
    if (json) {
      current_fields = &fields;
      logger.log(level, "{}", msg);
      current_fields = nullptr;
    } else {
      logger.log(level, "{}{}", msg, text_fields(fields));
    }
  } catch (...) {
    current_fields = nullptr;
  }
}

void log_event(spdlog::level::level_enum level, std::string_view msg, const nlohmann::json& fields) noexcept {
  if (auto logger = spdlog::default_logger()) log_event(*logger, level, msg, fields);
}

}  // namespace procsup::daemon
