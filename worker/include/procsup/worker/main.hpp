// worker::main: the whole main() of an exec'd worker binary that speaks procsup's channel.
//
//   int main() { return procsup::worker::main(my_behavior{}); }
//
// The supervisor passes the channel as two inherited fds named by the environment variable
// PROCSUP_CHANNEL="MEMFD:EVENTFD" (an environment variable rather than argv, so the program's own
// argument parsing is untouched). Its start_info (for `init(const procsup::start_info&)`) comes
// as the channel's first frame, as for a forked behavior.
#pragma once

#include <cstdio>
#include <optional>
#include <string>

#include "procsup/ipc/channel.hpp"
#include "procsup/sys/result.hpp"
#include "procsup/worker/serve.hpp"

namespace procsup::worker {

inline constexpr const char* channel_env = "PROCSUP_CHANNEL";
// The fd numbers the supervisor uses in the child (after stdin, stdout, stderr).
inline constexpr int channel_memfd = 3;
inline constexpr int channel_eventfd = 4;

// Attaches the channel named by $PROCSUP_CHANNEL, or says why it cannot (not set, malformed,
// not a sealed memfd / eventfd): the caller decides (worker::main reports it and exits).
sys::result<ipc::channel, std::string> attach_from_environment();
// The same with the older shape (nullopt + `error`).
std::optional<ipc::channel> attach_from_environment(std::string& error);

template <behavior B>
int main(B b, const serve_options& opt = {}) {
  auto chan = attach_from_environment();
  if (!chan) {
    std::fprintf(stderr, "procsup worker: %s\n", chan.error().c_str());
    return exit_channel_broken;
  }
  auto ep = chan->child_end();
  return serve(b, ep, opt);
}

}  // namespace procsup::worker
