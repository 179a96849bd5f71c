// procsup_protocol_worker: a protocol worker (ready = "protocol") for the black-box tests of the
// procsup program. Its handle() takes a JSON request:
//   {"hang": true}     never answers (hang detection must kill it)
//   {"crash": true}    dies of SIGSEGV
//   {"crash_when_queued_bytes": N, "started": PATH}
//                      creates PATH, waits until its request ring (read through its own mapping
//                      of the channel memfd) holds N bytes of frames it has not read, then dies of
//                      SIGSEGV: a poison request with requests queued behind it (at most 30 s)
//   {"garbage": true}  scribbles over its reply ring's header through its own mapping of the
//                      channel memfd (fd 3), wakes procsup and waits to be killed
//   anything else      answers {"echo": <request>, "pid": <pid>}
// Modes (argv[1]), before it attaches its channel and says ready:
//   echo                the above (default)
//   wait-file PATH      says ready only once PATH exists (the test decides when)
//   never-ready         never attaches nor says ready (ready_timeout must fail it)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "procsup/ipc/channel.hpp"
#include "procsup/worker/main.hpp"

namespace {

int memfd_copy = -1;    // the channel's memfd and eventfd, kept aside for {"garbage": true}
int eventfd_copy = -1;

[[noreturn]] void sleep_forever() {
  for (;;) ::pause();
}

unsigned char* map_channel() {
  struct stat st {};
  if (memfd_copy < 0 || ::fstat(memfd_copy, &st) != 0) ::_exit(90);
  void* base = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, memfd_copy, 0);
  if (base == MAP_FAILED) ::_exit(91);
  return static_cast<unsigned char*>(base);
}

[[noreturn]] void crash() {
  std::signal(SIGSEGV, SIG_DFL);  // a sanitizer's handler would turn it into exit(1)
  std::raise(SIGSEGV);
  ::_exit(92);
}

[[noreturn]] void crash_when_queued(std::uint64_t bytes_behind, const std::string& started) {
  auto* bytes = map_channel();
  procsup::ipc::channel_header h;
  std::memcpy(&h, bytes, sizeof h);
  auto* ring = reinterpret_cast<procsup::shm::ring_header*>(bytes + h.to_child_offset);
  { std::ofstream(started) << "started"; }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  // acquire: pairs with the writers' release-stores of the positions (we only compare them).
  while (ring->head.load(std::memory_order_acquire) - ring->tail.load(std::memory_order_acquire) < bytes_behind &&
         std::chrono::steady_clock::now() < deadline)
    ::usleep(1000);
  crash();
}

[[noreturn]] void scribble() {
  auto* bytes = map_channel();
  procsup::ipc::channel_header h;
  std::memcpy(&h, bytes, sizeof h);
  // The reply ring's positions (one cache line in: head; two: tail) become nonsense.
  const std::uint64_t nasty = 0xdeadbeefdeadbeefULL;
  std::memcpy(bytes + h.to_parent_offset + procsup::shm::cache_line, &nasty, sizeof nasty);
  std::memcpy(bytes + h.to_parent_offset + 2 * procsup::shm::cache_line, &nasty, sizeof nasty);
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(eventfd_copy, &one, sizeof one);  // procsup: look now
  sleep_forever();
}

struct tester {
  using request_type = nlohmann::json;
  using reply_type = nlohmann::json;

  nlohmann::json handle(const nlohmann::json& req) {
    if (req.is_object()) {
      if (req.value("hang", false)) sleep_forever();
      if (req.value("crash", false)) crash();
      if (req.contains("crash_when_queued_bytes"))
        crash_when_queued(req["crash_when_queued_bytes"].get<std::uint64_t>(), req.value("started", std::string()));
      if (req.value("garbage", false)) scribble();
    }
    return {{"echo", req}, {"pid", ::getpid()}};
  }
};

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "echo";
  if (mode == "never-ready") sleep_forever();
  if (mode == "wait-file") {
    if (argc < 3) return 2;
    while (::access(argv[2], F_OK) != 0) ::usleep(20'000);
  }
  memfd_copy = ::fcntl(procsup::worker::channel_memfd, F_DUPFD_CLOEXEC, 10);
  eventfd_copy = ::fcntl(procsup::worker::channel_eventfd, F_DUPFD_CLOEXEC, 10);
  return procsup::worker::main(tester{});
}
