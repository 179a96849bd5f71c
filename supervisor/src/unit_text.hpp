// Small helpers shared by the unit's source files (unit*.cpp). Internal.
#pragma once

#include <chrono>
#include <cstddef>
#include <span>
#include <string>

namespace procsup::detail {

inline std::string as_text(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}
inline std::string ms_text(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

}  // namespace procsup::detail
