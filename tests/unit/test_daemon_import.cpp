// `procsup import`'s parsing pieces: shell-like argv splitting (as shlex.split, which supervisord
// uses), when a Procfile command needs a shell, and supervisord's INI dialect (inline comments,
// `key: value`, continuation lines, %(name)s expansions).
#include <gtest/gtest.h>

#include "procsup/daemon/import.hpp"

namespace {

namespace pd = procsup::daemon;
using argv = std::vector<std::string>;

TEST(daemon_import, split_command_line_follows_sh_quoting) {
  EXPECT_EQ(pd::split_command_line("a  b\tc"), (argv{"a", "b", "c"}));
  EXPECT_EQ(pd::split_command_line("echo 'a b' \"c d\" e\\ f"), (argv{"echo", "a b", "c d", "e f"}));
  EXPECT_EQ(pd::split_command_line("x \"say \\\"hi\\\" \\$HOME\" 'it''s'"), (argv{"x", "say \"hi\" $HOME", "its"}));
  EXPECT_EQ(pd::split_command_line("prog '' \"\""), (argv{"prog", "", ""}));
  EXPECT_EQ(pd::split_command_line("a'b'\"c\"d"), (argv{"abcd"}));
  EXPECT_EQ(pd::split_command_line("   "), argv{});
  EXPECT_FALSE(pd::split_command_line("echo 'open"));
  EXPECT_FALSE(pd::split_command_line("echo \"open"));
  EXPECT_FALSE(pd::split_command_line("trailing\\"));
}

TEST(daemon_import, needs_shell_sees_expansions_operators_and_assignments) {
  for (const char* yes : {"rails server -p $PORT", "a && b", "a | b", "a; b", "a > log", "ls *.txt", "echo `date`",
                          "(cd x; y)", "FOO=1 cmd", "echo \"$HOME\"", "cmd # comment", "echo ~"})
    EXPECT_TRUE(pd::needs_shell(yes)) << yes;
  for (const char* no : {"bundle exec sidekiq -C config/sidekiq.yml", "cmd --x=1", "echo '$PORT'", "echo a#b",
                         "python3 clock.py \"every minute\"", "echo '#'"})
    EXPECT_FALSE(pd::needs_shell(no)) << no;
}

TEST(daemon_import, the_ini_dialect_of_supervisord_is_read_as_supervisord_reads_it) {
  const std::string conf =
      "; comment\n"
      "# another\n"
      "[program:app]\n"
      "command: /bin/app --name=%(program_name)s --literal=50%% --host %(host_node_name)s ; inline comment\n"
      "environment = A=\"1\",\n"
      "    B='two words',\n"
      "    C=plain\n"
      "directory = %(here)s\n"
      "stopwaitsecs=5;not a comment (no space before it)\n"
      "STOPSIGNAL=hup\n";
  const auto r = pd::import_config(pd::import_format::supervisord, {{"/etc/app.conf", conf}});
  ASSERT_TRUE(r.errors.empty()) << r.errors.at(0);
  EXPECT_NE(r.toml.find("command = [\"/bin/app\", \"--name=app\", \"--literal=50%\", \"--host\", \""), std::string::npos)
      << r.toml;
  EXPECT_NE(r.toml.find("env = { A = \"1\", B = \"two words\", C = \"plain\" }"), std::string::npos) << r.toml;
  EXPECT_NE(r.toml.find("cwd = \"/etc\""), std::string::npos) << r.toml;
  EXPECT_NE(r.toml.find("stop_signal = \"HUP\""), std::string::npos) << r.toml;  // keys are case-insensitive
  // "5;not ..." is the value (ConfigParser needs whitespace before an inline comment): not a number.
  EXPECT_NE(r.toml.find("# stopwaitsecs = 5;not a comment (no space before it): not a number of seconds"),
            std::string::npos)
      << r.toml;
}

TEST(daemon_import, a_bad_section_header_is_an_error_with_file_and_line) {
  const auto r = pd::import_config(pd::import_format::supervisord, {{"x.conf", "[program:a]\ncommand=/bin/a\n[broken\n"}});
  ASSERT_EQ(r.errors.size(), 1U);
  EXPECT_EQ(r.errors[0], "x.conf:3: section header without ']': [broken");
  EXPECT_EQ(r.toml, "");
}

TEST(daemon_import, the_format_is_guessed_from_the_name_then_the_content) {
  EXPECT_EQ(pd::guess_import_format("/srv/app/Procfile", ""), pd::import_format::procfile);
  EXPECT_EQ(pd::guess_import_format("Procfile.dev", ""), pd::import_format::procfile);
  EXPECT_EQ(pd::guess_import_format("/etc/supervisor/conf.d/x.conf", ""), pd::import_format::supervisord);
  EXPECT_EQ(pd::guess_import_format("procs", "# c\nweb: run it\n"), pd::import_format::procfile);
  EXPECT_EQ(pd::guess_import_format("sv", "; c\n[program:x]\n"), pd::import_format::supervisord);
  EXPECT_FALSE(pd::guess_import_format("notes", "hello world\n"));
}

}  // namespace
