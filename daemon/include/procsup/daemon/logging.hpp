// procsup's own log: spdlog with synchronous sinks only (an async spdlog logger hangs a forked
// child: its registry joins a thread the child does not have, spdlog issue 748). Text on stderr (colour when it is a tty) or one JSON object per line.
#pragma once

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "procsup/supervisor/types.hpp"

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
// `json_only` fields go into JSON lines only: what the text's message already says
// ("[api] crashed" names the program and the event). Never throws (logging must not throw into
// the event loop).
void log_event(spdlog::logger& logger, spdlog::level::level_enum level, std::string_view msg,
               const nlohmann::json& fields = nlohmann::json::object(),
               const nlohmann::json& json_only = nlohmann::json::object()) noexcept;
void log_event(spdlog::level::level_enum level, std::string_view msg,
               const nlohmann::json& fields = nlohmann::json::object(),
               const nlohmann::json& json_only = nlohmann::json::object()) noexcept;  // default logger

// One line a program wrote (instance `id`), at level info but never filtered by the logger's
// level: a program's output is not procsup's diagnostics, `--log-level warn` must not drop it.
// Text: "[api] listening on :80", nothing appended. JSON: msg "[api] listening on :80" plus
// `fields` (program, instance, id, stream); a line that is a JSON object is kept as an object
// under "line", and msg is "[api] " + its own "msg" / "message" string (or "[api]"). Never throws.
void log_program_line(spdlog::logger& logger, std::string_view id, std::string_view text,
                      nlohmann::json fields) noexcept;
void log_program_line(std::string_view id, std::string_view text, nlohmann::json fields) noexcept;  // default logger

// A supervisor lifecycle event as one log line: msg "[api:1] crashed" (what tests and people
// read), level by kind (crashed, spawn_failed: warn; gave_up, escalated: error). Text: pid, cause,
// delay_ms, restarts appended. JSON: also program, instance, id, event, restarts and, for
// exited / crashed, exit_code or signal ("SIGSEGV"). Never throws.
void log_lifecycle_event(const lifecycle_event& e) noexcept;

}  // namespace procsup::daemon
