// log_file (size rotation of program output files) and output_tail (the bounded per-instance
// tail behind `ctl logs`), on a temporary directory.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "procsup/daemon/log_file.hpp"
#include "procsup/daemon/output.hpp"

namespace {

namespace fs = std::filesystem;
namespace pd = procsup::daemon;

class log_rotation : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/procsup-logs-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/out.log";
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string read(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }
  static bool exists(const std::string& p) { return fs::exists(p); }
  std::uintmax_t total_size() const {
    std::uintmax_t total = 0;
    for (const auto& e : fs::directory_iterator(dir_)) total += e.file_size();
    return total;
  }

  std::string dir_;
  std::string path_;
};

TEST_F(log_rotation, writes_below_the_limit_append_to_one_file) {
  pd::log_file f(path_, 1000, 3);
  EXPECT_FALSE(f.write("one\n"));
  EXPECT_FALSE(f.write("two\n"));
  EXPECT_EQ(read(path_), "one\ntwo\n");
  EXPECT_EQ(f.size(), 8U);
  EXPECT_FALSE(exists(f.rotated_path(1)));
}

TEST_F(log_rotation, rotation_keeps_log_keep_files_none_larger_than_max_size) {
  pd::log_file f(path_, 1000, 3);
  std::string last_line;
  for (int i = 0; i < 1000; ++i) {
    last_line = "line " + std::to_string(i) + " " + std::string(40, 'y') + "\n";
    ASSERT_FALSE(f.write(last_line));
  }
  EXPECT_TRUE(exists(path_));
  for (int n = 1; n <= 3; ++n) {
    ASSERT_TRUE(exists(f.rotated_path(n))) << n;
    EXPECT_LE(fs::file_size(f.rotated_path(n)), 1000U);
    EXPECT_GT(fs::file_size(f.rotated_path(n)), 900U);  // filled up to the last whole line
  }
  EXPECT_FALSE(exists(f.rotated_path(4)));
  EXPECT_LE(fs::file_size(path_), 1000U);
  EXPECT_LE(total_size(), 4000U);  // (log_keep + 1) * log_max_size
  const std::string current = read(path_);
  EXPECT_EQ(current.substr(current.size() - last_line.size()), last_line);
}

TEST_F(log_rotation, files_are_cut_on_whole_lines_and_keep_their_order) {
  pd::log_file f(path_, 100, 2);
  for (int i = 0; i < 30; ++i) ASSERT_FALSE(f.write("l" + std::to_string(i) + " " + std::string(10, 'z') + "\n"));
  // Oldest to newest: .2, .1, current; every file starts and ends on a line boundary.
  const std::string all = read(f.rotated_path(2)) + read(f.rotated_path(1)) + read(path_);
  for (const auto& p : {f.rotated_path(2), f.rotated_path(1), path_}) {
    const std::string s = read(p);
    ASSERT_FALSE(s.empty()) << p;
    EXPECT_EQ(s.back(), '\n') << p;
    EXPECT_EQ(s.front(), 'l') << p;
  }
  std::istringstream lines(all);
  std::string line;
  int previous = -1;
  while (std::getline(lines, line)) {
    const int n = std::stoi(line.substr(1));
    if (previous >= 0) {  // (the oldest lines are gone)
      EXPECT_EQ(n, previous + 1) << line;
    }
    previous = n;
  }
  EXPECT_EQ(previous, 29);
}

TEST_F(log_rotation, a_write_larger_than_max_size_is_split_over_files) {
  pd::log_file f(path_, 1000, 5);
  ASSERT_FALSE(f.write(std::string(3500, 'x')));  // no newline: hard cuts at max_size
  EXPECT_EQ(fs::file_size(f.rotated_path(3)), 1000U);
  EXPECT_EQ(fs::file_size(f.rotated_path(2)), 1000U);
  EXPECT_EQ(fs::file_size(f.rotated_path(1)), 1000U);
  EXPECT_EQ(fs::file_size(path_), 500U);
  EXPECT_EQ(total_size(), 3500U);
}

TEST_F(log_rotation, keep_zero_truncates_instead_of_rotating) {
  pd::log_file f(path_, 10, 0);
  ASSERT_FALSE(f.write("123456789\n"));
  ASSERT_FALSE(f.write("abc\n"));
  EXPECT_EQ(read(path_), "abc\n");
  EXPECT_FALSE(exists(f.rotated_path(1)));
}

TEST_F(log_rotation, an_existing_file_is_continued_and_counted) {
  std::ofstream(path_) << std::string(90, 'a') << "\n";
  pd::log_file f(path_, 100, 1);
  ASSERT_FALSE(f.write("0123456789\n"));  // 91 + 11 > 100: rotate first
  EXPECT_EQ(fs::file_size(f.rotated_path(1)), 91U);
  EXPECT_EQ(read(path_), "0123456789\n");
}

TEST_F(log_rotation, rotated_files_beyond_log_keep_are_deleted) {
  for (int n = 1; n <= 6; ++n) std::ofstream(path_ + "." + std::to_string(n)) << "old\n";
  pd::log_file f(path_, 10, 2);
  ASSERT_FALSE(f.write("123456789\n"));
  ASSERT_FALSE(f.write("next\n"));
  EXPECT_TRUE(exists(f.rotated_path(1)));
  EXPECT_TRUE(exists(f.rotated_path(2)));
  for (int n = 3; n <= 6; ++n) EXPECT_FALSE(exists(f.rotated_path(n))) << n;
}

TEST_F(log_rotation, the_file_is_opened_close_on_exec) {
  pd::log_file f(path_, 1000, 1);
  ASSERT_FALSE(f.open());
  int found = 0;
  for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    if (fs::read_symlink(e.path(), ec) != fs::path(path_)) continue;
    const int fd = std::stoi(e.path().filename().string());
    EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC);
    EXPECT_TRUE(::fcntl(fd, F_GETFL) & O_APPEND);
    ++found;
  }
  EXPECT_EQ(found, 1);
}

TEST_F(log_rotation, an_unopenable_path_is_an_error_naming_it) {
  pd::log_file f(dir_ + "/missing/out.log", 1000, 1);
  const auto err = f.write("x\n");
  ASSERT_TRUE(err);
  EXPECT_EQ(err->error, ENOENT);
  EXPECT_NE(err->message.find(dir_ + "/missing/out.log"), std::string::npos) << err->message;
}

pd::output_line make_line(std::uint64_t seq, std::string text) {
  return pd::output_line{seq, "api", "api", "stdout", std::move(text)};
}

TEST(output_tail, keeps_the_last_lines_up_to_the_line_bound) {
  pd::output_tail tail(5, 1 << 20);
  for (int i = 0; i < 12; ++i) tail.push(make_line(static_cast<std::uint64_t>(i), "l" + std::to_string(i)));
  EXPECT_EQ(tail.size(), 5U);
  const auto last = tail.last(3);
  ASSERT_EQ(last.size(), 3U);
  EXPECT_EQ(last[0].text, "l9");
  EXPECT_EQ(last[2].text, "l11");
  EXPECT_EQ(tail.last(100).size(), 5U);
}

TEST(output_tail, keeps_the_last_lines_up_to_the_byte_bound) {
  pd::output_tail tail(1000, 100);
  for (int i = 0; i < 50; ++i) tail.push(make_line(static_cast<std::uint64_t>(i), std::string(30, 'a')));
  EXPECT_LE(tail.bytes(), 100U);
  EXPECT_EQ(tail.size(), 3U);
}

TEST(output_line, as_json_has_line_program_id_and_stream) {
  const auto j = pd::to_json(pd::output_line{1, "api", "api:1", "stderr", "hello"});
  EXPECT_EQ(j, nlohmann::json({{"line", "hello"}, {"program", "api"}, {"id", "api:1"}, {"stream", "stderr"}}));
}

}  // namespace
