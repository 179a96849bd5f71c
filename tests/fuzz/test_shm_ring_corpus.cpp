// Replays the fuzz corpus (tests/fuzz/corpus/) through the fuzz harness in the normal and the
// sanitizer builds, plus a seeded batch of random inputs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

#include "ring_fuzz_target.hpp"

namespace fs = std::filesystem;

TEST(ring_fuzz_corpus, every_corpus_file_keeps_the_ring_invariants) {
  const fs::path dir = PROCSUP_RING_CORPUS_DIR;
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::vector<std::uint8_t> input((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(procsup::fuzz::run_ring_input(input.data(), input.size()), "") << entry.path().filename();
    ++files;
  }
  EXPECT_GE(files, 20) << "the seed corpus went missing";
}

TEST(ring_fuzz_corpus, random_inputs_keep_the_ring_invariants) {
  std::mt19937_64 rng(31337);
#if defined(__SANITIZE_ADDRESS__)
  constexpr int inputs = 500;
#else
  constexpr int inputs = 3000;
#endif
  for (int i = 0; i < inputs; ++i) {
    std::vector<std::uint8_t> input(rng() % 1500);
    for (auto& b : input) b = static_cast<std::uint8_t>(rng());
    if (!input.empty() && i % 2 == 0) input[0] |= procsup::fuzz::flag_repair;
    if (!input.empty() && i % 4 == 0) input[0] |= procsup::fuzz::flag_fresh;
    ASSERT_EQ(procsup::fuzz::run_ring_input(input.data(), input.size()), "") << "input " << i;
  }
}
