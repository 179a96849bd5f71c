// sys::result<T, E>: a value or the reason there is none, for calls that can fail for a reason
// the caller handles (C++20 has no std::expected; this is the subset procsup uses, with the
// same names, so the switch to std::expected in C++23 is a rename).
//
//   sys::result<unique_fd> open_ro(const std::string& path);
//   auto fd = open_ro(p);
//   if (!fd) log(fd.error().message());   // "open /x: No such file or directory"
//   else use(fd->get());
//
// The rule (docs/development.md, Conventions): a result where the caller decides what a failure
// means (retry, report, fall back); an exception where it cannot go on (a broken invariant, out
// of memory, a constructor). Never both for one call.
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace procsup::sys {

// A system call's failure: errno and what was being done ("open /sys/fs/cgroup/x/cpu.stat").
struct error {
  int code = 0;
  std::string what;
  // "what: strerror(code)", or `what` alone when code is 0 (a failure that is not an errno).
  std::string message() const;
};

// The failure side, as std::unexpected: `return sys::unexpected(sys::error{errno, "open " + p});`.
template <class E>
class unexpected {
 public:
  explicit unexpected(E e) : e_(std::move(e)) {}
  E& error() & noexcept { return e_; }
  E&& error() && noexcept { return std::move(e_); }

 private:
  E e_;
};
template <class E>
unexpected(E) -> unexpected<E>;

// The errno of now, with what was being done: `return sys::fail("open " + path);`.
unexpected<error> fail(std::string what);
unexpected<error> fail(int code, std::string what);

template <class T, class E = error>
class [[nodiscard]] result {
 public:
  using value_type = T;
  using error_type = E;

  result(T v) : v_(std::in_place_index<0>, std::move(v)) {}  // NOLINT: implicit, as std::expected
  template <class G, class = std::enable_if_t<std::is_constructible_v<E, G>>>
  result(unexpected<G> u) : v_(std::in_place_index<1>, std::move(u).error()) {}  // NOLINT

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  // Preconditions: has_value() (value) or !has_value() (error); checked by std::get (throws
  // std::bad_variant_access rather than reading the wrong member).
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const E& error() const& { return std::get<1>(v_); }
  E&& error() && { return std::get<1>(std::move(v_)); }

  template <class U>
  T value_or(U&& fallback) const& {
    return has_value() ? value() : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::variant<T, E> v_;
};

// Success without a value, or the reason: `sys::result<void> write_all(...)`; `return {};`.
template <class E>
class [[nodiscard]] result<void, E> {
 public:
  using value_type = void;
  using error_type = E;

  result() = default;
  template <class G, class = std::enable_if_t<std::is_constructible_v<E, G>>>
  result(unexpected<G> u) : failed_(true), e_(std::move(u).error()) {}  // NOLINT

  bool has_value() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return has_value(); }
  const E& error() const& { return e_; }
  E&& error() && { return std::move(e_); }

 private:
  bool failed_ = false;
  E e_{};
};

}  // namespace procsup::sys
