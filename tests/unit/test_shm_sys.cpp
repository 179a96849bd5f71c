// The sys layer under shm: unique_fd's ownership, the result type, errno text and signal names.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

#include "procsup/sys/error.hpp"
#include "procsup/sys/result.hpp"
#include "procsup/sys/signal.hpp"
#include "procsup/sys/unique_fd.hpp"

using procsup::sys::unique_fd;
namespace sys = procsup::sys;

namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

std::pair<int, int> make_pipe() {
  int p[2];
  EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
  return {p[0], p[1]};
}

TEST(SysUniqueFd, ClosesOnDestructionAndReset) {
  auto [r, w] = make_pipe();
  {
    unique_fd a(r);
    unique_fd b(w);
    EXPECT_TRUE(a);
    EXPECT_EQ(a.get(), r);
    b.reset();  // closes w now
    EXPECT_FALSE(b);
    EXPECT_FALSE(is_open(w));
    EXPECT_TRUE(is_open(r));
  }
  EXPECT_FALSE(is_open(r));
}

TEST(SysUniqueFd, MoveTransfersOwnershipAndAssignmentClosesTheOldFd) {
  auto [r, w] = make_pipe();
  unique_fd a(r);
  unique_fd b(std::move(a));
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  EXPECT_EQ(b.get(), r);
  unique_fd c(w);
  c = std::move(b);  // closes w, now owns r
  EXPECT_FALSE(is_open(w));
  EXPECT_EQ(c.get(), r);
  EXPECT_TRUE(is_open(r));
  c = std::move(c);  // self-move keeps the fd
  EXPECT_TRUE(is_open(r));
}

TEST(SysUniqueFd, ReleaseGivesTheFdUp) {
  auto [r, w] = make_pipe();
  int raw = -1;
  {
    unique_fd a(r);
    raw = a.release();
    EXPECT_FALSE(a);
  }
  EXPECT_EQ(raw, r);
  EXPECT_TRUE(is_open(r));
  ::close(r);
  ::close(w);
}

TEST(SysUniqueFd, CloseKeepsErrno) {
  auto [r, w] = make_pipe();
  ::close(w);
  errno = ENOENT;
  { unique_fd a(r); }
  EXPECT_EQ(errno, ENOENT);
  sys::close_fd(-1);  // nothing
  EXPECT_EQ(errno, ENOENT);
}

TEST(SysCheck, ThrowsSystemErrorNamingTheCall) {
  try {
    sys::check("fcntl(-1)", [] { return ::fcntl(-1, F_GETFD); });
    FAIL() << "no exception";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EBADF);
    EXPECT_NE(std::string(e.what()).find("fcntl(-1)"), std::string::npos) << e.what();
  }
}

sys::result<int> parse_positive(int v) {
  if (v <= 0) return sys::fail(EINVAL, "parse " + std::to_string(v));
  return v * 2;
}

TEST(SysResult, HoldsAValueOrAnError) {
  auto ok = parse_positive(21);
  ASSERT_TRUE(ok);
  EXPECT_TRUE(ok.has_value());
  EXPECT_EQ(*ok, 42);
  EXPECT_EQ(ok.value_or(0), 42);
  EXPECT_THROW((void)ok.error(), std::bad_variant_access);

  auto bad = parse_positive(-1);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, EINVAL);
  EXPECT_EQ(bad.error().what, "parse -1");
  EXPECT_EQ(bad.error().message(), "parse -1: " + sys::errno_text(EINVAL));
  EXPECT_EQ(bad.value_or(7), 7);
  EXPECT_THROW((void)bad.value(), std::bad_variant_access);
}

TEST(SysResult, CarriesMoveOnlyValuesAndCustomErrors) {
  auto [r, w] = make_pipe();
  ::close(w);
  sys::result<unique_fd> fd = unique_fd(r);
  ASSERT_TRUE(fd);
  unique_fd owned = std::move(fd).value();
  EXPECT_EQ(owned.get(), r);

  sys::result<int, std::string> custom = sys::unexpected(std::string("no"));
  ASSERT_FALSE(custom);
  EXPECT_EQ(custom.error(), "no");
}

TEST(SysResult, VoidResult) {
  sys::result<void> fine;
  EXPECT_TRUE(fine);
  errno = EACCES;
  sys::result<void> failed = sys::fail("write x");
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, EACCES);
  EXPECT_EQ(failed.error().message(), "write x: " + sys::errno_text(EACCES));
  sys::result<void> not_errno = sys::fail(0, "a reason without errno");
  EXPECT_EQ(not_errno.error().message(), "a reason without errno");
}

TEST(SysErrnoText, KnownAndUnknown) {
  EXPECT_EQ(sys::errno_text(ENOENT), "No such file or directory");
  EXPECT_FALSE(sys::errno_text(99999).empty());
}

TEST(SysSignalName, NamedAndUnnamed) {
  EXPECT_EQ(sys::signal_name(SIGTERM), "SIGTERM");
  EXPECT_EQ(sys::signal_name(SIGSEGV), "SIGSEGV");
  // Real-time signals have no abbreviation: the number, after "SIG".
  EXPECT_EQ(sys::signal_name(SIGRTMIN + 1), "SIG" + std::to_string(SIGRTMIN + 1));
  EXPECT_EQ(sys::signal_name(0), "SIG0");
}

}  // namespace
