// procsup-demo-decoder: the built-in demo's crash-prone native worker. It "decodes" a stream of
// generated packets; about one packet in eight is malformed, and the decoder trusts its length
// field the way real parsers do — so it dereferences garbage and dies of SIGSEGV. procsup
// restarts it within milliseconds; the other programs never notice.
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>

namespace {

struct packet {
  std::uint16_t length;  // of payload
  const char* payload;
};

// The bug on purpose: no bounds check on `length`, and a malformed packet's payload pointer is
// garbage.
std::uint32_t checksum(const packet& p) {
  std::uint32_t sum = 0;
  for (std::uint16_t i = 0; i < p.length; ++i) sum = sum * 31 + static_cast<unsigned char>(p.payload[i]);
  return sum;
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::mt19937 rng(static_cast<unsigned>(::getpid()) ^ static_cast<unsigned>(::time(nullptr)));
  static const char text[] = "procsup keeps crash-prone native code in its own process";
  std::printf("decoder %d: ready\n", static_cast<int>(::getpid()));
  for (unsigned n = 1;; ++n) {
    packet p{static_cast<std::uint16_t>(8 + rng() % 40), text};
    if (rng() % 8 == 0) {
      std::printf("decoder %d: packet %u is malformed (length 65535)...\n", static_cast<int>(::getpid()), n);
      p.length = 65535;
      p.payload = reinterpret_cast<const char*>(static_cast<std::uintptr_t>(0x10));  // garbage
    }
    std::printf("decoder %d: packet %u checksum %08x\n", static_cast<int>(::getpid()), n, checksum(p));
    timespec ts{0, 400'000'000};
    ::nanosleep(&ts, nullptr);
  }
}
