// The built-in demo config.
#include "procsup/daemon/demo.hpp"

#include <unistd.h>

#include <climits>
#include <string>
#include <vector>

namespace procsup::daemon {

std::string own_directory() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string p(buf, static_cast<std::size_t>(n));
  auto slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

#ifndef PROCSUP_DEMO_RELATIVE_DIR
#define PROCSUP_DEMO_RELATIVE_DIR "../libexec/procsup"
#endif

std::string demo_programs_directory() {
  const std::string dir = own_directory();
  for (const std::string& candidate : {dir, dir + "/" PROCSUP_DEMO_RELATIVE_DIR})
    if (::access((candidate + "/procsup-demo-decoder").c_str(), X_OK) == 0) return candidate;
  return {};
}

std::string demo_config_text(const std::string& bindir, const std::string& socket) {
  return R"([supervisor]
policy = "one_for_one"
intensity = 50
period = "60s"
socket = ")" + socket + R"("

# Crash-prone native code: segfaults on malformed packets; restarted within milliseconds.
[[program]]
name = "decoder"
command = [")" + bindir + R"(/procsup-demo-decoder"]
instances = 2
strategy = "restart"
backoff = { initial = "0s", max = "2s" }

# A well-behaved program: never affected by the decoder's crashes.
[[program]]
name = "ticker"
command = [")" + bindir + R"(/procsup-demo-ticker"]
stop_timeout = "2s"

# The same kind of decoder as a protocol worker: it says `ready` over its channel and decodes one
# packet per request (`procsup ctl send codec '{"hex":"68656c6c6f"}'`); an odd-length packet
# kills it with SIGSEGV, the request fails with that cause, and it is restarted.
[[program]]
name = "codec"
command = [")" + bindir + R"(/procsup-demo-codec"]
ready = "protocol"
ready_timeout = "5s"
hang_timeout = "2s"
backoff = { initial = "0s", max = "2s" }

# A plain command that exits cleanly after 5 s and is restarted because it asks for it.
[[program]]
name = "cron-like"
command = ["/bin/sh", "-c", "echo job ran at $(date +%T); sleep 5"]
restart_on_exit = true
backoff = { initial = "0s", max = "1s" }
)";
}

std::vector<std::string> demo_hints(const std::string& procsup, const std::string& socket) {
  const std::string ctl = procsup + " ctl --socket " + socket;
  return {"demo: ask the protocol worker \"codec\" to decode a packet:  " + ctl + " send codec '{\"hex\":\"68656c6c6f\"}'",
          "demo: send it a malformed (odd-length) packet; it crashes and is restarted:  " + ctl +
              " send codec '{\"hex\":\"686\"}'",
          "demo: the instances:  " + ctl + " status"};
}

}  // namespace procsup::daemon
