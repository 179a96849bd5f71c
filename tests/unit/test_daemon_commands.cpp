// The control grammar's command table (daemon/src/commands.cpp): every ctl command is a row,
// a request naming none is refused with its name, and a command on a name nothing has is
// refused naming it in quotes. A runner with no programs: nothing is started or forked.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "daemon_runner.hpp"
#include "procsup/daemon/control.hpp"

namespace pd = procsup::daemon;
using json = nlohmann::json;

TEST(daemon_commands, the_table_has_every_ctl_command_once_with_its_request) {
  std::set<std::string> names;
  for (const auto& c : pd::control_commands()) {
    EXPECT_TRUE(names.insert(std::string(c.name)).second) << "twice: " << c.name;
    EXPECT_NE(c.request.find("\"cmd\":\"" + std::string(c.name) + "\""), std::string_view::npos) << c.name;
    EXPECT_FALSE(c.reply.empty()) << c.name;
  }
  EXPECT_EQ(names, (std::set<std::string>{"status", "start", "stop", "restart", "signal", "logs", "shutdown",
                                          "reload", "send"}));
}

TEST(daemon_commands, an_unknown_or_missing_command_is_refused_by_name) {
  pd::daemon_runner r(pd::config{}, {});
  EXPECT_EQ(r.handle({{"cmd", "nope"}}), (json{{"ok", false}, {"error", "unknown command \"nope\""}}));
  EXPECT_EQ(r.handle(json::object()), (json{{"ok", false}, {"error", "unknown command \"\""}}));
}

TEST(daemon_commands, a_name_nothing_has_is_refused_in_quotes_by_every_command_that_takes_one) {
  pd::daemon_runner r(pd::config{}, {});
  for (const char* cmd : {"start", "stop", "restart", "signal", "logs", "send"}) {
    const json reply = r.handle({{"cmd", cmd}, {"name", "nosuch"}, {"signal", "HUP"}});
    EXPECT_EQ(reply, (json{{"ok", false}, {"error", "no program or instance named \"nosuch\""}})) << cmd;
  }
}

TEST(daemon_commands, status_of_a_runner_with_no_programs_is_an_empty_list) {
  pd::daemon_runner r(pd::config{}, {});
  EXPECT_EQ(r.handle({{"cmd", "status"}}), (json{{"ok", true}, {"instances", json::array()}}));
}
