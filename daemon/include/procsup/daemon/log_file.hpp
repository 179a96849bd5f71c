// A program's output file, written by procsup itself (never by the child, so it can be rotated
// under a running child) and rotated by size: `file` -> `file.1` -> ... -> `file.<keep>`, older
// ones deleted. Disk use stays within (keep + 1) * max_size.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace procsup::daemon {

struct log_file_error {
  int error = 0;        // errno
  std::string message;  // names the file, e.g. "/var/log/api.log: write: No space left on device"
};

// Loop thread only (not thread-safe). Never throws.
class log_file {
 public:
  // Nothing is opened yet: the first write opens (O_APPEND | O_CLOEXEC, 0644) and continues an
  // existing file, counting its size. max_size 0 is taken as 1 byte; keep < 0 as 0 (keep == 0:
  // the file is truncated instead of rotated).
  log_file(std::string path, std::uint64_t max_size, int keep) noexcept;
  ~log_file();
  log_file(const log_file&) = delete;
  log_file& operator=(const log_file&) = delete;

  // Opens the file now if it is not open (write() does it too): to report a bad path early.
  std::optional<log_file_error> open() noexcept { return fd_ >= 0 ? std::nullopt : open_current(); }

  // Appends `data`. Whenever the rest would make the file pass max_size, writes the part up to
  // the last newline that still fits (a whole-line cut where there is one, else a hard cut at
  // max_size), rotates, and goes on; so no file is ever larger than max_size. On an error the
  // rest of `data` is dropped (the caller logs it; a full disk must not stall the loop) and the
  // next write tries again (reopening the file).
  std::optional<log_file_error> write(std::string_view data) noexcept;

  // Renames file -> file.1 -> ... now (also used by write). Deletes file.<keep+1> and beyond.
  std::optional<log_file_error> rotate() noexcept;

  // New limits (a reloaded config), from the next write on.
  void set_limits(std::uint64_t max_size, int keep) noexcept {
    max_size_ = max_size == 0 ? 1 : max_size;
    keep_ = keep < 0 ? 0 : keep;
  }

  const std::string& path() const noexcept { return path_; }
  std::uint64_t size() const noexcept { return size_; }  // of the current file
  std::uint64_t max_size() const noexcept { return max_size_; }
  int keep() const noexcept { return keep_; }
  // "path.N" (N >= 1): the N-th newest rotated file.
  std::string rotated_path(int n) const { return path_ + "." + std::to_string(n); }

 private:
  std::optional<log_file_error> open_current() noexcept;
  void close_current() noexcept;

  std::string path_;
  std::uint64_t max_size_;
  int keep_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

}  // namespace procsup::daemon
