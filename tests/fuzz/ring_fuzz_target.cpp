// The ring fuzz harness (see ring_fuzz_target.hpp): builds a mapping from the input, then runs
// the reader (frame and position validation) and the writer (tail validation) over it, with the
// peer scribbling in between. Invariants: no crash / OOB (the sanitizers watch), every frame view
// lies inside the data area, corruption is sticky and explained, and an honest ring reads back
// exactly what was written.
#include "ring_fuzz_target.hpp"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <stdexcept>

#include "procsup/shm/ring.hpp"

namespace procsup::fuzz {

namespace {

using namespace procsup::shm;

struct free_deleter {
  void operator()(void* p) const noexcept { std::free(p); }
};

class script_reader {
 public:
  script_reader(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}
  bool done() const noexcept { return i_ >= n_; }
  std::uint8_t u8() noexcept { return i_ < n_ ? p_[i_++] : 0; }
  std::uint16_t u16() noexcept { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
  std::uint64_t u64() noexcept {
    std::uint64_t v = 0;
    for (int k = 0; k < 8; ++k) v |= std::uint64_t{u8()} << (8 * k);
    return v;
  }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
  std::size_t i_ = 0;
};

// The content an honest writer puts in frame number `n` (so the reader can check it).
std::byte content(std::uint64_t n, std::size_t i) { return std::byte(static_cast<unsigned char>(n * 13 + i)); }

struct model_frame {
  std::uint32_t tag;
  std::size_t size;
  std::uint64_t number;
};

class harness {
 public:
  harness(const std::uint8_t* data, std::size_t size) {
    const std::uint8_t flags = size > 0 ? data[0] : 0;
    const std::size_t script_len = size > 1 ? data[1] : 0;
    const std::size_t script_start = size < 2 ? size : 2;
    const std::size_t script_end = script_start + script_len < size ? script_start + script_len : size;
    script_ = script_reader(data + script_start, script_end - script_start);
    capacity_ = std::size_t{64} << (((flags >> 2) & 7) % 7);
    bytes_ = ring_bytes(capacity_);
    void* mem = nullptr;
    if (::posix_memalign(&mem, 64, bytes_) != 0) throw std::bad_alloc();
    mem_.reset(mem);
    std::memset(mem, 0, bytes_);
    const std::size_t image = size - script_end;
    if (image > 0) std::memcpy(mem, data + script_end, image < bytes_ ? image : bytes_);
    auto* h = header();
    if (flags & (flag_repair | flag_fresh)) {
      h->magic = ring_magic;
      h->version = ring_layout_version;
      h->header_size = sizeof(ring_header);
      h->capacity = capacity_;
    }
    if (flags & flag_fresh) {
      const std::uint64_t start = (h->head.load() & ((std::uint64_t{1} << 40) - 1)) & ~std::uint64_t{7};
      h->head.store(start);
      h->tail.store(start);
      honest_ = true;
    }
    attach_reader();
    attach_writer();
  }

  std::string run() {
    while (!script_.done() && failure_.empty()) step();
    // Then read whatever is left.
    for (std::size_t i = 0; i < capacity_ / 8 + 2 && failure_.empty(); ++i)
      if (read_one() != ring_status::ok) break;
    if (failure_.empty() && honest_ && reader_ && !model_.empty())
      failure_ = "an honest ring kept " + std::to_string(model_.size()) + " frames from the reader";
    return failure_;
  }

 private:
  ring_header* header() const noexcept { return static_cast<ring_header*>(mem_.get()); }
  std::byte* area() const noexcept { return static_cast<std::byte*>(mem_.get()) + sizeof(ring_header); }

  void attach_reader() {
    try {
      reader_ = std::make_unique<ring_reader>(mem_.get(), bytes_);
    } catch (const std::runtime_error&) {
      if (honest_) failure_ = "an honest ring was refused by the reader";
    }
  }
  void attach_writer() {
    try {
      writer_ = std::make_unique<ring_writer>(mem_.get(), bytes_);
    } catch (const std::runtime_error&) {
      if (honest_) failure_ = "an honest ring was refused by the writer";
    }
  }

  void fail(std::string what) {
    if (failure_.empty()) failure_ = std::move(what);
  }

  // Checks one status / frame from the reader.
  void check_read(ring_status st, const frame_view& f) {
    if (st == ring_status::ok) {
      const std::byte* lo = area();
      const std::byte* hi = area() + capacity_;
      if (f.payload.data() < lo || f.payload.data() + f.payload.size() > hi)
        return fail("a frame view points outside the data area");
      if (f.payload.size() > ring_max_payload(capacity_)) return fail("a frame larger than max_payload");
      unsigned sum = 0;  // touch every byte: the sanitizers see any out-of-bounds view
      for (auto b : f.payload) sum += std::to_integer<unsigned>(b);
      sink_ += sum;
      if (honest_) {
        if (model_.empty()) return fail("an honest ring produced a frame nobody wrote");
        const auto m = model_.front();
        model_.pop_front();
        if (f.tag != m.tag || f.payload.size() != m.size) return fail("an honest ring returned a different frame");
        for (std::size_t i = 0; i < m.size; ++i)
          if (f.payload[i] != content(m.number, i)) return fail("an honest ring returned different bytes");
      }
    } else if (st == ring_status::corrupt) {
      if (!reader_->corrupt() || reader_->error().empty()) return fail("corrupt without an explanation");
      if (honest_) return fail("an honest ring was reported corrupt: " + reader_->error());
      frame_view again;
      if (reader_->try_read(again) != ring_status::corrupt) return fail("corruption was not sticky");
    } else if (st == ring_status::empty) {
      if (honest_ && !model_.empty()) return fail("an honest ring lost a frame");
    } else if (st != ring_status::timeout) {
      return fail(std::string("try_read returned ") + to_string(st));
    }
  }

  ring_status read_one() {
    if (!reader_) return ring_status::corrupt;
    frame_view f;
    const auto st = reader_->try_read(f);
    check_read(st, f);
    reader_->pop();
    return st;
  }

  void check_write(ring_status st) {
    if (st == ring_status::corrupt) {
      if (!writer_->corrupt() || writer_->error().empty()) return fail("writer corrupt without an explanation");
      if (honest_) return fail("an honest ring was reported corrupt by the writer: " + writer_->error());
    }
  }

  void write_one(std::uint32_t tag, std::size_t n, bool blocking) {
    if (!writer_) return;
    if (tag == padding_tag) tag = 0;
    std::vector<std::byte> bytes(n);
    for (std::size_t i = 0; i < n; ++i) bytes[i] = content(next_number_, i);
    const auto st = blocking ? writer_->write(tag, bytes, std::chrono::nanoseconds(0)) : writer_->try_write(tag, bytes);
    check_write(st);
    if (st == ring_status::ok) model_.push_back({tag, n, next_number_});
    ++next_number_;
  }

  void step() {
    const std::uint8_t op = script_.u8() % 10;
    switch (op) {
      case op_read:
        (void)read_one();
        break;
      case op_write: {
        const std::uint32_t tag = script_.u8();
        write_one(tag, script_.u16() % (ring_max_payload(capacity_) + 2), false);
        break;
      }
      case op_reserve: {
        const std::size_t want = script_.u16() % (ring_max_payload(capacity_) + 2);
        const std::size_t used = script_.u16() % (want + 2);
        if (!writer_) break;
        ring_status st;
        auto room = writer_->try_reserve(want, st);
        check_write(st);
        if (st != ring_status::ok) break;
        if (room.size() != want) return fail("a reservation of the wrong size");
        if (room.data() < area() || room.data() + room.size() > area() + capacity_)
          return fail("a reservation outside the data area");
        if (used > want) break;  // abandoned
        for (std::size_t i = 0; i < used; ++i) room[i] = content(next_number_, i);
        writer_->commit(7, used);
        model_.push_back({7, used, next_number_});
        ++next_number_;
        break;
      }
      case op_poke_byte: {
        const std::size_t at = script_.u16() % bytes_;
        static_cast<std::uint8_t*>(mem_.get())[at] = script_.u8();
        honest_ = false;
        break;
      }
      case op_poke_word: {
        const std::size_t at = script_.u16() % (bytes_ / 8);
        const std::uint64_t v = script_.u64();
        std::memcpy(static_cast<std::byte*>(mem_.get()) + at * 8, &v, 8);
        honest_ = false;
        break;
      }
      case op_set_head: {
        const std::uint8_t mode = script_.u8();
        const std::uint64_t v = script_.u64();
        header()->head.store(mode & 1 ? header()->tail.load() + 8 * (v % 600) : v);
        honest_ = false;
        break;
      }
      case op_set_tail: {
        const std::uint8_t mode = script_.u8();
        const std::uint64_t v = script_.u64();
        header()->tail.store(mode & 1 ? header()->head.load() - 8 * (v % 600) : v);
        honest_ = false;
        break;
      }
      case op_blocking: {
        const std::uint8_t which = script_.u8();
        const std::size_t n = script_.u16() % (ring_max_payload(capacity_) + 2);
        if (which & 1) {
          write_one(which, n, true);
        } else if (reader_) {
          frame_view f;
          const auto st = reader_->read(f, std::chrono::nanoseconds(0));
          check_read(st, f);
          reader_->pop();
        }
        break;
      }
      case op_wakeups: {
        const std::uint8_t which = script_.u8();
        const std::size_t n = script_.u16();
        if (reader_ && which % 4 == 0) (void)reader_->arm_wakeup();
        if (writer_ && which % 4 == 1) (void)writer_->arm_space_wakeup(n);
        if (reader_ && which % 4 == 2) (void)reader_->readable();
        if (writer_ && which % 4 == 3) {
          const std::size_t free = writer_->free_bytes();
          if (free > capacity_) return fail("free_bytes larger than the capacity");
        }
        // The next step must not sleep: these flags only decide who gets woken.
        header()->reader_sleeping.store(0);
        header()->writer_sleeping.store(0);
        break;
      }
      case op_reattach: {
        if (script_.u8() & 1) {
          // A new reader starts at the shared tail; the old one popped every frame it returned,
          // so on an honest ring the model stays in step.
          reader_.reset();
          attach_reader();
        } else {
          writer_.reset();
          attach_writer();
        }
        break;
      }
      default:
        break;
    }
  }

  std::unique_ptr<void, free_deleter> mem_;
  std::size_t capacity_ = 0;
  std::size_t bytes_ = 0;
  script_reader script_{nullptr, 0};
  std::unique_ptr<ring_reader> reader_;
  std::unique_ptr<ring_writer> writer_;
  bool honest_ = false;
  std::deque<model_frame> model_;
  std::uint64_t next_number_ = 0;
  std::string failure_;
  unsigned sink_ = 0;
};

}  // namespace

std::string run_ring_input(const std::uint8_t* data, std::size_t size) {
  try {
    harness h(data, size);
    return h.run();
  } catch (const std::exception& e) {
    return std::string("unexpected exception: ") + e.what();
  }
}

std::vector<std::uint8_t> make_input(std::uint8_t flags, const std::vector<std::uint8_t>& script, const void* image,
                                     std::size_t image_size) {
  const std::size_t n = script.size() < 255 ? script.size() : 255;
  const std::size_t image_bytes = image != nullptr ? image_size : 0;
  std::vector<std::uint8_t> out(2 + n + image_bytes);
  out[0] = flags;
  out[1] = static_cast<std::uint8_t>(n);
  if (n > 0) std::memcpy(out.data() + 2, script.data(), n);
  if (image_bytes > 0) std::memcpy(out.data() + 2 + n, image, image_bytes);
  return out;
}

}  // namespace procsup::fuzz
