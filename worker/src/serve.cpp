// Non-template parts of the worker loop.
#include "procsup/worker/serve.hpp"

namespace procsup::worker::detail {

void send_error(ipc::endpoint& ep, std::uint64_t id, std::string_view what) noexcept {
  try {
    std::span<const std::byte> body(reinterpret_cast<const std::byte*>(what.data()),
                                    std::min(what.size(), ep.max_body()));
    (void)ep.send(ipc::frame_kind::error, id, body, std::chrono::seconds(1));
  } catch (...) {
  }
}

shm::ring_status next_frame(ipc::endpoint& ep, ipc::message& m, const serve_options& opt) {
  if (opt.heartbeat.count() <= 0) return ep.receive(m, std::chrono::nanoseconds(-1));
  for (;;) {
    auto st = ep.receive(m, opt.heartbeat);
    if (st != shm::ring_status::timeout) return st;
    if (ep.try_send(ipc::frame_kind::heartbeat, 0, {}) == shm::ring_status::corrupt) return shm::ring_status::corrupt;
  }
}

std::string current_exception_text() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace procsup::worker::detail
