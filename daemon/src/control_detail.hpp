// Private to the control socket's server (control.cpp) and client (control_client.cpp): the
// few helpers both ends need.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

namespace procsup::daemon::detail {

inline std::string errno_text(int e) { return std::strerror(e); }

// `path` as a unix socket address; false when empty or too long for sun_path.
inline bool make_address(const std::string& path, sockaddr_un& addr) {
  addr = sockaddr_un{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return true;
}

// One JSON line. replace: a string with invalid UTF-8 must not throw (out of the event loop, or
// out of a client).
inline std::string dump_line(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace procsup::daemon::detail
