// errno text and sys::error.
#include <cerrno>
#include <cstring>

#include "procsup/sys/error.hpp"
#include "procsup/sys/result.hpp"

namespace procsup::sys {

std::string errno_text(int e) {
  char buf[256];
  // GNU strerror_r: returns a pointer to the text (buf or a static string).
  const char* text = ::strerror_r(e, buf, sizeof buf);
  return text != nullptr && *text != '\0' ? std::string(text) : "error " + std::to_string(e);
}

std::string error::message() const { return code == 0 ? what : what + ": " + errno_text(code); }

unexpected<error> fail(std::string what) { return unexpected(error{errno, std::move(what)}); }
unexpected<error> fail(int code, std::string what) { return unexpected(error{code, std::move(what)}); }

}  // namespace procsup::sys
