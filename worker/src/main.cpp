// Attaching an exec'd worker to the channel its supervisor created.
#include "procsup/worker/main.hpp"

#include <cstdlib>
#include <cstdio>
#include <exception>
#include <utility>

namespace procsup::worker {

sys::result<ipc::channel, std::string> attach_from_environment() {
  const char* spec = std::getenv(channel_env);
  if (spec == nullptr)
    return sys::unexpected(std::string("$") + channel_env +
                           " is not set: this program must be started by procsup with ready = \"protocol\"");
  int memfd = -1, eventfd = -1;
  if (std::sscanf(spec, "%d:%d", &memfd, &eventfd) != 2 || memfd < 0 || eventfd < 0)
    return sys::unexpected(std::string("$") + channel_env + "=\"" + spec + "\" is not MEMFD:EVENTFD");
  // channel::attach throws (the layer below cannot go on with a bad fd); here the caller can:
  // the reason becomes the result.
  try {
    return ipc::channel::attach(memfd, eventfd);
  } catch (const std::exception& e) {
    return sys::unexpected(std::string("cannot attach the channel: ") + e.what());
  }
}

std::optional<ipc::channel> attach_from_environment(std::string& error) {
  auto r = attach_from_environment();
  if (r) return std::move(r).value();
  error = r.error();
  return std::nullopt;
}

}  // namespace procsup::worker
