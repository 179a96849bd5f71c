// Writes the ring fuzz seed corpus: honest rings (frames, wraps, padding, the largest frame,
// zero-length frames, a full ring), honest scripts, and broken rings (the nasty values of
// tests/fault/test_shm_ring_corruption.cpp). Usage: shm_ring_corpus_gen DIR
// (regenerate with: cmake --build BUILD --target shm_ring_corpus_gen && BUILD/shm_ring_corpus_gen tests/fuzz/corpus)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "procsup/shm/ring.hpp"
#include "ring_fuzz_target.hpp"

using namespace procsup::shm;
using namespace procsup::fuzz;

namespace {

std::string out_dir;
int written = 0;

void save(const std::string& name, const std::vector<std::uint8_t>& input) {
  std::ofstream(out_dir + "/" + name, std::ios::binary)
      .write(reinterpret_cast<const char*>(input.data()), static_cast<std::streamsize>(input.size()));
  ++written;
}

unsigned cap_log(std::size_t cap) {
  unsigned n = 0;
  while ((std::size_t{64} << n) < cap) ++n;
  return n;
}

// A script builder.
struct script {
  std::vector<std::uint8_t> b;
  script& u8(std::uint8_t v) { b.push_back(v); return *this; }
  script& u16(std::uint16_t v) { return u8(static_cast<std::uint8_t>(v)).u8(static_cast<std::uint8_t>(v >> 8)); }
  script& u64(std::uint64_t v) { for (int k = 0; k < 8; ++k) u8(static_cast<std::uint8_t>(v >> (8 * k))); return *this; }
  script& read(int n = 1) { for (int i = 0; i < n; ++i) u8(op_read); return *this; }
  script& write(std::uint8_t tag, std::uint16_t size) { return u8(op_write).u8(tag).u16(size); }
  script& reserve(std::uint16_t want, std::uint16_t used) { return u8(op_reserve).u16(want).u16(used); }
  script& poke_word(std::uint16_t index, std::uint64_t v) { return u8(op_poke_word).u16(index).u64(v); }
  script& set_head(std::uint8_t mode, std::uint64_t v) { return u8(op_set_head).u8(mode).u64(v); }
  script& set_tail(std::uint8_t mode, std::uint64_t v) { return u8(op_set_tail).u8(mode).u64(v); }
  script& blocking(std::uint8_t which, std::uint16_t size) { return u8(op_blocking).u8(which).u16(size); }
  script& wakeups(std::uint8_t which, std::uint16_t size) { return u8(op_wakeups).u8(which).u16(size); }
  script& reattach(std::uint8_t which) { return u8(op_reattach).u8(which); }
};

// A real ring image of `cap` bytes, positions at `start`, with `fill` run on its writer.
struct image {
  image(std::size_t cap, std::uint64_t start, const std::function<void(ring_writer&)>& fill = {}) : capacity(cap) {
    void* p = nullptr;
    if (::posix_memalign(&p, 64, ring_bytes(cap)) != 0) std::abort();
    mem = static_cast<std::uint8_t*>(p);
    std::memset(mem, 0, ring_bytes(cap));
    auto* h = format_ring(mem, ring_bytes(cap), cap);
    h->head.store(start);
    h->tail.store(start);
    ring_writer w(mem, ring_bytes(cap));
    if (fill) fill(w);
  }
  ~image() { std::free(mem); }
  image(const image&) = delete;
  image& operator=(const image&) = delete;
  ring_header* header() const { return reinterpret_cast<ring_header*>(mem); }
  void put_word(std::uint64_t pos, std::uint64_t w) const {
    std::memcpy(mem + sizeof(ring_header) + (pos & (capacity - 1)), &w, 8);
  }
  void save_as(const std::string& name, const script& s = script().read(40), std::uint8_t extra_flags = 0) const {
    ::save(name, make_input(static_cast<std::uint8_t>(capacity_flags(cap_log(capacity)) | extra_flags), s.b, mem,
                            ring_bytes(capacity)));
  }
  std::size_t capacity;
  std::uint8_t* mem;
};

void frames(ring_writer& w, int n, std::size_t size) {
  const std::vector<std::byte> bytes(size, std::byte{0x42});
  for (int i = 0; i < n; ++i) (void)w.try_write(static_cast<std::uint32_t>(i), bytes);
}

std::uint64_t word(std::uint32_t length, std::uint32_t tag) { return length | (std::uint64_t{tag} << 32); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  out_dir = argv[1];

  // ---- honest rings, as images
  for (std::size_t cap : {64, 256, 4096}) image(cap, 0).save_as("valid-empty-cap" + std::to_string(cap));
  image(256, 0, [](ring_writer& w) { frames(w, 5, 20); }).save_as("valid-frames-cap256");
  image(256, 200, [](ring_writer& w) { frames(w, 3, 30); }).save_as("valid-wrap-padding-cap256");
  image(256, 248, [](ring_writer& w) { frames(w, 2, 100); }).save_as("valid-padding-8-bytes-cap256");
  image(1024, 512, [](ring_writer& w) { frames(w, 1, ring_max_payload(1024)); }).save_as("valid-largest-frame-cap1024");
  image(128, 64, [](ring_writer& w) { frames(w, 16, 0); }).save_as("valid-zero-length-frames-full-cap128");
  image(256, 0, [](ring_writer& w) { frames(w, 8, 24); }).save_as("valid-full-cap256");
  image(4096, (std::uint64_t{1} << 39) - 64, [](ring_writer& w) { frames(w, 30, 77); }).save_as("valid-late-lap-cap4096");

  // ---- honest scripts on a fresh ring
  const std::uint8_t fresh = flag_repair | flag_fresh;
  auto fresh_script = [&](const std::string& name, std::size_t cap, const script& s, std::uint64_t start = 0) {
    image img(cap, start);
    img.save_as(name, s, fresh);
  };
  fresh_script("script-write-read", 256, script().write(1, 10).write(2, 0).read(2).write(3, 100).read());
  fresh_script("script-wrap-many", 256, script().write(1, 50).read().write(2, 50).read().write(3, 90).write(4, 90).read(3), 160);
  fresh_script("script-reserve-commit", 512, script().reserve(100, 40).read().reserve(200, 201).reserve(10, 10).read());
  fresh_script("script-full-then-drain", 128, script().write(1, 56).write(2, 56).write(3, 56).read().write(4, 56).read(3));
  fresh_script("script-too-large", 128, script().write(1, 57).write(2, 56).read(2));
  fresh_script("script-blocking-zero-timeout", 256, script().blocking(1, 30).blocking(0, 0).blocking(0, 0));
  fresh_script("script-wakeups", 256, script().wakeups(0, 0).write(1, 8).wakeups(1, 100).read().wakeups(3, 0));
  fresh_script("script-reattach", 256, script().write(1, 8).read().reattach(1).write(2, 16).reattach(0).write(3, 0).read(2));

  // ---- broken headers
  {
    image img(256, 0, [](ring_writer& w) { frames(w, 2, 8); });
    img.header()->magic = 0x1122334455667788ULL;
    img.save_as("broken-magic");
  }
  {
    image img(256, 0);
    img.header()->version = 7;
    img.save_as("broken-version");
  }
  {
    image img(256, 0);
    img.header()->header_size = 64;
    img.save_as("broken-header-size");
  }
  for (std::uint64_t cap : {std::uint64_t{100}, std::uint64_t{512}, std::uint64_t{1} << 33}) {
    image img(256, 0);
    img.header()->capacity = cap;
    img.save_as("broken-capacity-" + std::to_string(cap));
  }

  // ---- broken frames
  {
    image img(256, 0, [](ring_writer& w) { frames(w, 3, 16); });
    img.put_word(0, word(0xffffffffu, 1));
    img.save_as("broken-huge-length");
  }
  {
    image img(256, 0, [](ring_writer& w) { frames(w, 7, 24); });
    img.put_word(0, word(128, 1));
    img.save_as("broken-length-beyond-max-payload");
  }
  {
    image img(256, 0, [](ring_writer& w) { frames(w, 1, 8); });
    img.put_word(0, word(64, 1));
    img.save_as("broken-length-beyond-head");
  }
  {
    image img(256, 240, [](ring_writer& w) { frames(w, 1, 8); frames(w, 1, 40); });
    img.put_word(240, word(40, 1));
    img.save_as("broken-frame-crosses-end");
  }
  // ---- broken positions
  {
    image img(256, 0, [](ring_writer& w) { frames(w, 2, 8); });
    img.header()->head.store(12);
    img.save_as("broken-misaligned-head");
  }
  {
    image img(256, 512, [](ring_writer& w) { frames(w, 2, 8); });
    img.header()->head.store(504);
    img.save_as("broken-head-behind-tail");
  }
  {
    image img(256, 0);
    img.header()->head.store(264);
    img.save_as("broken-head-too-far-ahead");
  }
  {
    image img(256, 0);
    img.header()->head.store(~std::uint64_t{7});
    img.save_as("broken-huge-head");
  }
  {
    image img(256, 0, [](ring_writer& w) { frames(w, 2, 8); });
    img.header()->tail.store(4);
    img.save_as("broken-misaligned-tail", script().read(3).write(1, 8));
  }
  {
    image img(256, 0, [](ring_writer& w) { frames(w, 2, 8); });
    img.header()->tail.store(64);
    img.save_as("broken-tail-ahead-of-head", script().write(1, 8).write(1, 100).write(1, 100));
  }
  // ---- padding lies
  {
    image img(256, 224, [](ring_writer& w) { frames(w, 1, 100); });  // padding at 224 (length 24)
    img.put_word(224, word(8, padding_tag));
    img.save_as("broken-padding-length");
  }
  {
    image img(256, 0, [](ring_writer& w) { frames(w, 8, 24); });
    img.put_word(0, word(248, padding_tag));
    img.save_as("broken-padding-at-start");
  }
  {
    image img(256, 192);
    img.put_word(192, word(56, padding_tag));
    img.header()->head.store(256);
    img.save_as("broken-padding-alone");
  }
  {
    image img(256, 192);
    img.put_word(192, word(56, padding_tag));
    img.put_word(0, word(248, padding_tag));
    img.header()->head.store(320);
    img.save_as("broken-two-paddings");
  }
  // ---- a peer scribbling between our calls
  fresh_script("scribble-head-backwards", 256, script().write(1, 8).write(2, 8).read().set_head(0, 8).read());
  fresh_script("scribble-tail-backwards", 256, script().write(1, 100).read().write(2, 100).set_tail(1, 3).write(3, 100).write(4, 100));
  fresh_script("scribble-frame-length", 256, script().write(1, 8).write(2, 8).poke_word(40, word(300, 2)).read(2));
  fresh_script("scribble-capacity", 256, script().write(1, 8).poke_word(2, 1 << 20).reattach(1).read().write(2, 9).read());
  fresh_script("scribble-head-plausible", 256, script().write(1, 8).set_head(1, 5).read(6));

  std::printf("wrote %d corpus files to %s\n", written, out_dir.c_str());
  return 0;
}
