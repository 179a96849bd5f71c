// First end-to-end checks of the process / supervisor API over real forks.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <string>

#include "procsup/procsup.hpp"

namespace {

struct counter {
  int count = 0;
  int handle(int by) { return count += by; }
};

struct thrower {
  std::string handle(std::string s) {
    if (s == "boom") throw std::runtime_error("boom");
    if (s == "segv") std::raise(SIGSEGV);
    return "ok:" + s;
  }
};

TEST(smoke, counter_increments) {
  auto c = procsup::create_process(counter{});
  c.start();
  EXPECT_EQ(c.send(5).get(), 5);
  EXPECT_EQ(c.send(1).get(), 6);
  EXPECT_EQ(c.state(), procsup::process_state::running);
  c.stop();
  EXPECT_EQ(c.state(), procsup::process_state::stopped);
}

TEST(smoke, supervised_child_restarts_after_crash) {
  procsup::supervisor sup;
  auto p = sup.spawn(thrower{});
  EXPECT_EQ(p.send("a").get(), "ok:a");
  const pid_t first = p.pid();
  try {
    p.send("segv").get();
    FAIL() << "expected a failure";
  } catch (const procsup::process_error& e) {
    EXPECT_NE(std::string(e.what()).find("SIGSEGV"), std::string::npos) << e.what();
  }
  EXPECT_EQ(p.send("b").get(), "ok:b");
  EXPECT_NE(p.pid(), first);
  EXPECT_EQ(p.info().restart_count, 1);
  try {
    p.send("boom").get();
    FAIL();
  } catch (const procsup::process_error& e) {
    EXPECT_STREQ(e.what(), "boom");
  }
  EXPECT_EQ(p.send("c").get(), "ok:c");
  sup.stop();
}

}  // namespace
