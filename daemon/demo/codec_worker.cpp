// procsup-demo-codec: the demo's crash-prone decoder as a protocol worker (ready = "protocol").
// It links the worker runtime, says `ready` over its channel, and decodes one packet per request:
//
//   {"hex":"68656c6c6f"}  ->  {"bytes":5,"text":"hello","checksum":"..."}
//   {"hex":"686"}         ->  dies of SIGSEGV: an odd length is a truncated packet, and the
//                             decoder trusts its framing the way real parsers do
//
// procsup restarts it; the request in flight fails with "killed by SIGSEGV", and the next request
// goes to the new instance. Try it with the built-in demo (`procsup run`):
//   procsup ctl --socket /tmp/procsup-demo.sock send codec '{"hex":"68656c6c6f"}'
//   procsup ctl --socket /tmp/procsup-demo.sock send codec '{"hex":"686"}'
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "procsup/worker/main.hpp"

namespace {

int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

struct codec {
  using request_type = nlohmann::json;
  using reply_type = nlohmann::json;

  void init() { std::fprintf(stderr, "codec %d: ready for packets\n", static_cast<int>(::getpid())); }

  nlohmann::json handle(const nlohmann::json& packet) {
    if (!packet.is_object() || !packet.contains("hex") || !packet["hex"].is_string())
      return {{"error", "expected {\"hex\": \"...\"}"}};
    const std::string hex = packet["hex"].get<std::string>();
    // The bug on purpose: a truncated packet (odd length) makes the framing code hand over a
    // garbage pointer for the trailing byte, and the decoder dereferences it.
    const volatile unsigned char* tail = nullptr;
    if (hex.size() % 2 != 0) {
      std::fprintf(stderr, "codec %d: packet of odd length %zu...\n", static_cast<int>(::getpid()), hex.size());
      std::uintptr_t garbage = 0x10;
      asm volatile("" : "+r"(garbage));  // opaque to the compiler, like a pointer read off the wire
      tail = reinterpret_cast<const volatile unsigned char*>(garbage);
    }
    std::string text;
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
      const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
      if (hi < 0 || lo < 0) return {{"error", "not hex at offset " + std::to_string(i)}};
      const auto b = static_cast<unsigned char>(hi * 16 + lo);
      text.push_back(static_cast<char>(b));
      sum = sum * 31 + b;
    }
    if (tail != nullptr) sum = sum * 31 + *tail;  // SIGSEGV
    char checksum[16];
    std::snprintf(checksum, sizeof checksum, "%08x", sum);
    nlohmann::json reply = {{"bytes", text.size()}, {"checksum", checksum}};
    // Invalid UTF-8 becomes U+FFFD: the reply's codec (dump()) would throw on it otherwise.
    reply["text"] = nlohmann::json::parse(
        nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return reply;
  }
};

}  // namespace

int main() { return procsup::worker::main(codec{}); }
