// Frame kind names.
#include "procsup/ipc/frame.hpp"

namespace procsup::ipc {

const char* to_string(frame_kind kind) noexcept {
  switch (kind) {
    case frame_kind::request: return "request";
    case frame_kind::reply: return "reply";
    case frame_kind::error: return "error";
    case frame_kind::ready: return "ready";
    case frame_kind::heartbeat: return "heartbeat";
    case frame_kind::shutdown: return "shutdown";
    case frame_kind::rejected: return "rejected";
    case frame_kind::start: return "start";
  }
  return "unknown";
}

}  // namespace procsup::ipc
