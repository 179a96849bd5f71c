// The child side of a unit: read the start frame, run init(), say ready, serve requests one at a
// time in arrival order, run terminate() on shutdown. Used by forked children and by worker::main.
//
// Around each request the child publishes its id as the one in progress (before decoding it,
// cleared once the answer is committed): if the child dies, only that request fails. A failure
// that the child survives (a reply over the channel's limit, a request it cannot decode) is
// answered with a `rejected` frame and the child goes on; an exception in handle() is answered
// with an `error` frame and the child exits (let it crash).
#pragma once

#include <chrono>
#include <exception>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "procsup/ipc/channel.hpp"
#include "procsup/ipc/codec.hpp"
#include "procsup/worker/behavior.hpp"

namespace procsup::worker {

struct serve_options {
  // Send a heartbeat frame when idle this long (0: never). Costs a wake-up of the parent each time.
  std::chrono::milliseconds heartbeat{0};
};

namespace detail {
// Sends an error frame (id's request failed, the child exits; best effort: the parent may already
// be gone).
void send_error(ipc::endpoint& ep, std::uint64_t id, std::string_view what) noexcept;
// Sends a rejected frame (id's request failed, the child goes on); waits for room like a reply.
// False if the channel broke.
bool send_rejected(ipc::endpoint& ep, std::uint64_t id, std::string_view what) noexcept;
// Reads the instance's start frame (the first frame on every channel). False (and `error` set) if
// the channel broke or the frame is not a valid start frame.
bool receive_start(ipc::endpoint& ep, start_info& info, std::string& error);
// Blocks for the next frame (futex wait), sending heartbeats while idle if asked.
shm::ring_status next_frame(ipc::endpoint& ep, ipc::message& m, const serve_options& opt);
std::string current_exception_text();
}  // namespace detail

// Serves `b` on the child end `ep` until a shutdown frame arrives or the channel breaks. Returns
// the process exit code (see exit_code). Never throws.
template <behavior B>
int serve(B& b, ipc::endpoint& ep, const serve_options& opt = {}) {
  using request = request_of<B>;
  using reply = reply_of<B>;
  start_info info;
  if (std::string why; !detail::receive_start(ep, info, why)) {
    detail::send_error(ep, 0, why);
    return exit_channel_broken;
  }
  if constexpr (has_init_with_info<B> || has_init<B>) {
    try {
      if constexpr (has_init_with_info<B>) {
        b.init(std::as_const(info));
      } else {
        b.init();
      }
    } catch (...) {
      detail::send_error(ep, 0, "init() failed: " + detail::current_exception_text());
      return exit_init_failed;
    }
  }
  if (ep.send(ipc::frame_kind::ready, 0, {}, std::chrono::nanoseconds(-1)) != shm::ring_status::ok)
    return exit_channel_broken;
  for (;;) {
    ipc::message m;
    if (detail::next_frame(ep, m, opt) != shm::ring_status::ok) return exit_channel_broken;
    const std::uint64_t id = m.id;
    if (m.kind == ipc::frame_kind::shutdown) {
      ep.release();
      if constexpr (has_terminate<B>) {
        try { b.terminate(); } catch (...) {}
      }
      return exit_clean;
    }
    if (m.kind != ipc::frame_kind::request) {  // heartbeat probes and the like: ignore
      ep.release();
      continue;
    }
    // In progress from here (decoding included: a codec that crashes is this request's fault).
    ep.publish_handling(id);
    std::vector<std::byte> out;
    try {
      request req = ipc::decode<request>(m.body);
      ep.release();
      if constexpr (std::is_void_v<reply>) {
        b.handle(std::move(req));
      } else {
        reply rep = b.handle(std::move(req));
        if (ipc::try_send_value(ep, ipc::frame_kind::reply, id, rep) == shm::ring_status::ok) {
          ep.publish_handling(0);
          continue;
        }
        out = ipc::encode(rep);
      }
    } catch (const ipc::decode_error& e) {
      ep.release();
      if (!detail::send_rejected(ep, id, std::string("bad request: ") + e.what())) return exit_channel_broken;
      ep.publish_handling(0);
      continue;
    } catch (...) {
      // Let it crash: the id stays published (this request failed with the instance).
      detail::send_error(ep, id, detail::current_exception_text());
      return exit_handler_threw;
    }
    // The ring was full (the parent is slow to read): block until it has room.
    auto st = ep.send(ipc::frame_kind::reply, id, out, std::chrono::nanoseconds(-1));
    if (st == shm::ring_status::too_large) {
      if (!detail::send_rejected(ep, id, "reply of " + std::to_string(out.size()) +
                                             " bytes exceeds the channel's limit of " + std::to_string(ep.max_body()) +
                                             " bytes"))
        return exit_channel_broken;
    } else if (st != shm::ring_status::ok) {
      return exit_channel_broken;
    }
    ep.publish_handling(0);
  }
}

}  // namespace procsup::worker
