// Attaching an exec'd worker to the channel its supervisor created.
#include "procsup/worker/main.hpp"

#include <cstdlib>
#include <exception>

namespace procsup::worker {

std::optional<ipc::channel> attach_from_environment(std::string& error) {
  const char* spec = std::getenv(channel_env);
  if (spec == nullptr) {
    error = std::string("$") + channel_env + " is not set: this program must be started by procsup with ready = \"protocol\"";
    return std::nullopt;
  }
  int memfd = -1, eventfd = -1;
  if (std::sscanf(spec, "%d:%d", &memfd, &eventfd) != 2 || memfd < 0 || eventfd < 0) {
    error = std::string("$") + channel_env + "=\"" + spec + "\" is not MEMFD:EVENTFD";
    return std::nullopt;
  }
  try {
    return ipc::channel::attach(memfd, eventfd);
  } catch (const std::exception& e) {
    error = std::string("cannot attach the channel: ") + e.what();
    return std::nullopt;
  }
}

}  // namespace procsup::worker
