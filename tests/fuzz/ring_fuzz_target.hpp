// The ring fuzz harness, shared by the libFuzzer target (fuzz_ring_reader.cpp), the corpus replay
// test (test_shm_ring_corpus.cpp) and the corpus generator (make_ring_corpus.cpp).
//
// One input describes a ring mapping as a malicious peer could leave it, plus a script of
// operations interleaving our endpoints' calls with the peer's scribbling:
//
//   byte 0      flags: bit 0 repair the header (valid magic, version, size, capacity);
//                      bit 1 fresh (also head = tail = a valid position: an honest ring, so the
//                            reader must see exactly what the writer wrote, never "corrupt",
//                            as long as the script does not scribble);
//                      bits 2-4 capacity = 64 << (n % 7)   (64 .. 4096 bytes)
//   byte 1      script length L
//   bytes 2..   the script (L bytes; see op in ring_fuzz_target.cpp)
//   the rest    the mapping's initial bytes (header + data; zero-filled when short)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace procsup::fuzz {

inline constexpr std::uint8_t flag_repair = 1;
inline constexpr std::uint8_t flag_fresh = 2;
inline constexpr std::uint8_t capacity_flags(unsigned log2_over_64) {
  return static_cast<std::uint8_t>((log2_over_64 % 7) << 2);
}

// Script operations (one byte each, followed by their argument bytes).
enum op : std::uint8_t {
  op_read = 0,         // try_read (+ pop): no argument
  op_write = 1,        // try_write: u8 tag, u16 size
  op_reserve = 2,      // try_reserve + commit/abandon: u16 size, u16 used (used > size: abandon)
  op_poke_byte = 3,    // peer writes a byte: u16 offset into the mapping, u8 value
  op_poke_word = 4,    // peer writes an aligned u64: u16 word index, u64 value
  op_set_head = 5,     // peer sets head: u8 mode, u64 value (mode odd: tail + 8 * (value % 600))
  op_set_tail = 6,     // peer sets tail: u8 mode, u64 value (mode odd: head - 8 * (value % 600))
  op_blocking = 7,     // read / write with a zero timeout: u8 which, u16 size
  op_wakeups = 8,      // arm_wakeup / arm_space_wakeup / readable / free_bytes: u8 which, u16 size
  op_reattach = 9,     // a new reader or writer on the same mapping: u8 which
};

// Runs one input. Returns "" if every invariant held, else what went wrong. Never throws.
std::string run_ring_input(const std::uint8_t* data, std::size_t size);

// Builds an input from its parts (for the corpus generator and tests).
std::vector<std::uint8_t> make_input(std::uint8_t flags, const std::vector<std::uint8_t>& script,
                                     const void* image, std::size_t image_size);

}  // namespace procsup::fuzz
