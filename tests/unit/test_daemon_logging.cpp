// procsup's log formats: JSON lines with time, level, msg and the event's fields; text with the
// fields appended as key=value.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "procsup/daemon/logging.hpp"

namespace {

namespace pd = procsup::daemon;

std::string read_back(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string s;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  return s;
}

TEST(daemon_logging, json_format_is_one_object_per_line_with_fields) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    auto logger = pd::make_logger(pd::log_format::json, spdlog::level::info, f);
    pd::log_event(*logger, spdlog::level::warn, "program crashed", {{"program", "api"}, {"pid", 42}});
    logger->info("plain message with \"quotes\"");
    logger->debug("filtered out");
  }
  const std::string out = read_back(f);
  std::fclose(f);
  const auto newline = out.find('\n');
  ASSERT_NE(newline, std::string::npos) << out;
  const auto first = nlohmann::json::parse(out.substr(0, newline));
  EXPECT_EQ(first["level"], "warning");
  EXPECT_EQ(first["msg"], "program crashed");
  EXPECT_EQ(first["program"], "api");
  EXPECT_EQ(first["pid"], 42);
  const std::string time = first["time"];
  EXPECT_EQ(time.size(), 24U) << time;  // 2024-01-02T03:04:05.678Z
  EXPECT_EQ(time.back(), 'Z');
  const std::string rest = out.substr(newline + 1);
  ASSERT_EQ(std::count(rest.begin(), rest.end(), '\n'), 1) << out;
  const auto second = nlohmann::json::parse(rest);
  EXPECT_EQ(second["msg"], "plain message with \"quotes\"");
  EXPECT_FALSE(second.contains("program"));
}

TEST(daemon_logging, text_format_appends_fields_as_key_value) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    auto logger = pd::make_logger(pd::log_format::text, spdlog::level::info, f);
    pd::log_event(*logger, spdlog::level::info, "spawned", {{"program", "api"}, {"pid", 7}});
  }
  const std::string out = read_back(f);
  std::fclose(f);
  EXPECT_NE(out.find("info  spawned pid=7 program=api\n"), std::string::npos) << out;
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << "no colour codes when not a terminal";
}

TEST(daemon_logging, json_only_fields_reach_json_lines_but_not_text) {
  std::FILE* j = std::tmpfile();
  std::FILE* t = std::tmpfile();
  ASSERT_TRUE(j && t);
  {
    auto json_logger = pd::make_logger(pd::log_format::json, spdlog::level::info, j);
    auto text_logger = pd::make_logger(pd::log_format::text, spdlog::level::info, t);
    for (auto* l : {json_logger.get(), text_logger.get()})
      pd::log_event(*l, spdlog::level::warn, "[api:1] crashed", {{"pid", 7}}, {{"program", "api"}, {"instance", 1}});
  }
  const auto line = nlohmann::json::parse(read_back(j));
  EXPECT_EQ(line["pid"], 7);
  EXPECT_EQ(line["program"], "api");
  EXPECT_EQ(line["instance"], 1);
  const std::string text = read_back(t);
  EXPECT_NE(text.find("[api:1] crashed pid=7\n"), std::string::npos) << text;
  std::fclose(j);
  std::fclose(t);
}

TEST(daemon_logging, a_program_line_ignores_the_loggers_level) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    auto logger = pd::make_logger(pd::log_format::text, spdlog::level::off, f);
    pd::log_event(*logger, spdlog::level::critical, "procsup's own: filtered");
    pd::log_program_line(*logger, "api", "listening on :80", {{"program", "api"}, {"stream", "stdout"}});
  }
  const std::string out = read_back(f);
  std::fclose(f);
  EXPECT_EQ(out.find("filtered"), std::string::npos) << out;
  const std::string want = "info  [api] listening on :80\n";  // nothing appended
  ASSERT_GE(out.size(), want.size()) << out;
  EXPECT_EQ(out.substr(out.size() - want.size()), want) << out;
}

TEST(daemon_logging, format_names) {
  EXPECT_EQ(pd::parse_log_format("json"), pd::log_format::json);
  EXPECT_EQ(pd::parse_log_format("text"), pd::log_format::text);
  EXPECT_FALSE(pd::parse_log_format("xml").has_value());
}

}  // namespace
