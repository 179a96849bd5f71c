// shm::region_pool: regions carved from few memfd chunks, one mapping per chunk, kept out of
// forks; a forked child maps only its own region (region_source); released slots come back
// zero-filled; empty chunks go away; a child's copies of the pool and its regions never touch the
// parent's chunks.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "helpers/process_guard.hpp"
#include "procsup/shm/region.hpp"

using namespace procsup::shm;
using procsup::testing::describe_wait_status;
using procsup::testing::mapping_count;
using procsup::testing::fork_child;
using procsup::testing::wait_child;

namespace {

class region_pool_test : public procsup::testing::process_guard_test {};

std::size_t page() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }

// True if `p` is inside a mapping of this process (msync fails with ENOMEM where nothing is).
bool mapped(const void* p) {
  auto a = reinterpret_cast<std::uintptr_t>(p) & ~(page() - 1);
  return ::msync(reinterpret_cast<void*>(a), page(), MS_ASYNC) == 0 || errno != ENOMEM;
}

bool exit_code_is(int status, int code) { return WIFEXITED(status) && WEXITSTATUS(status) == code; }

}  // namespace

TEST_F(region_pool_test, regions_share_a_chunk_until_it_is_full_then_a_new_chunk_starts) {
  region_pool pool(4);
  const std::size_t before = mapping_count();
  std::vector<shared_region> r;
  for (int i = 0; i < 4; ++i) r.push_back(pool.allocate(3 * page() + 1));
  EXPECT_EQ(pool.chunks(), 1u);
  EXPECT_EQ(r[0].size(), 4 * page());  // rounded up to whole pages
  for (int i = 1; i < 4; ++i) {
    EXPECT_TRUE(r[i].pooled());
    EXPECT_EQ(r[i].fd(), -1) << "a pooled region never hands out its chunk's memfd";
    EXPECT_EQ(static_cast<std::byte*>(r[i].data()) - static_cast<std::byte*>(r[0].data()),
              static_cast<std::ptrdiff_t>(i * r[0].size()));
    EXPECT_EQ(r[i].source().offset, static_cast<off_t>(i * r[0].size()));
    EXPECT_EQ(r[i].source().fd, r[0].source().fd);
  }
  EXPECT_LE(mapping_count(), before + 1) << "four regions, one mapping";
  r.push_back(pool.allocate(page()));  // another size: a chunk of its own
  r.push_back(pool.allocate(page()));  // shares it
  r.push_back(pool.allocate(4 * page()));  // the first chunk is full
  EXPECT_EQ(pool.chunks(), 3u);
}

TEST_F(region_pool_test, a_released_slot_comes_back_zero_filled_and_an_empty_chunk_is_unmapped) {
  region_pool pool(2);
  auto a = pool.allocate(page());
  auto b = pool.allocate(page());
  void* where = a.data();
  std::memset(a.data(), 0xab, page());
  a = shared_region{};  // released: its slot is free again
  EXPECT_EQ(pool.chunks(), 1u);
  auto c = pool.allocate(page());
  ASSERT_EQ(c.data(), where) << "the free slot is reused";
  const auto* bytes = static_cast<const unsigned char*>(c.data());
  for (std::size_t i = 0; i < page(); ++i) ASSERT_EQ(bytes[i], 0) << "byte " << i << " of a reused slot";
  b = shared_region{};
  c = shared_region{};
  EXPECT_EQ(pool.chunks(), 0u) << "an empty chunk is unmapped and its memfd closed (the guard checks the fd)";
  EXPECT_FALSE(mapped(where));
}

TEST_F(region_pool_test, regions_may_outlive_their_pool) {
  shared_region r;
  {
    region_pool pool(8);
    r = pool.allocate(page());
  }
  std::memset(r.data(), 1, page());
  r = shared_region{};  // the chunk goes with its last region
}

TEST_F(region_pool_test, a_forked_child_inherits_no_region_and_maps_only_its_own_from_the_source) {
  region_pool pool(4);
  auto mine = pool.allocate(page());
  auto sibling = pool.allocate(page());
  std::memcpy(sibling.data(), "sibling", 8);
  const region_source src = mine.source();
  ASSERT_GE(src.fd, 0);
  const pid_t pid = fork_child([&] {
    if (mapped(mine.data()) || mapped(sibling.data())) return 10;  // the chunk is MADV_DONTFORK
    void* at = ::mmap(src.addr, src.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, src.fd, src.offset);
    if (at != src.addr) return 11;
    if (mapped(sibling.data())) return 12;  // only its own slot
    std::memcpy(at, "hello", 6);
    return 0;
  });
  const int status = wait_child(pid);
  ASSERT_TRUE(exit_code_is(status, 0)) << describe_wait_status(status);
  EXPECT_STREQ(static_cast<const char*>(mine.data()), "hello");
  EXPECT_STREQ(static_cast<const char*>(sibling.data()), "sibling");
}

TEST_F(region_pool_test, a_childs_copies_never_touch_the_parents_chunks) {
  region_pool pool(4);
  auto r = pool.allocate(page());
  std::memcpy(r.data(), "parent", 7);
  const pid_t pid = fork_child([&] {
    // The child's copy of r is released here: it must not punch a hole in the parent's slot
    // (through a memfd number that is the parent's, or by now another file's).
    r = shared_region{};
    // The inherited pool starts over with chunks of its own.
    auto own = pool.allocate(page());
    std::memcpy(own.data(), "child", 6);
    if (pool.chunks() != 1) return 20;
    return std::strcmp(static_cast<const char*>(own.data()), "child") == 0 ? 0 : 21;
  });
  const int status = wait_child(pid);
  ASSERT_TRUE(exit_code_is(status, 0)) << describe_wait_status(status);
  EXPECT_STREQ(static_cast<const char*>(r.data()), "parent");
  EXPECT_EQ(pool.chunks(), 1u);
}
