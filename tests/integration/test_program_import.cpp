// Black-box: `procsup import` turns real-world supervisord configs (Debian's
// /etc/supervisor/supervisord.conf, supervisor's own fixtures, program sections of the usual
// shapes: tests/data/supervisor/) and Procfiles (Heroku / foreman shape) into a procsup.toml that
// `procsup check` accepts, with what has no equivalent kept as comments that give the reason; an
// imported config runs and does what the original said.
#include <gtest/gtest.h>

#include <filesystem>

#include "helpers/program_harness.hpp"

#ifndef PROCSUP_TEST_DATA
#error "PROCSUP_TEST_DATA (tests/data) must be defined"
#endif

namespace {

using namespace procsup::testing;

const std::string data = PROCSUP_TEST_DATA;

class program_import : public program_test {
 protected:
  // `procsup import ARGS...` must succeed; its output is written to NAME and must pass `check`.
  std::string import_and_check(const std::vector<std::string>& args, const std::string& name = "imported.toml") {
    std::vector<std::string> full{"import"};
    full.insert(full.end(), args.begin(), args.end());
    const auto r = run_procsup_cli(full);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    const auto path = dir_.write(name, r.out);
    const auto check = run_procsup_cli({"check", path});
    EXPECT_EQ(check.exit_code, 0) << check.err << "\n" << r.out;
    return r.out;
  }
  static bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }
};

TEST_F(program_import, debians_supervisord_conf_with_program_sections_imports_and_passes_check) {
  const auto out = import_and_check({data + "/supervisor/supervisord.conf", data + "/supervisor/conf.d/web.conf",
                                     data + "/supervisor/conf.d/worker.conf"});
  // Every section of Debian's file is accounted for, with the reason.
  EXPECT_TRUE(has(out, "#   [unix_http_server]")) << out;
  EXPECT_TRUE(has(out, "#   [supervisord] pidfile = /var/run/supervisord.pid: no pid file")) << out;
  EXPECT_TRUE(has(out, "#   [rpcinterface:supervisor]")) << out;
  EXPECT_TRUE(has(out, "#   [supervisorctl]")) << out;
  EXPECT_TRUE(has(out, "#   [include] files = /etc/supervisor/conf.d/*.conf")) << out;
  EXPECT_TRUE(has(out, "#   [group:batch]")) << out;

  // web: numprocs, %(process_num)s, user, directory, signals, logs, environment.
  EXPECT_TRUE(has(out, "name = \"web\"\ncommand = [\"/usr/bin/python3\", \"-m\", \"http.server\", \"80{instance}\", "
                       "\"--bind\", \"127.0.0.1\"]\ninstances = 2\nstrategy = \"restart\"\nrestart_on_exit = true\n"))
      << out;
  EXPECT_TRUE(has(out, "env = { PYTHONUNBUFFERED = \"1\", APP_ENV = \"production\", GREETING = \"hello, world\" }")) << out;
  EXPECT_TRUE(has(out, "cwd = \"/tmp\"\nuser = \"nobody\"\nstop_signal = \"INT\"\nstop_timeout = \"20s\"\n")) << out;
  EXPECT_TRUE(has(out, "stdout = \"/var/log/web-0.log\"\nstderr = \"/var/log/web-0.log\"\n")) << out;  // redirect_stderr
  EXPECT_TRUE(has(out, "log_max_size = \"20MiB\"\nlog_keep = 3\n")) << out;
  EXPECT_TRUE(has(out, "# startsecs = 5: ")) << out;
  EXPECT_TRUE(has(out, "# umask = 022: ")) << out;
  EXPECT_TRUE(has(out, "# stopasgroup = true: procsup always signals the whole process group")) << out;
  EXPECT_TRUE(has(out, "# process_name = %(program_name)s_%(process_num)02d: ")) << out;
  // worker: /dev/stdout -> inherit, exitcodes -> success_codes.
  EXPECT_TRUE(has(out, "command = [\"bash\", \"-c\", \"exec celery -A app worker --loglevel=info\"]\nstrategy = \"restart\"\n"
                       "success_codes = [0, 2]\n"))
      << out;
  EXPECT_TRUE(has(out, "stdout = \"inherit\"\nstderr = \"inherit\"\n")) << out;
  // report: autorestart = false, quoted argument, NONE, autostart = false said.
  EXPECT_TRUE(has(out, "command = [\"/usr/local/bin/report\", \"--since\", \"1 day ago\", \"--out\", \"/srv/reports\"]\n"
                       "strategy = \"stop\"\n"))
      << out;
  EXPECT_TRUE(has(out, "# stderr_logfile = NONE: ")) << out;
  EXPECT_TRUE(has(out, "# autostart = false: ")) << out;
  // priority 10 puts web before the others (priority 999), as supervisord starts them.
  EXPECT_LT(out.find("name = \"web\""), out.find("name = \"worker\"")) << out;
}

TEST_F(program_import, the_installed_supervisord_conf_imports_when_present) {
  const std::string installed = "/etc/supervisor/supervisord.conf";
  if (!std::filesystem::exists(installed)) GTEST_SKIP() << installed << " is not installed (apt-get install supervisor)";
  // Alone it has no program (they are in conf.d): import it with the data's program sections.
  const auto out = import_and_check({installed, data + "/supervisor/conf.d/web.conf"});
  EXPECT_TRUE(has(out, "name = \"web\"")) << out;
}

TEST_F(program_import, supervisors_own_fixtures_import_and_pass_check) {
  // A non-ASCII name becomes a valid one (and says so).
  auto out = import_and_check({data + "/supervisor/issue-664.conf"}, "664.toml");
  EXPECT_TRUE(has(out, "name = \"test____\"\ncommand = [\"/bin/cat\"]\nstrategy = \"stop\"\n")) << out;
  EXPECT_TRUE(has(out, "# supervisord name \"test_\xc3\xb6\xc3\xa4\xc3\xbc\"")) << out;
  // %(ENV_X)s from [supervisord] environment, which also reaches the program's env.
  out = import_and_check({data + "/supervisor/issue-1170a.conf"}, "1170.toml");
  EXPECT_TRUE(has(out, "command = [\"bash\", \"-c\", \"echo 'set from [supervisord] section'\"]")) << out;
  EXPECT_TRUE(has(out, "env = { FOO = \"set from [supervisord] section\" }")) << out;
  // %% is a literal %.
  out = import_and_check({data + "/supervisor/issue-986.conf"}, "986.toml");
  EXPECT_TRUE(has(out, "-a %h:%p %P -i Vlan1000")) << out;
  // An event listener has no equivalent: a comment with the reason; %(here)s is absolute.
  out = import_and_check({data + "/supervisor/issue-733.conf"}, "733.toml");
  EXPECT_TRUE(has(out, "#   [eventlistener:fatalexit]")) << out;
  EXPECT_TRUE(has(out, "command = [\"" + std::filesystem::canonical(data).string() + "/supervisor/nonexistent\"]")) << out;
}

TEST_F(program_import, a_heroku_and_foreman_procfile_imports_and_passes_check) {
  const auto out = import_and_check({data + "/procfile/Procfile"});
  const std::string dir = std::filesystem::canonical(data + "/procfile").string();
  // Shell syntax: through /bin/sh -c; plain: argv. Comments and blank lines are not programs.
  EXPECT_TRUE(has(out, "name = \"web\"\ncommand = [\"/bin/sh\", \"-c\", \"bundle exec rails server -p $PORT\"]\ncwd = \"" +
                           dir + "\"\nenv = { PORT = \"5000\" }")) << out;
  EXPECT_TRUE(has(out, "name = \"worker\"\ncommand = [\"bundle\", \"exec\", \"sidekiq\", \"-C\", \"config/sidekiq.yml\"]\n"))
      << out;
  EXPECT_TRUE(has(out, "command = [\"/bin/sh\", \"-c\", \"./bin/rails db:migrate && ./bin/rails cache:clear\"]")) << out;
  EXPECT_TRUE(has(out, "name = \"clock\"\ncommand = [\"bundle\", \"exec\", \"clockwork\", \"lib/clock.rb\"]")) << out;
  EXPECT_TRUE(has(out, "command = [\"/bin/sh\", \"-c\", \"npm run watch -- --port=$PORT 2>&1 | tee log/assets.log\"]")) << out;
  EXPECT_TRUE(has(out, "env = { PORT = \"5400\" }")) << out;  // foreman: 5000 + 100 per process type
  EXPECT_EQ(std::count(out.begin(), out.end(), '['), std::count(out.begin(), out.end(), ']')) << out;
  size_t programs = 0;
  for (size_t at = 0; (at = out.find("[[program]]", at)) != std::string::npos; ++at) ++programs;
  EXPECT_EQ(programs, 5U) << out;
}

TEST_F(program_import, an_imported_procfile_and_supervisord_conf_run_as_the_originals_would) {
  const auto tag = unique_tag("imported");
  dir_.write("Procfile", "# two process types\nhello: echo hello on port $PORT\n\nplain: " + test_target +
                             " print-pid-then-sleep " + tag + "\n");
  auto out = import_and_check({dir_.file("Procfile")}, "from-procfile.toml");
  // Run it on the test's socket.
  auto with_socket = [&](std::string text) {
    const std::string from = "socket = \"/run/procsup.sock\"";
    text.replace(text.find(from), from.size(), "socket = " + toml_str(dir_.socket()));
    return text;
  };
  {
    procsup_process p({"--log-format", "json", "run", dir_.write("run1.toml", with_socket(out))});
    EXPECT_TRUE(p.wait_event("[hello] hello on port 5000"));
    EXPECT_TRUE(p.wait_event("[plain] ready"));
    p.kill(SIGTERM);
    EXPECT_EQ(p.wait_exit(), 0) << p.output();
  }
  dir_.write("app.conf", "[program:greeter]\ncommand=" + test_target +
                             " echo-env GREETING\nenvironment=GREETING=\"hi from %(program_name)s\"\nautorestart=false\n"
                             "\n[program:sleeper]\ncommand=" + test_target + " print-pid-then-sleep " + tag +
                             "\nnumprocs=2\nprocess_name=%(program_name)s-%(process_num)d\n");
  out = import_and_check({dir_.file("app.conf")}, "from-conf.toml");
  {
    procsup_process p({"--log-format", "json", "run", dir_.write("run2.toml", with_socket(out))});
    EXPECT_TRUE(p.wait_event("[greeter] hi from greeter"));
    EXPECT_TRUE(p.wait_event("[greeter] stopped"));  // autorestart=false: not restarted
    EXPECT_TRUE(p.wait_event("[sleeper:0] ready"));
    EXPECT_TRUE(p.wait_event("[sleeper:1] ready"));
    p.kill(SIGTERM);
    EXPECT_EQ(p.wait_exit(), 0) << p.output();
  }
  EXPECT_EQ(wait_tagged_gone(tag), std::vector<pid_t>{});
}

TEST_F(program_import, a_file_that_is_neither_is_a_usage_error_naming_it) {
  const auto junk = dir_.write("notes.txt", "just some text\n");
  auto r = run_procsup_cli({"import", junk});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(junk + ": neither a supervisord config"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  const auto empty = dir_.write("empty.conf", "[supervisord]\nnodaemon=true\n");
  r = run_procsup_cli({"import", empty});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(empty + ": no [program:NAME] section to import"), std::string::npos) << r.err;
  r = run_procsup_cli({"import", dir_.file("missing.conf")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cannot read " + dir_.file("missing.conf") + ": No such file or directory"), std::string::npos) << r.err;
}

}  // namespace
