// The main of every test executable: death tests re-exec the binary ("threadsafe"), because
// forking a process with live threads is unsafe (docs/platform-notes.md#googletest-and-fork).
#include <gtest/gtest.h>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  return RUN_ALL_TESTS();
}
