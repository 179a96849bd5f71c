// Size-rotated output files written by procsup (see log_file.hpp).
#include "procsup/daemon/log_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace procsup::daemon {
namespace {

log_file_error make_error(int e, const std::string& path, const char* what) noexcept {
  log_file_error err;
  err.error = e;
  try {
    err.message = path + ": " + what + ": " + std::strerror(e);
  } catch (...) {
  }
  return err;
}

}  // namespace

log_file::log_file(std::string path, std::uint64_t max_size, int keep) noexcept
    : path_(std::move(path)), max_size_(max_size == 0 ? 1 : max_size), keep_(keep < 0 ? 0 : keep) {}

log_file::~log_file() { close_current(); }

void log_file::close_current() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  size_ = 0;
}

std::optional<log_file_error> log_file::open_current() noexcept {
  int fd;
  do {
    fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return make_error(errno, path_, "open");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return make_error(e, path_, "fstat");
  }
  fd_ = fd;
  size_ = static_cast<std::uint64_t>(st.st_size);
  return std::nullopt;
}

std::optional<log_file_error> log_file::write(std::string_view data) noexcept {
  auto write_all = [this](std::string_view part) -> std::optional<log_file_error> {
    while (!part.empty()) {
      const ssize_t n = ::write(fd_, part.data(), part.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int e = n < 0 ? errno : EIO;
        close_current();  // the next write reopens
        return make_error(e, path_, "write");
      }
      size_ += static_cast<std::uint64_t>(n);
      part.remove_prefix(static_cast<std::size_t>(n));
    }
    return std::nullopt;
  };

  while (!data.empty()) {
    if (fd_ < 0)
      if (auto err = open_current()) return err;
    const std::uint64_t room = size_ >= max_size_ ? 0 : max_size_ - size_;
    if (data.size() <= room) return write_all(data);
    // Does not fit: end this file on a whole line if one fits, else rotate first (the line may
    // fit an empty file), else (a line longer than max_size into an empty file) cut it.
    std::size_t cut;
    const auto nl = data.substr(0, static_cast<std::size_t>(room)).rfind('\n');
    if (nl != std::string_view::npos) cut = nl + 1;
    else if (size_ > 0) cut = 0;
    else cut = static_cast<std::size_t>(room);
    if (cut > 0)
      if (auto err = write_all(data.substr(0, cut))) return err;
    data.remove_prefix(cut);
    if (auto err = rotate()) return err;
  }
  return std::nullopt;
}

std::optional<log_file_error> log_file::rotate() noexcept {
  close_current();
  std::optional<log_file_error> first_error;
  try {
    if (keep_ == 0) {
      if (::unlink(path_.c_str()) != 0 && errno != ENOENT) first_error = make_error(errno, path_, "unlink");
    } else {
      // Oldest first, so no rename overwrites a file that is still to be moved.
      for (int i = keep_ - 1; i >= 1; --i) {
        const std::string from = rotated_path(i);
        if (::rename(from.c_str(), rotated_path(i + 1).c_str()) != 0 && errno != ENOENT && !first_error)
          first_error = make_error(errno, from, "rename");
      }
      if (::rename(path_.c_str(), rotated_path(1).c_str()) != 0 && errno != ENOENT && !first_error)
        first_error = make_error(errno, path_, "rename");
    }
    // Left over from a larger log_keep before (a changed config): the bound is log_keep now.
    for (int i = keep_ + 1; i <= keep_ + 1000; ++i)
      if (::unlink(rotated_path(i).c_str()) != 0) break;
  } catch (...) {  // std::bad_alloc from a path string
    if (!first_error) first_error = make_error(ENOMEM, path_, "rotate");
  }
  if (first_error) return first_error;  // write() drops the rest; the next write tries again
  return open_current();
}

}  // namespace procsup::daemon
