// The start frame's body: start_info to bytes and back.
#include "procsup/worker/start_info.hpp"

#include <cstring>
#include <string>

#include "procsup/ipc/codec.hpp"

namespace procsup::worker {

namespace {

template <class T>
void put(std::vector<std::byte>& out, T v) {
  const auto* p = reinterpret_cast<const std::byte*>(&v);
  out.insert(out.end(), p, p + sizeof v);
}

void put_text(std::vector<std::byte>& out, const std::string& s) {
  put(out, static_cast<std::uint32_t>(s.size()));
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  out.insert(out.end(), p, p + s.size());
}

// A cursor over the body that never reads past its end.
struct reader {
  std::span<const std::byte> rest;

  template <class T>
  T get(const char* what) {
    if (rest.size() < sizeof(T))
      throw ipc::decode_error(std::string("start frame: truncated before its ") + what);
    T v;
    std::memcpy(&v, rest.data(), sizeof v);
    rest = rest.subspan(sizeof v);
    return v;
  }
  std::string text(const char* what) {
    const auto n = get<std::uint32_t>(what);
    if (rest.size() < n)
      throw ipc::decode_error(std::string("start frame: its ") + what + " claims " + std::to_string(n) + " bytes, " +
                              std::to_string(rest.size()) + " are left");
    std::string s(reinterpret_cast<const char*>(rest.data()), n);
    rest = rest.subspan(n);
    return s;
  }
};

}  // namespace

std::vector<std::byte> encode_start_info(const start_info& info) {
  std::vector<std::byte> out;
  out.reserve(24 + info.process_id.size() + info.last_error.size());
  put(out, info.instance);
  put(out, static_cast<std::int32_t>(info.restart_count));
  put(out, static_cast<std::int32_t>(info.last_exit_status));
  put_text(out, info.process_id);
  put_text(out, info.last_error);
  return out;
}

start_info decode_start_info(std::span<const std::byte> body) {
  reader r{body};
  start_info info;
  info.instance = r.get<std::uint64_t>("instance number");
  info.restart_count = r.get<std::int32_t>("restart count");
  info.last_exit_status = r.get<std::int32_t>("last exit status");
  info.process_id = r.text("process id");
  info.last_error = r.text("last error");
  if (!r.rest.empty())
    throw ipc::decode_error("start frame: " + std::to_string(r.rest.size()) + " bytes after its last field");
  return info;
}

}  // namespace procsup::worker
