// Child output routing: pipes read by the event loop, inherited fds, files.
#include "procsup/daemon/output.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cstring>

#include "procsup/daemon/logging.hpp"

namespace procsup::daemon {

output_router::~output_router() { flush_all(); }

std::vector<int> output_router::prepare(const program_config& p, const std::string& id, child_setup& s) {
  std::vector<int> close_after;
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull >= 0) {
    s.fds.emplace_back(devnull, 0);
    close_after.push_back(devnull);
  }
  const std::pair<const output_target*, int> streams[] = {{&p.stdout_target, 1}, {&p.stderr_target, 2}};
  for (auto [target, fd] : streams) {
    switch (target->where) {
      case output_target::kind::inherit:
        break;
      case output_target::kind::file: {
        int f = ::open(target->path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (f < 0) {
          log_event(spdlog::level::err, "[" + id + "] cannot open its output file",
                    {{"program", id}, {"path", target->path}, {"error", std::strerror(errno)}});
          break;
        }
        s.fds.emplace_back(f, fd);
        close_after.push_back(f);
        break;
      }
      case output_target::kind::log: {
        int pfd[2];
        if (::pipe2(pfd, O_CLOEXEC) != 0) {
          log_event(spdlog::level::err, "[" + id + "] cannot create an output pipe",
                    {{"program", id}, {"error", std::strerror(errno)}});
          break;
        }
        ::fcntl(pfd[0], F_SETFL, O_NONBLOCK);
        s.fds.emplace_back(pfd[1], fd);
        close_after.push_back(pfd[1]);
        watch(pfd[0], id, fd == 1 ? "stdout" : "stderr");
        break;
      }
    }
  }
  return close_after;
}

void output_router::watch(int fd, const std::string& id, const char* stream) {
  pipes_[fd] = pipe_state{id, stream, {}};
  loop_.watch(fd, EPOLLIN, [this, fd](std::uint32_t) { read_some(fd); });
}

// At most 64 KiB per wake-up: a child that floods its output cannot starve the loop (epoll is
// level-triggered and comes back).
void output_router::read_some(int fd) {
  auto it = pipes_.find(fd);
  if (it == pipes_.end()) return;
  auto& p = it->second;
  char buf[65536];
  ssize_t n = ::read(fd, buf, sizeof buf);
  if (n > 0) {
    p.partial.append(buf, static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (std::size_t nl; (nl = p.partial.find('\n', start)) != std::string::npos; start = nl + 1)
      log_line(p, std::string_view(p.partial).substr(start, nl - start));
    p.partial.erase(0, start);
    if (p.partial.size() > 4096) {  // a line without end: log it in pieces
      log_line(p, p.partial);
      p.partial.clear();
    }
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (!p.partial.empty()) log_line(p, p.partial);
  loop_.unwatch(fd);
  ::close(fd);
  pipes_.erase(it);
}

void output_router::log_line(const pipe_state& p, std::string_view line) {
  // Prefixed with the program's name, so a plain-text log reads like `[api] listening on :80`.
  log_event(spdlog::level::info, "[" + p.id + "] " + std::string(line), {{"program", p.id}, {"stream", p.stream}});
}

void output_router::flush_all() {
  for (auto& [fd, p] : pipes_) {
    if (!p.partial.empty()) log_line(p, p.partial);
    loop_.unwatch(fd);
    ::close(fd);
  }
  pipes_.clear();
}

}  // namespace procsup::daemon
