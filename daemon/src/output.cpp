// Child output routing: pipes read by the event loop (to procsup's log or to a rotated file),
// inherited fds; the per-instance tails and `ctl logs -f` followers.
#include "procsup/daemon/output.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "procsup/daemon/logging.hpp"

namespace procsup::daemon {

namespace {

// "api" -> 0, "api:3" -> 3 (program names have no ':').
int instance_index(const program_config& p, const std::string& id) {
  if (id.size() <= p.name.size() + 1) return 0;
  return std::atoi(id.c_str() + p.name.size() + 1);
}

}  // namespace

nlohmann::json to_json(const output_line& line) {
  return {{"line", line.text}, {"program", line.program}, {"id", line.id}, {"stream", line.stream}};
}

void output_tail::push(output_line line) {
  bytes_ += line.text.size();
  lines_.push_back(std::move(line));
  while (!lines_.empty() && (lines_.size() > max_lines_ || bytes_ > max_bytes_)) {
    bytes_ -= lines_.front().text.size();
    lines_.pop_front();
  }
}

std::vector<output_line> output_tail::last(std::size_t n) const {
  const std::size_t from = lines_.size() > n ? lines_.size() - n : 0;
  return {lines_.begin() + static_cast<std::ptrdiff_t>(from), lines_.end()};
}

output_router::~output_router() { flush_all(); }

output_router::file_state* output_router::file_for(const program_config& p, const output_target& target,
                                                   const std::string& id) {
  auto it = files_.find(target.path);
  if (it == files_.end())
    it = files_.emplace(target.path, file_state{std::make_unique<log_file>(target.path, p.log_max_size, p.log_keep)})
             .first;
  else
    it->second.file->set_limits(p.log_max_size, p.log_keep);  // the latest config's (reload)
  if (auto err = it->second.file->open()) {
    log_event(spdlog::level::err, "[" + id + "] cannot open its output file: its output goes to procsup's log",
              {{"path", target.path}, {"error", err->message}}, {{"program", p.name}, {"id", id}});
    return nullptr;
  }
  return &it->second;
}

std::vector<int> output_router::prepare(const program_config& p, const std::string& id, child_setup& s) {
  if (devnull_ < 0) devnull_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull_ >= 0) s.fds.emplace_back(devnull_, 0);
  const std::pair<const output_target*, int> streams[] = {{&p.stdout_target, 1}, {&p.stderr_target, 2}};
  for (auto [target, fd] : streams) {
    const auto held = held_.find({id, fd});
    if (target->where == output_target::kind::inherit) {
      if (held != held_.end()) retire(held);
      continue;
    }
    // "log" and files alike: a pipe that the loop reads. A file is written by procsup, never by
    // the child, so it can be rotated while the child runs.
    file_state* file = target->where == output_target::kind::file ? file_for(p, *target, id) : nullptr;
    if (held != held_.end()) {
      const auto it = pipes_.find(held->second.read_fd);
      if (it != pipes_.end() && it->second.file == file) {
        end_run(it->first, it->second);  // normally done at the exit already (run_ended)
        s.fds.emplace_back(held->second.write_fd, fd);
        continue;
      }
      retire(held);  // the target changed (reload)
    }
    int pfd[2];
    if (::pipe2(pfd, O_CLOEXEC) != 0) {
      // Out of fds: this start fails (and is retried by the program's strategy), rather than
      // running a program whose output nobody reads.
      throw std::system_error(errno, std::generic_category(),
                              "cannot create the " + std::string(fd == 1 ? "stdout" : "stderr") + " pipe of " + id);
    }
    ::fcntl(pfd[0], F_SETFL, O_NONBLOCK);
    s.fds.emplace_back(pfd[1], fd);
    held_[{id, fd}] = held_pipe{pfd[0], pfd[1]};
    watch(pfd[0], pipe_state{p.name, instance_index(p, id), id, fd == 1 ? "stdout" : "stderr", file, {}});
  }
  return {};
}

void output_router::retire(std::map<std::pair<std::string, int>, held_pipe>::iterator held) {
  // The read end stays watched: it reaches EOF (and is closed) once nobody else writes.
  ::close(held->second.write_fd);
  held_.erase(held);
}

void output_router::release(const std::string& id) {
  for (int fd : {1, 2})
    if (const auto held = held_.find({id, fd}); held != held_.end()) retire(held);
}

void output_router::run_ended(const std::string& id) {
  for (int fd : {1, 2}) {
    const auto held = held_.find({id, fd});
    if (held == held_.end()) continue;
    if (const auto it = pipes_.find(held->second.read_fd); it != pipes_.end()) end_run(it->first, it->second);
  }
}

// What a run left in its held pipe is taken now, and its unfinished last line ends here (an EOF
// used to do both) rather than running into the next run's first line.
void output_router::end_run(int fd, pipe_state& p) {
  drain(fd, p, 16);
  if (!p.partial.empty()) {
    emit_line(p, p.partial);
    p.partial.clear();
  }
}

void output_router::drain(int fd, pipe_state& p, int rounds) {
  static char buf[read_chunk];  // loop thread only
  for (int round = 0; round < rounds; ++round) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    consume(p, std::string_view(buf, static_cast<std::size_t>(n)));
  }
}

void output_router::watch(int fd, pipe_state state) {
  pipes_[fd] = std::move(state);
  loop_.watch(fd, EPOLLIN, [this, fd](std::uint32_t) { read_some(fd); });
}

void output_router::read_some(int fd) {
  auto it = pipes_.find(fd);
  if (it == pipes_.end()) return;
  auto& p = it->second;
  static char buf[read_chunk];  // loop thread only
  const ssize_t n = ::read(fd, buf, sizeof buf);
  if (n > 0) {
    consume(p, std::string_view(buf, static_cast<std::size_t>(n)));
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  close_pipe(fd, p);
  pipes_.erase(it);
  // A read error on a held pipe (EOF cannot happen while its write end is held): the instance's
  // next run gets a new one, and this fd number can be reused by another pipe.
  for (auto h = held_.begin(); h != held_.end(); ++h)
    if (h->second.read_fd == fd) {
      retire(h);
      break;
    }
}

// Raw bytes to the file (exactly what the child wrote); lines to procsup's log and the tail.
void output_router::consume(pipe_state& p, std::string_view data) {
  if (p.file != nullptr) {
    if (auto err = p.file->file->write(data)) {
      if (!p.file->failing)
        log_event(spdlog::level::err, "[" + p.id + "] cannot write its output file: output dropped until it works again",
                  {{"path", p.file->file->path()}, {"error", err->message}}, {{"program", p.program}, {"id", p.id}});
      p.file->failing = true;
    } else if (p.file->failing) {
      p.file->failing = false;
      log_event(spdlog::level::info, "[" + p.id + "] its output file works again", {{"path", p.file->file->path()}},
                {{"program", p.program}, {"id", p.id}});
    }
  }
  try {
    while (!data.empty()) {
      const auto nl = data.find('\n');
      if (nl == std::string_view::npos) {
        const std::size_t take = std::min(data.size(), max_line - std::min(max_line, p.partial.size()));
        p.partial.append(data.substr(0, take));
        data.remove_prefix(take);
        if (p.partial.size() >= max_line) {  // a line without end: kept in pieces
          emit_line(p, p.partial);
          p.partial.clear();
        }
        continue;
      }
      if (p.partial.empty()) {
        emit_line(p, data.substr(0, nl));
      } else {
        p.partial.append(data.substr(0, nl));
        emit_line(p, p.partial);
        p.partial.clear();
      }
      data.remove_prefix(nl + 1);
    }
  } catch (...) {  // std::bad_alloc: drop the line, keep the loop alive
    p.partial.clear();
  }
}

void output_router::emit_line(const pipe_state& p, std::string_view text) {
  if (p.file == nullptr)
    // Prefixed with the instance, so a plain-text log reads like `[api] listening on :80`.
    log_program_line(p.id, text, {{"program", p.program}, {"instance", p.instance}, {"id", p.id}, {"stream", p.stream}});
  output_line line{next_seq_++, p.program, p.id, p.stream, std::string(text)};
  if (!followers_.empty()) {
    dispatching_ = true;
    for (auto& [key, f] : followers_) {
      if (f.dead || f.ids.count(p.id) == 0) continue;
      bool keep = false;
      try {
        keep = f.sink(line);
      } catch (...) {
      }
      if (!keep) f.dead = true;
    }
    dispatching_ = false;
    std::erase_if(followers_, [](const auto& kv) { return kv.second.dead; });
  }
  tails_[p.id].push(std::move(line));
}

void output_router::close_pipe(int fd, pipe_state& p) {
  if (!p.partial.empty()) {
    emit_line(p, p.partial);
    p.partial.clear();
  }
  loop_.unwatch(fd);
  ::close(fd);
}

void output_router::flush_all() {
  for (auto& [key, held] : held_) ::close(held.write_fd);
  held_.clear();
  for (auto& [fd, p] : pipes_) {
    // The children are gone: take what they left in the pipe (bounded: a grandchild may still
    // hold the pipe and write).
    drain(fd, p, 16);
    close_pipe(fd, p);
  }
  pipes_.clear();
  if (devnull_ >= 0) ::close(devnull_);
  devnull_ = -1;
}

std::vector<output_line> output_router::tail(const std::vector<std::string>& ids, std::size_t n) const {
  std::vector<output_line> out;
  for (const auto& id : ids) {
    const auto it = tails_.find(id);
    if (it == tails_.end()) continue;
    auto lines = it->second.last(n);
    out.insert(out.end(), std::make_move_iterator(lines.begin()), std::make_move_iterator(lines.end()));
  }
  std::sort(out.begin(), out.end(), [](const output_line& a, const output_line& b) { return a.seq < b.seq; });
  if (out.size() > n) out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(n));
  return out;
}

void output_router::follow(int key, std::vector<std::string> ids, line_sink sink) {
  // Called from the control handler, never from inside a sink (which emit_line may be running).
  followers_[key] = follower{std::set<std::string>(ids.begin(), ids.end()), std::move(sink), false};
}

void output_router::unfollow(int key) {
  const auto it = followers_.find(key);
  if (it == followers_.end()) return;
  if (dispatching_) it->second.dead = true;  // emit_line erases it after its loop
  else followers_.erase(it);
}

nlohmann::json output_router::logs_command(const nlohmann::json& request, const std::vector<std::string>& ids,
                                           int connection, std::function<bool(int, const nlohmann::json&)> push) {
  std::size_t n = 50;
  if (request.contains("lines")) {
    const auto& v = request["lines"];
    if (!v.is_number_integer() || v.get<long long>() < 0)
      return {{"ok", false}, {"error", "\"lines\" must be a non-negative integer"}};
    n = static_cast<std::size_t>(v.get<long long>());
  }
  nlohmann::json lines = nlohmann::json::array();
  for (const auto& l : tail(ids, n)) lines.push_back(to_json(l));
  const bool follow_it = request.value("follow", false);
  if (follow_it) {
    if (connection < 0 || !push) return {{"ok", false}, {"error", "follow needs a control connection"}};
    follow(connection, ids, [connection, push = std::move(push)](const output_line& l) { return push(connection, to_json(l)); });
  }
  return {{"ok", true}, {"instances", ids}, {"lines", std::move(lines)}, {"follow", follow_it}};
}

}  // namespace procsup::daemon
