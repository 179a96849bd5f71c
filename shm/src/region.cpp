// shared_region: memfd + MAP_SHARED; sealed so that no peer can shrink it under the other.
#include "procsup/shm/region.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace procsup::shm {

namespace {
std::size_t page_round(std::size_t n) {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return (n + page - 1) / page * page;
}
}  // namespace

shared_region::shared_region(shared_region&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)), fd_(std::move(o.fd_)) {}

shared_region& shared_region::operator=(shared_region&& o) noexcept {
  if (this != &o) {
    if (data_) ::munmap(data_, size_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    fd_ = std::move(o.fd_);
  }
  return *this;
}

shared_region::~shared_region() {
  if (data_) ::munmap(data_, size_);
}

void shared_region::leak() noexcept {
  data_ = nullptr;
  size_ = 0;
  (void)fd_.release();
}

shared_region shared_region::create(std::size_t size, const char* name) {
  if (size == 0) throw std::invalid_argument("shared_region::create: size 0");
  size = page_round(size);
  sys::unique_fd fd(sys::check("memfd_create", [&] {
    return ::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  }));
  sys::check("ftruncate(memfd)", [&] { return ::ftruncate(fd.get(), static_cast<off_t>(size)); });
  sys::check("fcntl(F_ADD_SEALS)", [&] {
    return ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  });
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap(memfd)");
  return shared_region(p, size, std::move(fd));
}

shared_region shared_region::attach(int raw_fd) {
  sys::unique_fd fd(raw_fd);
  int seals = ::fcntl(fd.get(), F_GET_SEALS);
  if (seals == -1)
    throw std::system_error(errno, std::generic_category(),
                            "shared_region::attach: fd " + std::to_string(raw_fd) + " is not a memfd");
  if (!(seals & F_SEAL_SHRINK))
    throw std::runtime_error("shared_region::attach: memfd " + std::to_string(raw_fd) +
                             " is not sealed against shrinking");
  struct stat st {};
  sys::check("fstat(memfd)", [&] { return ::fstat(fd.get(), &st); });
  if (st.st_size <= 0) throw std::runtime_error("shared_region::attach: memfd is empty");
  const auto size = static_cast<std::size_t>(st.st_size);
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap(attached memfd)");
  // Our own copy of the fd must not leak into grandchildren.
  ::fcntl(fd.get(), F_SETFD, FD_CLOEXEC);
  return shared_region(p, size, std::move(fd));
}

}  // namespace procsup::shm
