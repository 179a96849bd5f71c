// process<Request, Reply>: the handle of one unit (a forked behavior or a protocol worker
// binary), standalone (create_process) or supervised (supervisor::spawn).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "procsup/ipc/codec.hpp"
#include "procsup/supervisor/detail/unit.hpp"
#include "procsup/supervisor/reply.hpp"
#include "procsup/worker/behavior.hpp"
#include "procsup/worker/serve.hpp"

namespace procsup {

// Options of one unit. The defaults suit a behavior that answers in microseconds to seconds.
struct process_options {
  std::string name{};  // its id in events and info(); default "<kind>-N"
  std::chrono::milliseconds start_timeout{30'000};    // init() must finish within this
  std::chrono::milliseconds request_timeout{0};       // hang detection (0: off): no reply within this → killed
  std::chrono::milliseconds shutdown_timeout{5'000};  // stop(): terminate() within this, then SIGTERM, SIGKILL
  std::size_t max_pending = 1024;                     // sends queued while it (re)starts; beyond: error
  ipc::channel_options channel{};                     // ring size (largest message ≈ half of it)
  std::chrono::nanoseconds reply_spin{std::chrono::microseconds(50)};  // get() spins this long before sleeping
  child_setup isolation{};                            // rlimits, uid, new session, parent-death signal
  worker::serve_options serve{};                      // heartbeat
};

namespace detail {
std::string next_id(const char* kind);
unit_spec make_spec(const process_options& o, const char* kind);
// Launches `u` on its loop and waits until it is ready; throws process_error with the cause
// when it fails first. Not on the loop thread.
void start_and_wait(const std::shared_ptr<unit>& u);
void stop_and_wait(const std::shared_ptr<unit>& u);
// Hooks of a unit without a supervisor: no restart; failures leave it failed.
void make_standalone(const std::shared_ptr<unit>& u);
event_loop& default_loop();

template <worker::behavior B>
std::function<int(ipc::endpoint&)> make_body(B b, worker::serve_options opt) {
  // Runs in the forked child: mutating `b` there touches only the child's copy of memory, so
  // every instance starts from this pristine prototype.
  return [b = std::move(b), opt](ipc::endpoint& ep) mutable { return worker::serve(b, ep, opt); };
}
// How the library (supervisor, create_process) and white-box tests reach a handle's unit; not
// part of the public API.
struct process_access {
  template <class P>
  static P make(std::shared_ptr<unit> u) { return P(std::move(u)); }
  template <class P>
  static const std::shared_ptr<unit>& core(const P& p) noexcept { return p.u_; }
};
}  // namespace detail

template <class Request, class Reply>
class process {
 public:
  using request_type = Request;
  using reply_type = Reply;

  process() = default;

  // Forks the child and returns when init() has finished in it; throws process_error if it
  // failed. Not on a supervisor's loop thread (nor from an event sink).
  void start() { detail::start_and_wait(u_); }

  // Sends one request; the reply comes through the returned future. Thread-safe; many may be in
  // flight; the child handles them one at a time in send order. While the child (re)starts,
  // requests wait in a bounded queue and go to the new instance in order.
  reply<Reply> send(const Request& request) const { return reply<Reply>(u_->send_bytes(ipc::encode(request))); }

  // Shuts the child down: terminate() runs in it; then SIGTERM, then SIGKILL after the timeouts.
  void stop() { detail::stop_and_wait(u_); }

  process_info info() const { return u_->info(); }
  process_state state() const { return u_->state(); }
  const std::string& id() const { return u_->id(); }
  pid_t pid() const { return u_->pid(); }

  explicit operator bool() const noexcept { return u_ != nullptr; }

 private:
  friend struct detail::process_access;
  explicit process(std::shared_ptr<detail::unit> u) : u_(std::move(u)) {}
  std::shared_ptr<detail::unit> u_;
};

template <worker::behavior B>
using process_for = process<worker::request_of<B>, worker::reply_of<B>>;

// A process without a supervisor (the original createProcess): call start() on it. A failure
// leaves it failed; nothing restarts it.
template <worker::behavior B>
process_for<B> create_process(B behavior, process_options options = {}) {
  auto spec = detail::make_spec(options, "process");
  spec.body = detail::make_body(std::move(behavior), options.serve);
  auto u = std::make_shared<detail::unit>(detail::default_loop(), std::move(spec));
  detail::make_standalone(u);
  return detail::process_access::make<process_for<B>>(std::move(u));
}

}  // namespace procsup
