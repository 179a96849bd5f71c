// procsup_fork_eagain_probe: makes fork fail with EAGAIN under a supervisor and checks that the
// supervisor reports spawn_failed, retries with backoff, and recovers once forking works again.
// Run by tests/fault/test_supervisor_fork_eagain.cpp as root; it drops to uid/gid 65534 first,
// because RLIMIT_NPROC is not enforced for root (or with CAP_SYS_RESOURCE / CAP_SYS_ADMIN).
//
// Exit codes: 0 as expected; 77 cannot run here (not root, setuid failed); 1..9 a failed step
// (printed on stdout).
#include <sys/prctl.h>
#include <sys/resource.h>
#include <grp.h>
#include <signal.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "procsup/procsup.hpp"

namespace {

using namespace std::chrono_literals;

struct echo {
  std::string handle(const std::string& s) { return "ok:" + s; }
};

struct recorder {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<procsup::lifecycle_event> events;
  std::size_t count(procsup::event_kind k) {
    std::size_t n = 0;
    for (auto& e : events) n += e.kind == k ? 1 : 0;
    return n;
  }
  bool wait_for(procsup::event_kind k, std::size_t n) {
    std::unique_lock lk(mu);
    return cv.wait_for(lk, 60s, [&] { return count(k) >= n; });
  }
};

int fail(int code, const std::string& what) {
  std::printf("FAILED (%d): %s\n", code, what.c_str());
  std::fflush(stdout);
  return code;
}

}  // namespace

int main() {
  if (::geteuid() != 0) return fail(77, "not root: cannot switch to uid 65534");
  if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0)
    return fail(77, "cannot switch to uid/gid 65534");
  ::prctl(PR_SET_DUMPABLE, 1);  // LeakSanitizer (ASan builds) needs to ptrace its own threads

  recorder rec;
  rlimit original{};
  ::getrlimit(RLIMIT_NPROC, &original);
  int rc = 0;
  {
    procsup::supervisor sup({.name = "eagain",
                             .backoff = {.initial = 0ms, .step = 20ms, .max = 200ms},
                             .emit =
                                 [&rec](const procsup::lifecycle_event& e) {
                                   std::lock_guard lk(rec.mu);
                                   rec.events.push_back(e);
                                   rec.cv.notify_all();
                                 },
                             .log = false});
    auto p = sup.spawn(echo{}, {.name = "child"});
    const pid_t first = p.pid();
    if (p.send("a").get() != "ok:a") return fail(1, "first instance does not answer");

    // Every task of uid 65534 (this process's threads and its child) counts against the limit:
    // with a soft limit of 1, the next fork fails with EAGAIN. Threads already exist.
    rlimit low = original;
    low.rlim_cur = 1;
    if (::setrlimit(RLIMIT_NPROC, &low) != 0) return fail(2, "setrlimit(RLIMIT_NPROC, 1)");
    ::kill(first, SIGKILL);
    if (!rec.wait_for(procsup::event_kind::spawn_failed, 2)) {
      rc = fail(3, "no two spawn_failed events while fork is refused");
    } else {
      std::lock_guard lk(rec.mu);
      for (auto& e : rec.events)
        if (e.kind == procsup::event_kind::spawn_failed && e.cause.find("Resource temporarily unavailable") == std::string::npos &&
            e.cause.find("EAGAIN") == std::string::npos)
          rc = fail(4, "spawn_failed without EAGAIN: " + e.cause);
    }
    // A send made meanwhile waits for the instance that will start once fork works again.
    auto queued = p.send("queued");
    if (::setrlimit(RLIMIT_NPROC, &original) != 0) return fail(5, "cannot restore RLIMIT_NPROC");
    if (rc == 0) {
      if (!queued.wait_for(60s)) {
        rc = fail(6, "no instance started after RLIMIT_NPROC was raised");
      } else {
        try {
          if (queued.get() != "ok:queued") rc = fail(7, "wrong reply from the new instance");
        } catch (const std::exception& e) {
          rc = fail(7, std::string("the queued send failed: ") + e.what());
        }
        if (rc == 0 && (p.pid() == first || p.pid() == 0)) rc = fail(8, "no new instance");
      }
    }
    if (rc == 0) {
      std::lock_guard lk(rec.mu);
      std::printf("spawn_failed %zu, spawned %zu, ready %zu, gave_up %zu\n", rec.count(procsup::event_kind::spawn_failed),
                  rec.count(procsup::event_kind::spawned), rec.count(procsup::event_kind::ready),
                  rec.count(procsup::event_kind::gave_up));
      if (rec.count(procsup::event_kind::gave_up) != 0) rc = fail(9, "the supervisor gave up on a transient failure");
    }
    sup.stop();
  }
  if (rc == 0) std::printf("OK\n");
  std::fflush(stdout);
  return rc;
}
