// What a behavior is: any type with `Reply handle(Request)` and optional `init()` (or
// `init(const procsup::start_info&)`) / `terminate()`.
// The request and reply types are deduced from handle(); a behavior whose handle() is a template
// or overloaded declares `using request_type = ...; using reply_type = ...;` instead.
#pragma once

#include <type_traits>

#include "procsup/worker/start_info.hpp"

namespace procsup::worker {

namespace detail {
template <class F> struct handle_traits;
template <class C, class R, class A> struct handle_traits<R (C::*)(A)> { using request = A; using reply = R; };
template <class C, class R, class A> struct handle_traits<R (C::*)(A) const> : handle_traits<R (C::*)(A)> {};
template <class C, class R, class A> struct handle_traits<R (C::*)(A) noexcept> : handle_traits<R (C::*)(A)> {};
template <class C, class R, class A> struct handle_traits<R (C::*)(A) const noexcept> : handle_traits<R (C::*)(A)> {};

template <class B, class = void> struct declared_types {
  using traits = handle_traits<decltype(&B::handle)>;
  using request = std::remove_cvref_t<typename traits::request>;
  using reply = std::remove_cvref_t<typename traits::reply>;
};
template <class B>
struct declared_types<B, std::void_t<typename B::request_type, typename B::reply_type>> {
  using request = typename B::request_type;
  using reply = typename B::reply_type;
};
}  // namespace detail

template <class B> using request_of = typename detail::declared_types<std::remove_cvref_t<B>>::request;
template <class B> using reply_of = typename detail::declared_types<std::remove_cvref_t<B>>::reply;

template <class B> concept has_init = requires(B& b) { b.init(); };
// init(const procsup::start_info&): the instance learns whether it is a restart (preferred over
// init() when a behavior has both).
template <class B> concept has_init_with_info = requires(B& b, const start_info& info) { b.init(info); };
template <class B> concept has_terminate = requires(B& b) { b.terminate(); };

template <class B>
concept behavior = std::is_copy_constructible_v<B> && requires(B& b, request_of<B> r) {
  { b.handle(std::move(r)) };
};

// Exit codes of a worker process; the supervisor turns them back into causes.
enum exit_code : int {
  exit_clean = 0,             // shut down when asked
  exit_handler_threw = 70,    // handle() threw: the error frame carries the message
  exit_init_failed = 71,      // init() threw: the error frame (id 0) carries the message
  exit_channel_broken = 72,   // the channel was corrupt or could not be attached
  exit_bad_request = 73,      // no longer used: a request that cannot be decoded fails alone (rejected)
};

// Text for one of the codes above (or nullptr for other codes).
constexpr const char* describe_exit_code(int code) {
  switch (code) {
    case exit_handler_threw: return "handle() threw";
    case exit_init_failed: return "init() threw";
    case exit_channel_broken: return "its channel broke";
    case exit_bad_request: return "it could not decode a request";
    default: return nullptr;
  }
}

}  // namespace procsup::worker
