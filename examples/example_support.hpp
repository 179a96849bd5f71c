// Small helpers shared by the examples: output that is safe in a forked child, result checks
// that decide the exit code, and a recorder of lifecycle events that an example can wait on.
#pragma once

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "procsup/procsup.hpp"

namespace examples {

// One line on stdout with a single write(2). Behaviors call this in their forked child, where
// stdio must not be used: the child inherits a copy of the parent's unflushed stdout buffer and
// would print it a second time (and it ends with _exit, so its own buffer would never be
// flushed). The parent uses it too, so lines from both sides interleave whole.
template <class... Args>
void say(fmt::format_string<Args...> f, Args&&... args) {
  std::string line = fmt::format(f, std::forward<Args>(args)...);
  line.push_back('\n');
  std::string_view rest = line;
  while (!rest.empty()) {
    const ssize_t n = ::write(STDOUT_FILENO, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
}

// What the example promised to show; every failed expectation is printed and makes main()
// return 1, so the example doubles as a test.
class checks {
 public:
  bool expect(bool ok, std::string_view what) {
    if (!ok) {
      ++failures_;
      say("CHECK FAILED: {}", what);
    }
    return ok;
  }
  int exit_code(std::string_view example) const {
    if (failures_ == 0) {
      say("{}: all checks passed", example);
      return 0;
    }
    say("{}: {} check(s) failed", example, failures_);
    return 1;
  }

 private:
  int failures_ = 0;
};

// Collects lifecycle events from one or more supervisors (their sinks run on the supervisor's
// loop thread) so the main thread can print them and wait for a particular one.
class event_recorder {
 public:
  struct entry {
    std::string supervisor;
    procsup::lifecycle_event event;
  };

  // A sink for the supervisor named `supervisor`; prints each event as it arrives when `print`.
  procsup::event_sink sink(std::string supervisor, bool print = true) {
    return [this, supervisor = std::move(supervisor), print](const procsup::lifecycle_event& e) {
      if (print) {
        say("  Supervisor event [{}]: {} {}{}{}", supervisor, e.process_id, procsup::to_string(e.kind),
            e.pid ? fmt::format(" pid={}", e.pid) : std::string(), e.cause.empty() ? std::string() : " (" + e.cause + ")");
      }
      {
        std::lock_guard lk(mu_);
        entries_.push_back({supervisor, e});
      }
      cv_.notify_all();
    };
  }

  // Index of the next event (use as `from` to wait for an event that happens after this point).
  std::size_t mark() const {
    std::lock_guard lk(mu_);
    return entries_.size();
  }

  // Waits until an event of `kind` for `process_id` is recorded at index >= from.
  bool wait_for(procsup::event_kind kind, const std::string& process_id, std::size_t from,
                std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] {
      for (std::size_t i = from; i < entries_.size(); ++i)
        if (entries_[i].event.kind == kind && entries_[i].event.process_id == process_id) return true;
      return false;
    });
  }

  std::size_t count(procsup::event_kind kind, const std::string& process_id, std::size_t from = 0) const {
    std::lock_guard lk(mu_);
    std::size_t n = 0;
    for (std::size_t i = from; i < entries_.size(); ++i)
      if (entries_[i].event.kind == kind && entries_[i].event.process_id == process_id) ++n;
    return n;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<entry> entries_;
};

// Runs an example's body and turns an unexpected exception into a failure.
inline int run_example(const char* name, const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    say("{}: unexpected exception: {}", name, e.what());
    return 1;
  }
}

}  // namespace examples
