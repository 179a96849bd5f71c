// Black-box: what a program started by the real procsup inherits. Exactly fds 0, 1, 2 (procsup
// holds a signalfd, an epoll fd, the control socket, other programs' output pipes and, during
// `ctl restart`, a client connection), an empty signal mask and no ignored signals (procsup
// blocks signals itself), and its stdout/stderr lines in procsup's log prefixed with its name.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <optional>
#include <set>
#include <string>
#include <utility>

#include "helpers/program_harness.hpp"

namespace {

using namespace procsup::testing;

class program_child_env : public program_test {};

// Waits for the next stdout line of program `id` after line `from`; returns its text (without
// the "[id] " prefix) and moves `from` past it.
std::string next_output(procsup_process& p, const std::string& id, std::size_t& from) {
  std::string text;
  const std::string prefix = "[" + id + "] ";
  auto idx = p.wait_line(
      [&](const std::string& line) {
        json j = procsup_process::parse(line);
        if (!j.is_object() || j.value("id", "") != id || j.value("stream", "") != "stdout") return false;
        const std::string msg = j.value("msg", "");
        if (msg.rfind(prefix, 0) != 0) return false;
        text = msg.substr(prefix.size());
        return true;
      },
      prefix + "<output>", from);
  if (idx) from = *idx + 1;
  return text;
}

TEST_F(program_child_env, programs_inherit_only_fds_0_1_2_and_a_clean_signal_mask) {
  const auto tag = unique_tag("env");
  // "busy" starts first, so procsup holds its output pipes when the others are launched.
  const auto cfg = dir_.write_config(
      "[[program]]\nname = \"busy\"\ncommand = " + toml_argv({test_target, "print-pid-then-sleep", tag}) +
      "\n\n[[program]]\nname = \"fds\"\ninstances = 2\ncommand = " + toml_argv({test_target, "list-fds", tag}) +
      "\n\n[[program]]\nname = \"mask\"\ncommand = " + toml_argv({test_target, "sigmask", tag}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});

  for (const char* id : {"fds:0", "fds:1"}) {
    std::size_t from = 0;
    EXPECT_EQ(next_output(p, id, from), "0 1 2") << id;
  }
  {
    std::size_t from = 0;
    const std::string blk = next_output(p, "mask", from);
    const std::string ign = next_output(p, "mask", from);
    EXPECT_EQ(blk, "SigBlk:\t0000000000000000");
    EXPECT_EQ(ign, "SigIgn:\t0000000000000000");
  }

  // Launched again while procsup serves a control connection (the restart happens inside the
  // request): that connection's fd must not leak either.
  std::size_t from = p.lines().size();
  const auto r = ctl(dir_.socket(), {"restart", "fds:1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(next_output(p, "fds:1", from), "0 1 2");

  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  EXPECT_EQ(live_processes_tagged(tag), std::vector<pid_t>{});
}

// procsup catches no signal and, at its start, makes default again what it was started with
// ignored (systemd ignores SIGPIPE in its services, nohup SIGHUP), so its programs need no reset
// of their dispositions and still get none ignored; its own SIGPIPE is blocked, not inherited.
TEST_F(program_child_env, signals_procsup_was_started_with_ignored_are_not_ignored_in_its_programs) {
  const auto cfg = dir_.write_config("[[program]]\nname = \"mask\"\ncommand = " + toml_argv({test_target, "sigmask"}) +
                                     "\nrestart_on_exit = false\n");
  procsup_process p({"--log-format", "json", "run", cfg}, {"/usr/bin/env", "--ignore-signal=HUP,PIPE,USR1"});
  std::size_t from = 0;
  EXPECT_EQ(next_output(p, "mask", from), "SigBlk:\t0000000000000000");
  EXPECT_EQ(next_output(p, "mask", from), "SigIgn:\t0000000000000000");
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

// A log pipe nobody reads any more (a restarted journald, a closed terminal): procsup's writes
// to it fail with EPIPE, and procsup goes on supervising instead of dying of SIGPIPE.
TEST_F(program_child_env, procsup_outlives_a_log_pipe_that_nobody_reads) {
  const std::string fifo = dir_.file("up");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto cfg = dir_.write_config("[[program]]\nname = \"up\"\ncommand = " +
                                     toml_argv({"/bin/sh", "-c", "echo up > " + fifo + "; exec sleep 1000"}) + "\n");
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  const pid_t pid = detail::spawn({procsup_binary, "run", cfg}, out[1], out[1]);
  ::close(out[1]);
  ::close(out[0]);  // every log line procsup writes from now on meets a closed pipe
  struct reaper {   // whatever fails below, procsup (and so its program) is gone at the end
    pid_t pid;
    int status = -1;
    bool timed_out = false;
    int stop() {
      if (pid > 0) {
        ::kill(pid, SIGTERM);
        status = detail::wait_child_bounded(std::exchange(pid, 0), default_deadline, &timed_out);
      }
      return status;
    }
    ~reaper() { stop(); }
  } procsup{pid};

  // procsup has logged its start (and would have died of it) before it launches the program.
  const int rd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(rd, 0);
  pollfd pfd{rd, POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, static_cast<int>(std::chrono::milliseconds(default_deadline).count())), 1) << "the program never started";
  char buf[8] = {};
  EXPECT_EQ(::read(rd, buf, sizeof buf), 3);
  ::close(rd);

  const auto st = ctl(dir_.socket(), {"status"});  // answered: procsup is alive
  EXPECT_EQ(st.exit_code, 0) << st.err;
  const int status = procsup.stop();
  EXPECT_FALSE(procsup.timed_out);
  EXPECT_EQ(detail::exit_code_of(status), 0);
}

// An instance's output pipes outlive its runs (procsup holds the write ends, as runit does): every
// run writes into the same pipe, and the unfinished last line of a run still ends at its exit
// instead of running into the next run's output.
TEST_F(program_child_env, restarts_reuse_the_instance_pipes_and_each_runs_last_line_ends_at_its_exit) {
  const auto cfg = dir_.write_config("[[program]]\nname = \"flaky\"\ncommand = " +
                                     toml_argv({"/bin/sh", "-c", "printf '%s %s' $$ $(readlink /proc/$$/fd/1); exit 3"}) +
                                     "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  std::set<std::string> pids;
  std::set<std::string> pipes;
  std::size_t from = 0;
  for (int run = 0; run < 3; ++run) {
    const std::string line = next_output(p, "flaky", from);  // "PID pipe:[INODE]", nothing more
    const auto space = line.find(' ');
    ASSERT_NE(space, std::string::npos) << line;
    EXPECT_EQ(line.find(' ', space + 1), std::string::npos) << "two runs in one line: " << line;
    EXPECT_EQ(line.rfind("pipe:[", space + 1), space + 1) << line;
    pids.insert(line.substr(0, space));
    pipes.insert(line.substr(space + 1));
  }
  EXPECT_EQ(pids.size(), 3u);   // three runs
  EXPECT_EQ(pipes.size(), 1u);  // one pipe
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

TEST_F(program_child_env, program_output_lines_appear_in_the_log_prefixed_with_the_name) {
  const auto cfg = dir_.write_config(
      "[[program]]\nname = \"talker\"\ncommand = " +
      toml_argv({"/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2; printf 'no newline at the end'"}) +
      "\n\n[[program]]\nname = \"greeter\"\nenv = { GREETING = \"hello from env\" }\ncommand = " +
      toml_argv({test_target, "echo-env", "GREETING"}) + "\n");

  {  // JSON log: the message carries the prefix, fields say which program and stream.
    procsup_process p({"--log-format", "json", "run", cfg});
    auto out = p.wait_event("[talker] to-stdout");
    auto err = p.wait_event("[talker] to-stderr");
    auto partial = p.wait_event("[talker] no newline at the end");
    auto env = p.wait_event("[greeter] hello from env");
    ASSERT_TRUE(out && err && partial && env);
    EXPECT_EQ(out->value("program", ""), "talker");
    EXPECT_EQ(out->value("stream", ""), "stdout");
    EXPECT_EQ(err->value("program", ""), "talker");
    EXPECT_EQ(err->value("stream", ""), "stderr");
    EXPECT_EQ(env->value("stream", ""), "stdout");
    p.kill(SIGTERM);
    EXPECT_EQ(p.wait_exit(), 0) << p.output();
  }
  {  // Text log (a terminal's): the same lines, readable.
    procsup_process p({"run", cfg});
    auto has = [](const std::string& text) {
      return [text](const std::string& line) { return line.find(text) != std::string::npos; };
    };
    EXPECT_TRUE(p.wait_line(has("[talker] to-stdout"), "[talker] to-stdout"));
    EXPECT_TRUE(p.wait_line(has("[talker] to-stderr"), "[talker] to-stderr"));
    EXPECT_TRUE(p.wait_line(has("[greeter] hello from env"), "[greeter] hello from env"));
    p.kill(SIGTERM);
    EXPECT_EQ(p.wait_exit(), 0) << p.output();
  }
}

}  // namespace

// Each instance costs procsup about three fds (pidfd, stdout and stderr pipes). Under the usual
// soft limit of 1024 (systemd's default for a service) it would stop at ~330 instances with
// EMFILE; procsup raises its soft limit to the hard one and gives its programs the original.
TEST_F(program_child_env, many_instances_fit_under_a_low_soft_fd_limit_and_programs_get_the_original_limit) {
  const auto tag = unique_tag("nofile");
  const auto cfg = dir_.write_config(
      "[[program]]\nname = \"many\"\ninstances = 100\ncommand = " + toml_argv({test_target, "print-pid-then-sleep", tag}) +
      "\n\n[[program]]\nname = \"limit\"\ncommand = " +
      toml_argv({"/bin/sh", "-c", "echo soft=$(ulimit -Sn) hard=$(ulimit -Hn); exec sleep 1000", tag}) + "\n");
  rlimit before{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &before), 0);
  ASSERT_GT(before.rlim_max, 400u) << "the test needs a hard fd limit above 400";
  const rlimit low{200, before.rlim_max};  // 101 instances need ~300 fds in procsup
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  std::optional<procsup_process> p;
  p.emplace(std::vector<std::string>{"--log-format", "json", "run", cfg});  // inherits the low limit
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &before), 0);

  EXPECT_TRUE(p->wait_event("ready", {{"running", 101}, {"failed", 0}})) << p->output();
  EXPECT_TRUE(p->wait_event("[limit] soft=200 hard=" + std::to_string(before.rlim_max)));
  for (const auto& line : p->lines()) EXPECT_EQ(line.find("spawn_failed"), std::string::npos) << line;
  p->kill(SIGTERM);
  EXPECT_EQ(p->wait_exit(), 0) << p->output();
  EXPECT_EQ(live_processes_tagged(tag), std::vector<pid_t>{});
}
