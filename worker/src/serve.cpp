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

bool send_rejected(ipc::endpoint& ep, std::uint64_t id, std::string_view what) noexcept {
  std::span<const std::byte> body(reinterpret_cast<const std::byte*>(what.data()), std::min(what.size(), ep.max_body()));
  return ep.send(ipc::frame_kind::rejected, id, body, std::chrono::nanoseconds(-1)) == shm::ring_status::ok;
}

bool receive_start(ipc::endpoint& ep, start_info& info, std::string& error) {
  ipc::message m;
  const auto st = ep.receive(m, std::chrono::nanoseconds(-1));
  if (st != shm::ring_status::ok) {
    error = std::string("no start frame: the channel is ") + shm::to_string(st);
    return false;
  }
  if (m.kind != ipc::frame_kind::start) {
    error = std::string("the first frame is a ") + ipc::to_string(m.kind) + " frame, not the start frame";
    ep.release();
    return false;
  }
  try {
    info = decode_start_info(m.body);
  } catch (const std::exception& e) {
    error = e.what();
    ep.release();
    return false;
  }
  ep.release();
  return true;
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
