// procsup's own log: spdlog with synchronous sinks only (async spdlog hangs forked children,
// PITFALLS.md 9). Text on stderr (colour when it is a tty) or one JSON object per line.
#pragma once

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace procsup::daemon {

enum class log_format { text, json };

// "text" / "json"; nullopt otherwise.
std::optional<log_format> parse_log_format(std::string_view name);

// A logger named "procsup" writing to `target` (stderr by default) in `format`. Does not touch
// spdlog's registry; see install_logger.
std::shared_ptr<spdlog::logger> make_logger(log_format format, spdlog::level::level_enum level = spdlog::level::info,
                                            std::FILE* target = stderr);
// make_logger + spdlog::set_default_logger, so spdlog::info(...) goes there too.
void install_logger(log_format format, spdlog::level::level_enum level = spdlog::level::info);

// One event with structured fields, e.g. log_event(spdlog::level::warn, "program crashed",
// {{"program", "api"}, {"pid", 42}, {"signal", "SIGSEGV"}}). JSON format: the fields become
// members of the line's object; text: appended as " pid=42 program=api signal=SIGSEGV" (key order).
// Never throws (logging must not throw into the event loop).
void log_event(spdlog::logger& logger, spdlog::level::level_enum level, std::string_view msg,
               const nlohmann::json& fields = nlohmann::json::object()) noexcept;
void log_event(spdlog::level::level_enum level, std::string_view msg,
               const nlohmann::json& fields = nlohmann::json::object()) noexcept;  // default logger

}  // namespace procsup::daemon
