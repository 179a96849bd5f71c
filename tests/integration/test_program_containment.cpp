// Black-box: kernel containment. What a program starts (forked children, setsid daemons, their
// children) does not survive a stop, a shutdown or a SIGKILL of procsup: with a cgroup per
// instance (a restarted procsup sweeps what a killed one left) and with pid_namespace = true
// (the kernel ends the namespace with procsup). Real processes, found by a tag in their
// command lines.
#include <gtest/gtest.h>

#include <sys/resource.h>

#include "helpers/program_harness.hpp"

namespace {

using namespace procsup::testing;

#if defined(__SANITIZE_ADDRESS__)
constexpr int slow = 3;  // the bounds the issue names, stretched for a sanitizer build
#else
constexpr int slow = 1;
#endif

// Where cgroup v2 is, or "" (the test then checks the fallback instead).
std::string cgroup2_mount() {
  std::ifstream mi("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mi, line)) {
    const auto dash = line.find(" - cgroup2 ");
    if (dash == std::string::npos) continue;
    std::istringstream pre(line.substr(0, dash));
    std::string id, parent, dev, root, mountpoint;
    pre >> id >> parent >> dev >> root >> mountpoint;
    if (root == "/") return mountpoint;
  }
  return {};
}

bool can_make_cgroups() { return !cgroup2_mount().empty() && ::geteuid() == 0; }

class program_containment : public program_test {
 protected:
  void TearDown() override {
    // A failed test must not leave its escapees running (they are not our children).
    for (pid_t p : live_processes_tagged(tag_)) ::kill(p, SIGKILL);
    wait_tagged_gone(tag_, 5s);
    program_test::TearDown();
  }

  // A program that leaves, besides its main process (which exits on SIGTERM):
  // two forked children in its group, and a daemon in a session of its own (setsid) that
  // ignores SIGTERM, with a child of its own. 5 processes, each with tag_ in its command line.
  std::string escaping_program(const std::string& extra = "stop_timeout = \"1s\"\n") {
    const std::string script = dir_.write("escape-" + tag_ + ".sh",
                                          "#!/bin/sh\n"
                                          "T=" + test_target + "\n"
                                          "$T sleep 600 " + tag_ + " &\n"
                                          "$T sleep 600 " + tag_ + " &\n"
                                          "( setsid /bin/sh -c 'trap \"\" TERM; \"$0\" sleep 600 \"$1\" & wait' $T " + tag_ + " & )\n"
                                          "exec $T sleep 600 " + tag_ + "\n",
                                          true);
    return "[[program]]\nname = \"esc\"\ncommand = " + toml_argv({"/bin/sh", script}) + "\n" + extra;
  }

  // Waits until the 5 processes of escaping_program() run; returns them.
  std::vector<pid_t> wait_escapees() {
    const auto until = std::chrono::steady_clock::now() + default_deadline;
    for (;;) {
      auto live = live_processes_tagged(tag_);
      // The script's own sh (before its exec) has the tag too: wait for exactly the 5.
      if (live.size() == 5) return live;
      if (std::chrono::steady_clock::now() > until) {
        ADD_FAILURE() << "expected 5 tagged processes, have " << live.size();
        return live;
      }
      std::this_thread::sleep_for(10ms);  // polling /proc: there is no event for "a process started"
    }
  }

  std::vector<pid_t> survivors_after(std::chrono::milliseconds deadline) { return wait_tagged_gone(tag_, deadline); }

  const std::string tag_ = unique_tag("contain");
};

TEST_F(program_containment, sigkill_of_procsup_with_pid_namespace_leaves_no_survivor) {
  procsup_process p({"--log-format", "json", "run", dir_.write_config(escaping_program(), "pid_namespace = true\n")});
  ASSERT_TRUE(p.wait_event("[esc] ready"));
  auto escapees = wait_escapees();
  ASSERT_EQ(escapees.size(), 5u);
  p.kill(SIGKILL);  // the outer process
  EXPECT_EQ(p.wait_exit(), 128 + SIGKILL);
  EXPECT_EQ(survivors_after(5s * slow), std::vector<pid_t>{}) << "survived a SIGKILL of procsup";
}

TEST_F(program_containment, sigkill_of_the_inner_pid_1_leaves_no_survivor_and_the_outer_exits) {
  procsup_process p({"--log-format", "json", "run", "--pid-namespace", dir_.write_config(escaping_program())});
  auto starting = p.wait_event("procsup starting");
  ASSERT_TRUE(starting);
  EXPECT_EQ(starting->value("pid_namespace", false), true) << starting->dump();
  const pid_t inner = starting->at("pid").get<pid_t>();  // as the host sees it
  ASSERT_GT(inner, 0);
  ASSERT_TRUE(p.wait_event("[esc] ready"));
  auto escapees = wait_escapees();
  ASSERT_EQ(escapees.size(), 5u);
  // ctl status shows host pids: the main process is one of the tagged processes we see.
  const auto s = status_of(dir_.socket(), "esc");
  ASSERT_TRUE(s["pid"].is_number()) << s.dump();
  EXPECT_NE(std::find(escapees.begin(), escapees.end(), s["pid"].get<pid_t>()), escapees.end()) << s.dump();
  ASSERT_EQ(::kill(inner, SIGKILL), 0);
  EXPECT_EQ(p.wait_exit(), 128 + SIGKILL);  // the outer passes the inner's end through
  EXPECT_EQ(survivors_after(5s * slow), std::vector<pid_t>{});
}

TEST_F(program_containment, sigterm_under_pid_namespace_stops_cleanly_and_exits_0) {
  procsup_process p({"--log-format", "json", "run", "--pid-namespace", dir_.write_config(escaping_program())});
  ASSERT_TRUE(p.wait_event("[esc] ready"));
  ASSERT_EQ(wait_escapees().size(), 5u);
  p.kill(SIGTERM);  // forwarded by the outer to PID 1
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  EXPECT_EQ(survivors_after(2s * slow), std::vector<pid_t>{});
}

TEST_F(program_containment, a_restarted_procsup_sweeps_what_a_sigkilled_one_left_in_its_cgroups) {
  if (!can_make_cgroups()) GTEST_SKIP() << "no cgroup2 mount or not root";
  const std::string cfg = dir_.write_config(escaping_program());
  std::vector<pid_t> first;
  {
    procsup_process p({"--log-format", "json", "run", cfg});
    ASSERT_TRUE(p.wait_event("containment: a cgroup per instance"));
    auto ready = p.wait_event("[esc] ready");
    ASSERT_TRUE(ready);
    first = wait_escapees();
    ASSERT_EQ(first.size(), 5u);
    p.kill(SIGKILL);
    EXPECT_EQ(p.wait_exit(), 128 + SIGKILL);
    // Its main process follows it (parent-death signal): wait for that before counting.
    EXPECT_TRUE(wait_process_gone(ready->at("pid").get<pid_t>(), 5s));
  }
  // The main process dies with procsup (parent-death signal); what it started does not: that is
  // what the next procsup must find.
  std::vector<pid_t> orphans;
  for (pid_t pid : first)
    if (process_alive(pid)) orphans.push_back(pid);
  ASSERT_FALSE(orphans.empty()) << "nothing survived the SIGKILL: the sweep below would test nothing";

  procsup_process again({"--log-format", "json", "run", cfg});
  auto swept = again.wait_event("killed what an earlier procsup with this control socket left running");
  ASSERT_TRUE(swept) << again.output();
  // Every orphan we saw is among those it killed (it may have seen one more: a process the
  // daemon started just after we looked).
  EXPECT_GE(swept->value("count", 0u), orphans.size()) << swept->dump();
  for (pid_t pid : orphans) {
    const auto& killed = swept->at("pids");
    EXPECT_NE(std::find(killed.begin(), killed.end(), pid), killed.end()) << pid << " not swept: " << swept->dump();
  }
  for (pid_t pid : orphans) EXPECT_TRUE(wait_process_gone(pid, 5s)) << "orphan " << pid << " survived the sweep";
  ASSERT_TRUE(again.wait_event("[esc] ready"));
  again.kill(SIGTERM);
  EXPECT_EQ(again.wait_exit(), 0) << again.output();
  EXPECT_EQ(survivors_after(2s * slow), std::vector<pid_t>{});
}

TEST_F(program_containment, ctl_stop_ends_a_setsid_daemon_that_ignores_sigterm_within_stop_timeout) {
  if (!can_make_cgroups()) GTEST_SKIP() << "no cgroup2 mount or not root";
  procsup_process p({"--log-format", "json", "run", dir_.write_config(escaping_program())});
  ASSERT_TRUE(p.wait_event("[esc] ready"));
  ASSERT_EQ(wait_escapees().size(), 5u);
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = ctl(dir_.socket(), {"stop", "esc"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // stop_timeout = 1s: within it + 1 s, nothing of the program is left.
  EXPECT_EQ(survivors_after(2s * slow), std::vector<pid_t>{}) << "escaped the stop";
  EXPECT_LE(std::chrono::steady_clock::now() - t0, 2s * slow);
  EXPECT_EQ(status_of(dir_.socket(), "esc")["state"], "stopped");
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

TEST_F(program_containment, status_reports_the_cgroup_its_processes_and_their_memory) {
  if (!can_make_cgroups()) GTEST_SKIP() << "no cgroup2 mount or not root";
  procsup_process p({"--log-format", "json", "run", dir_.write_config(escaping_program())});
  ASSERT_TRUE(p.wait_event("[esc] ready"));
  const auto escapees = wait_escapees();
  ASSERT_EQ(escapees.size(), 5u);
  const auto s = status_of(dir_.socket(), "esc");
  ASSERT_TRUE(s.contains("cgroup")) << s.dump();
  EXPECT_EQ(s["pids"], 5) << s.dump();
  EXPECT_GT(s.value("memory_bytes", 0ULL), 0ULL) << s.dump();
  EXPECT_TRUE(s["cpu_seconds"].is_number()) << s.dump();
  // Every one of them, the setsid daemon included, is in the instance's cgroup.
  const std::string procs = read_file(s["cgroup"].get<std::string>() + "/cgroup.procs");
  for (pid_t pid : escapees) EXPECT_NE(procs.find(std::to_string(pid) + "\n"), std::string::npos) << pid << " not in " << procs;
  const auto table = ctl(dir_.socket(), {"status"});
  EXPECT_NE(table.out.find("MEM"), std::string::npos) << table.out;
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0);
  EXPECT_FALSE(std::filesystem::exists(s["cgroup"].get<std::string>())) << "cgroup left behind";
}

TEST_F(program_containment, every_restart_into_the_same_cgroup_runs_the_program) {
  // A program that forks a child and exits 1: each exit kills what it left in its cgroup, and
  // the next instance is started in that same cgroup. Every instance must run its course (exit
  // 1), none may be killed at birth (what cgroup.kill did to the next clone into the cgroup).
  if (!can_make_cgroups()) GTEST_SKIP() << "no cgroup2 mount or not root";
  procsup_process p({"--log-format", "json", "run",
                     dir_.write_config("[[program]]\nname = \"flap\"\nmax_restarts = 100\n"
                                       "backoff = { initial = \"10ms\", max = \"20ms\" }\ncommand = " +
                                       toml_argv({"/bin/sh", "-c", test_target + " sleep 600 " + tag_ + " & exit 1"}) +
                                       "\n")});
  for (int restarts = 1; restarts <= 4; ++restarts) ASSERT_TRUE(p.wait_event("[flap] spawned", {{"restarts", restarts}}));
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  const auto crashes = p.events("[flap] crashed");
  ASSERT_GE(crashes.size(), 4u);
  for (const auto& c : crashes)
    if (c.value("cause", "") != "exited with code 1") ADD_FAILURE() << "an instance did not run: " << c.dump();
  EXPECT_EQ(survivors_after(2s), std::vector<pid_t>{});
}

// The shutdown hang of a daemonizing program: its daemon's child is re-parented to procsup once
// the daemon is killed. With and without cgroups, procsup exits 0 within stop_timeout + 1 s.
class program_daemonizing_shutdown : public program_containment, public ::testing::WithParamInterface<bool> {};

TEST_P(program_daemonizing_shutdown, exits_0_within_stop_timeout_plus_1s) {
  const bool cgroups = GetParam();
  if (cgroups && !can_make_cgroups()) GTEST_SKIP() << "no cgroup2 mount or not root";
  const std::string programs =
      "[[program]]\nname = \"dz\"\nstop_timeout = \"1s\"\ncommand = " +
      toml_argv({"/bin/sh", "-c",
                 "( setsid /bin/sh -c '\"$0\" sleep 600 \"$1\" & wait' " + test_target + " " + tag_ + " & ) ; exec " +
                     test_target + " sleep 600 " + tag_}) +
      "\n";
  procsup_process p({"--log-format", "json", "run",
                     dir_.write_config(programs, cgroups ? "" : "cgroups = false\n")});
  ASSERT_TRUE(p.wait_event("[dz] ready"));
  const auto until = std::chrono::steady_clock::now() + default_deadline;
  while (live_processes_tagged(tag_).size() < 3 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(10ms);
  ASSERT_EQ(live_processes_tagged(tag_).size(), 3u);
  const auto t0 = std::chrono::steady_clock::now();
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(5s * slow), 0) << p.output();
  EXPECT_LE(std::chrono::steady_clock::now() - t0, 2s * slow) << "stop_timeout is 1 s";
  EXPECT_EQ(survivors_after(2s), std::vector<pid_t>{});
}

INSTANTIATE_TEST_SUITE_P(cgroups, program_daemonizing_shutdown, ::testing::Values(true, false),
                         [](const auto& param_info) { return param_info.param ? "with_cgroups" : "without_cgroups"; });

TEST_F(program_containment, a_limit_this_host_cannot_enforce_is_a_config_error_with_its_line) {
  const std::string cfg = dir_.write_config("[[program]]\nname = \"lim\"\ncommand = [\"/bin/true\"]\n"
                                            "limits = { memory = \"512MiB\", pids = 64 }\n");
  const auto r = run_procsup_cli({"check", cfg});
  if (r.exit_code == 0) {
    // This host has the controllers: the limits reach the instance's cgroup.
    procsup_process p({"--log-format", "json", "run", cfg});
    ASSERT_TRUE(p.wait_event("containment: a cgroup per instance"));
    p.kill(SIGTERM);
    EXPECT_EQ(p.wait_exit(), 0);
    return;
  }
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(cfg + ":7:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("memory limit needs the cgroup v2 memory controller"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("pids limit needs the cgroup v2 pids controller"), std::string::npos) << r.err;
  // run refuses it the same way, before starting anything.
  const auto run = run_procsup_cli({"run", cfg});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("memory limit needs"), std::string::npos) << run.err;
}

TEST_F(program_containment, out_of_fds_an_instance_fails_to_start_and_procsup_keeps_running) {
#if defined(__SANITIZE_ADDRESS__)
  // The sanitizers' own runtime needs fds in the process it checks (UBSan's vptr check probes
  // memory through a pipe and reports a false "invalid vptr" without one; the leak check reads
  // /proc at exit): a procsup that runs out of fds on purpose cannot be checked by them. The
  // release build runs this test.
  GTEST_SKIP() << "a sanitizer runtime cannot work in a process without free fds";
#endif
  std::string programs;
  for (int i = 0; i < 50; ++i)
    programs += "[[program]]\nname = \"s" + std::to_string(i) + "\"\ncommand = " +
                toml_argv({test_target, "sleep", "600", tag_}) + "\nbackoff = { initial = \"200ms\", max = \"1s\" }\n";
  const std::string cfg = dir_.write_config(programs);
  // prlimit as the launcher: procsup starts with 64 fds (soft and hard), so it cannot raise it.
  procsup_process p({"--log-format", "json", "run", cfg}, {"/usr/bin/prlimit", "--nofile=64:64", "--"});
  json failed;
  ASSERT_TRUE(p.wait_line(
      [&](const std::string& line) {
        json j = procsup_process::parse(line);
        const std::string msg = j.is_object() ? j.value("msg", "") : "";
        if (msg.size() < 13 || msg.compare(msg.size() - 13, 13, " spawn_failed") != 0) return false;
        failed = j;
        return true;
      },
      "a spawn_failed event"))
      << p.output();
  EXPECT_NE(failed.value("cause", "").find("Too many open files"), std::string::npos) << failed.dump();
  // The first starts are all made (failed or not) before anyone is asked.
  ASSERT_TRUE(p.wait_line([](const std::string& l) { return l.find("\"[s49] ") != std::string::npos; }, "[s49]"));
  // procsup is alive and answers; every instance runs or says why not.
  const auto all = status_json(dir_.socket());
  ASSERT_EQ(all.size(), 50u);
  int running = 0;
  for (const auto& s : all) {
    if (s["state"] == "running") {
      ++running;
      continue;
    }
    EXPECT_NE(s.value("last_error", "").find("Too many open files"), std::string::npos) << s.dump();
  }
  EXPECT_GT(running, 0);
  EXPECT_TRUE(p.events("internal error").empty()) << p.output();
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  EXPECT_EQ(survivors_after(5s), std::vector<pid_t>{});
}

}  // namespace
