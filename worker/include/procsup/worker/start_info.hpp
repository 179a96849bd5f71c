// start_info: what a new instance of a unit learns before its init() runs (which instance it is,
// how the instance before it ended), and the body of the channel's start frame that carries it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace procsup {

// Passed to a behavior's `init(const procsup::start_info&)` (a plain `init()` stays valid), in a
// forked child and in an exec'd worker (worker::main) alike. Each instance starts from the
// behavior's prototype (a fork copies the parent's memory, not the dead instance's), so this is
// how an instance knows it is a restart: `if (info.restart_count == 0) ...`.
struct start_info {
  std::string process_id;       // the unit's id: "process-3", a program instance "w:1"
  std::uint64_t instance = 1;   // 1 for the unit's first instance, one more per launch
  int restart_count = 0;        // restarts of the unit so far (0: the first instance)
  std::string last_error;       // how the previous failed instance died ("" if none has failed)
  int last_exit_status = -1;    // raw wait status of the previous instance (-1: there was none)
};

}  // namespace procsup

namespace procsup::worker {

// The start frame's body: fixed-size integers (host byte order: both ends run on one machine),
// then the two strings, each preceded by its u32 length. Any thread.
std::vector<std::byte> encode_start_info(const start_info& info);
// Decodes a start frame's body, reading each byte once (it lives in shared memory). Throws
// ipc::decode_error naming what is wrong. Any thread.
start_info decode_start_info(std::span<const std::byte> body);

}  // namespace procsup::worker
