// libFuzzer target: a ring mapping as a malicious peer could leave it, run through our reader and
// writer (see ring_fuzz_target.hpp). Any crash, sanitizer report or broken invariant is a bug.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "ring_fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string failure = procsup::fuzz::run_ring_input(data, size);
  if (!failure.empty()) {
    std::fprintf(stderr, "ring invariant broken: %s\n", failure.c_str());
    std::abort();
  }
  return 0;
}
