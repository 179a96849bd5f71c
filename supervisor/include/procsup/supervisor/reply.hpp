// reply<T>: the future of one send(). get() first spins briefly on the reply ring itself (no
// thread hop, no system call when the child answers quickly), then sleeps until the event loop
// delivers the reply or the child's death fails it.
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>

#include "procsup/ipc/codec.hpp"
#include "procsup/supervisor/detail/unit.hpp"
#include "procsup/supervisor/types.hpp"

namespace procsup {

template <class R>
class reply {
 public:
  reply() = default;
  explicit reply(std::shared_ptr<detail::reply_state> s) : s_(std::move(s)) {}

  bool valid() const noexcept { return s_ != nullptr; }
  bool is_ready() const noexcept { return s_ && s_->ready(); }

  // Blocks until the reply (or the failure) is there. Not on the supervisor's loop thread.
  void wait() const { wait_impl(std::chrono::nanoseconds(-1)); }

  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) const {
    return wait_impl(std::chrono::duration_cast<std::chrono::nanoseconds>(d));
  }

  // The reply. Throws process_error with the child's error message (an exception in handle(),
  // or how the child died), or ipc::decode_error if the reply's bytes are not a valid R.
  R get() {
    wait();
    if (s_->failed) throw process_error(s_->error);
    if constexpr (std::is_void_v<R>) {
      return;
    } else {
      return ipc::decode<R>(s_->bytes);
    }
  }

 private:
  bool wait_impl(std::chrono::nanoseconds timeout) const {
    if (!s_) throw std::logic_error("reply: no state (default-constructed or moved-from)");
    if (s_->ready()) return true;
    if (auto owner = s_->owner.lock()) return owner->wait_reply(*s_, timeout);
    return s_->sleep(timeout);
  }
  std::shared_ptr<detail::reply_state> s_;
};

}  // namespace procsup
