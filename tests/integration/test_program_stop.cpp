// Black-box: stopping. stop_timeout ends in SIGKILL of the whole process group (a grandchild
// included); SIGTERM to procsup stops everything and exits 0; SIGKILL of procsup takes its
// children along (parent-death signal).
#include <gtest/gtest.h>

#include "helpers/program_harness.hpp"

namespace {

using namespace procsup::testing;

class program_stop : public program_test {
 protected:
  // A program that ignores SIGTERM (the shell's `trap '' TERM` is inherited through exec and
  // fork) and has a grandchild in its process group, which ignores SIGTERM too.
  std::string stubborn_config(const std::string& tag) {
    return dir_.write_config("[[program]]\nname = \"stubborn\"\ncommand = " +
                             toml_argv({"/bin/sh", "-c", "trap '' TERM; exec " + test_target + " spawn-grandchild " + tag}) +
                             "\nstop_timeout = \"1s\"\n");
  }

  // Waits for the stubborn program to be up; returns {child, grandchild}.
  std::pair<pid_t, pid_t> stubborn_pids(procsup_process& p) {
    auto ready = p.wait_event("[stubborn] ready");
    if (!ready) return {0, 0};
    const pid_t child = ready->at("pid").get<pid_t>();
    pid_t grandchild = 0;
    // The program prints its grandchild's pid on stdout.
    p.wait_line(
        [&](const std::string& line) {
          json j = procsup_process::parse(line);
          if (!j.is_object() || j.value("stream", "") != "stdout") return false;
          const std::string msg = j.value("msg", "");
          const std::string prefix = "[stubborn] ";
          if (msg.rfind(prefix, 0) != 0) return false;
          grandchild = std::atoi(msg.c_str() + prefix.size());
          return grandchild > 0;
        },
        "[stubborn] <grandchild pid>");
    return {child, grandchild};
  }

  static void expect_ignores_term(pid_t pid) {
    // SigIgn is a hex mask; SIGTERM (15) is bit 14: 0x4000.
    const std::string line = status_line(pid, "SigIgn:");
    ASSERT_FALSE(line.empty()) << "process " << pid << " is gone";
    const unsigned long long mask = std::stoull(line.substr(line.find_first_not_of(" \t", 7)), nullptr, 16);
    EXPECT_TRUE(mask & (1ULL << (SIGTERM - 1))) << "pid " << pid << ": " << line;
  }
};

TEST_F(program_stop, ctl_stop_after_stop_timeout_kills_the_group_with_its_grandchild) {
  const auto tag = unique_tag("stubborn");
  procsup_process p({"--log-format", "json", "run", stubborn_config(tag)});
  const auto [child, grandchild] = stubborn_pids(p);
  ASSERT_GT(child, 0);
  ASSERT_GT(grandchild, 0);
  ASSERT_NE(child, grandchild);
  // The setup is what it claims: both ignore SIGTERM, so only SIGKILL can stop them.
  expect_ignores_term(child);
  expect_ignores_term(grandchild);

  const auto r = ctl(dir_.socket(), {"stop", "stubborn"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto exited = p.wait_event("[stubborn] exited", {{"pid", child}});
  ASSERT_TRUE(exited);
  EXPECT_NE(exited->value("cause", "").find("SIGKILL"), std::string::npos) << exited->dump();
  EXPECT_TRUE(wait_process_gone(child));
  EXPECT_TRUE(wait_process_gone(grandchild)) << "the grandchild escaped the group kill";
  const auto s = status_of(dir_.socket(), "stubborn");
  EXPECT_EQ(s["state"], "stopped");
  EXPECT_TRUE(s["pid"].is_null());

  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  EXPECT_EQ(live_processes_tagged(tag), std::vector<pid_t>{});
}

TEST_F(program_stop, under_one_for_one_a_shutdown_stops_every_program_at_once) {
  // Three programs that ignore SIGTERM, stop_timeout 1 s each: stopped one after the other they
  // would take 3 s; together, the longest stop_timeout (+ 1 s, the bound procsup promises).
  const auto tag = unique_tag("together");
  std::string programs;
  for (const char* name : {"a", "b", "c"})
    programs += std::string("[[program]]\nname = \"") + name + "\"\nstop_timeout = \"1s\"\ncommand = " +
                toml_argv({test_target, "ignore-term", tag}) + "\n";
  procsup_process p({"--log-format", "json", "run", dir_.write_config(programs)});
  // Each prints "ready" once it ignores SIGTERM (a line on its stdout, not the lifecycle event).
  for (const std::string name : {"[a] ready", "[b] ready", "[c] ready"})
    ASSERT_TRUE(p.wait_line(
        [&](const std::string& l) {
          const json j = procsup_process::parse(l);
          return j.is_object() && j.value("msg", "") == name && j.value("stream", "") == "stdout";
        },
        name + " on stdout"));
  const auto t0 = std::chrono::steady_clock::now();
  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 2900ms) << "stopped one after the other";
  EXPECT_EQ(live_processes_tagged(tag), std::vector<pid_t>{});
}

TEST_F(program_stop, sigterm_to_procsup_kills_a_stubborn_group_and_exits_0) {
  const auto tag = unique_tag("stubborn-term");
  procsup_process p({"--log-format", "json", "run", stubborn_config(tag)});
  const auto [child, grandchild] = stubborn_pids(p);
  ASSERT_GT(child, 0);
  ASSERT_GT(grandchild, 0);
  expect_ignores_term(child);

  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  // procsup has exited: it must not have left either behind (no waiting here).
  EXPECT_FALSE(process_alive(child));
  EXPECT_FALSE(process_alive(grandchild));
  EXPECT_EQ(live_processes_tagged(tag), std::vector<pid_t>{});
}

TEST_F(program_stop, under_rest_for_one_sigterm_stops_every_program_in_reverse_order_and_exits_0) {
  const auto tag = unique_tag("term");
  // rest_for_one: a program depends on the ones started before it, so they stop after it.
  const auto cfg = dir_.write_config("[[program]]\nname = \"first\"\ncommand = " +
                                         toml_argv({test_target, "print-pid-then-sleep", tag}) +
                                         "\n\n[[program]]\nname = \"second\"\ninstances = 2\ncommand = " +
                                         toml_argv({test_target, "print-pid-then-sleep", tag}) + "\n",
                                     "policy = \"rest_for_one\"\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("ready"));  // every instance is up (procsup's own READY)
  std::vector<pid_t> pids;
  for (const auto& s : status_json(dir_.socket())) {
    EXPECT_EQ(s["state"], "running") << s.dump();
    if (s["pid"].is_number()) pids.push_back(s["pid"].get<pid_t>());
  }
  ASSERT_EQ(pids.size(), 3U);

  p.kill(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  for (pid_t pid : pids) EXPECT_FALSE(process_alive(pid)) << pid;
  EXPECT_EQ(live_processes_tagged(tag), std::vector<pid_t>{});

  ASSERT_EQ(p.events("signal received: stopping").size(), 1U) << p.output();
  const auto stopped = p.events("procsup stopped");
  ASSERT_EQ(stopped.size(), 1U);
  EXPECT_EQ(stopped[0].at("exit_code"), 0);
  // Reverse start order: the instances of `second` (stopped together: they do not depend on each
  // other), then `first`.
  const auto lines = p.lines();
  auto index_of = [&](const std::string& msg) {
    for (std::size_t i = 0; i < lines.size(); ++i)
      if (procsup_process::parse(lines[i]).value("msg", "") == msg) return static_cast<long>(i);
    return -1L;
  };
  const long a = index_of("[second:1] exited"), b = index_of("[second:0] exited"), c = index_of("[first] exited");
  ASSERT_GE(a, 0) << p.output();
  ASSERT_GE(b, 0) << p.output();
  ASSERT_GE(c, 0) << p.output();
  EXPECT_LT(a, c);
  EXPECT_LT(b, c);
  for (const auto& e : p.events("[first] crashed")) ADD_FAILURE() << "a requested stop counted as a crash: " << e.dump();
}

TEST_F(program_stop, sigkill_of_procsup_takes_its_children_along) {
  const auto tag = unique_tag("orphaned");
  const auto cfg = dir_.write_config("[[program]]\nname = \"kid\"\ninstances = 3\ncommand = " +
                                     toml_argv({test_target, "print-pid-then-sleep", tag}) + "\n");
  procsup_process p({"--log-format", "json", "run", cfg});
  ASSERT_TRUE(p.wait_event("ready"));
  std::vector<pid_t> pids;
  for (const auto& s : status_json(dir_.socket()))
    if (s["pid"].is_number()) pids.push_back(s["pid"].get<pid_t>());
  ASSERT_EQ(pids.size(), 3U);
  for (pid_t pid : pids) ASSERT_TRUE(process_alive(pid));

  p.kill(SIGKILL);
  EXPECT_EQ(p.wait_exit(), 128 + SIGKILL);
  // Nobody reaps them for procsup now: they must die by their parent-death signal.
  for (pid_t pid : pids) EXPECT_TRUE(wait_process_gone(pid)) << "child " << pid << " outlived a SIGKILLed procsup";
  EXPECT_EQ(wait_tagged_gone(tag), std::vector<pid_t>{});
}

}  // namespace
