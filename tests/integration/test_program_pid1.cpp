// Black-box: procsup as PID 1 of a new PID namespace (`unshare -fp --mount-proc`, what a
// container entrypoint is): it reaps an orphaned grandchild (no zombie is left in the namespace,
// as seen from inside it) and stops cleanly on SIGTERM with exit 0.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "helpers/program_harness.hpp"

namespace {

using namespace procsup::testing;

class program_pid1 : public program_test {
 protected:
  // The pid (in our namespace) of the process unshare forked: procsup, PID 1 inside.
  static pid_t child_of(pid_t parent) {
    std::ifstream f("/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) + "/children");
    pid_t pid = 0;
    f >> pid;
    return pid;
  }
};

TEST_F(program_pid1, as_pid_1_it_reaps_an_orphan_and_stops_cleanly_on_sigterm) {
  if (::geteuid() != 0) GTEST_SKIP() << "unshare -p needs root";
  if (::access("/usr/bin/unshare", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/unshare";
  const auto tag = unique_tag("pid1");

  // orphaner: starts orphan.sh in the background in a session of its own (like a daemon that
  // double-forks: procsup kills what is left of a program's own process group when it exits),
  // waits until orphan.sh runs (so it is out of the group: setsid execs it after setsid()) and
  // exits, so the orphan is re-parented to PID 1 (procsup). orphan.sh waits until that has
  // happened (its ppid is 1), then exits: only PID 1 can reap it now.
  const std::string fifo = dir_.file("started.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto orphan = dir_.write("orphan.sh",
                                 "echo started > \"$2\"\n"
                                 "while :; do\n"
                                 "  read -r pid comm state ppid rest < /proc/$$/stat\n"
                                 "  [ \"$ppid\" = 1 ] && break\n"
                                 "  sleep 0.05\n"
                                 "done\n"
                                 "echo \"orphan $$ re-parented to 1, exiting\"\n");
  const auto orphaner = dir_.write("orphaner.sh", "/usr/bin/setsid /bin/sh " + orphan + " " + tag + " " + fifo +
                                                      " &\necho \"spawned $!\"\nread -r started < " + fifo + "\n");
  // zcheck: lists the zombies of the namespace (its own /proc), and who PID 1 is. Builtins only:
  // it forks nothing, so it has no zombie of its own. At procsup's start (no trigger file yet)
  // it does nothing; the test starts it again with `ctl start` once the orphan is reaped.
  const std::string trigger = dir_.file("zcheck.go");
  const auto zcheck = dir_.write("zcheck.sh",
                                 "[ -f " + trigger + " ] || exit 0\n"
                                 "for f in /proc/[0-9]*/stat; do\n"
                                 "  read -r pid comm state rest < \"$f\" 2>/dev/null || continue\n"
                                 "  [ \"$state\" = Z ] && echo \"zombie $pid $comm\"\n"
                                 "done\n"
                                 "read -r init < /proc/1/comm\n"
                                 "echo \"zcheck done, pid 1 is $init\"\n");
  const auto cfg = dir_.write_config(
      "[[program]]\nname = \"sleeper\"\ncommand = " + toml_argv({test_target, "print-pid-then-sleep", tag}) +
      "\n\n[[program]]\nname = \"orphaner\"\ncommand = " + toml_argv({"/bin/sh", orphaner, tag}) +
      "\n\n[[program]]\nname = \"zcheck\"\nstrategy = \"stop\"\ncommand = " + toml_argv({"/bin/sh", zcheck}) + "\n",
      // Process groups only: with a cgroup per instance the orphan is killed with its program
      // (test_program_containment.cpp); this is about PID 1 reaping what escaped a group.
      "cgroups = false\n");

  procsup_process p({"--log-format", "json", "--log-level", "debug", "run", cfg},
                    {"/usr/bin/unshare", "-fp", "--mount-proc"});
  auto starting = p.wait_event("procsup starting");
  ASSERT_TRUE(starting);
  ASSERT_EQ(starting->at("pid"), 1) << "procsup is not PID 1 in its namespace: " << starting->dump();

  // The orphan's pid (namespace numbering), then procsup reaping it.
  pid_t orphan_pid = 0;
  ASSERT_TRUE(p.wait_line(
      [&](const std::string& line) {
        const std::string msg = procsup_process::parse(line).value("msg", "");
        if (msg.rfind("[orphaner] spawned ", 0) != 0) return false;
        orphan_pid = std::atoi(msg.c_str() + 19);
        return true;
      },
      "[orphaner] spawned <pid>"));
  ASSERT_GT(orphan_pid, 1);
  ASSERT_TRUE(p.wait_event("[orphaner] orphan " + std::to_string(orphan_pid) + " re-parented to 1, exiting"));
  auto reaped = p.wait_event("reaped orphan", {{"pid", orphan_pid}});
  ASSERT_TRUE(reaped);
  EXPECT_EQ(reaped->value("exit", ""), "exited with code 0");

  // Now look from inside the namespace: no zombie anywhere.
  dir_.write("zcheck.go", "");
  const std::size_t before = p.lines().size();
  const auto r = ctl(dir_.socket(), {"start", "zcheck"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto done = p.wait_line(
      [](const std::string& line) {
        return procsup_process::parse(line).value("msg", "").rfind("[zcheck] zcheck done", 0) == 0;
      },
      "[zcheck] zcheck done", before);
  ASSERT_TRUE(done);
  const auto lines = p.lines();
  EXPECT_EQ(procsup_process::parse(lines[*done]).value("msg", ""), "[zcheck] zcheck done, pid 1 is procsup");
  for (std::size_t i = before; i < *done; ++i) {
    const std::string msg = procsup_process::parse(lines[i]).value("msg", "");
    EXPECT_EQ(msg.rfind("[zcheck] zombie", 0), std::string::npos) << msg << "\n" << p.output();
  }

  // SIGTERM from outside the namespace reaches PID 1 (it handles it: signalfd) -> clean stop.
  const pid_t inner = child_of(p.pid());
  ASSERT_GT(inner, 0);
  ASSERT_EQ(::kill(inner, SIGTERM), 0);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();  // unshare passes on procsup's exit code
  const auto stopped = p.events("procsup stopped");
  ASSERT_EQ(stopped.size(), 1U) << p.output();
  EXPECT_EQ(stopped[0].at("exit_code"), 0);
  EXPECT_EQ(p.events("signal received: stopping").size(), 1U) << p.output();
  EXPECT_EQ(live_processes_tagged(tag), std::vector<pid_t>{});
}

}  // namespace
