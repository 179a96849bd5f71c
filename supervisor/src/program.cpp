// procsup::program (program.hpp): the public handle, forwarding to the unit it holds.
#include "procsup/supervisor/program.hpp"

#include "procsup/supervisor/detail/unit.hpp"
#include "procsup/supervisor/supervisor.hpp"

namespace procsup {

const std::string& program::id() const noexcept { return unit_->id(); }
process_info program::info() const { return unit_->info(); }
process_sample program::sample() const { return unit_->sample(); }
process_state program::state() const { return unit_->state(); }
const std::shared_ptr<procsup::cgroup>& program::cgroup() const noexcept { return unit_->spec().cgroup; }
void program::signal(int sig) { unit_->signal(sig); }
void program::mark_ready(pid_t pid, std::string how) { unit_->mark_ready(pid, std::move(how)); }
void program::extend_start_timeout(std::chrono::milliseconds more) { unit_->extend_start_timeout(more); }
void program::kill_with_cause(std::string cause) { unit_->kill_with_cause(std::move(cause)); }
program supervisor::spawn_program(program_options options, strategy s, bool wait) {
  return program(add_program(std::move(options), s, wait));
}

void program::send_bytes_async(std::vector<std::byte> body, reply_done done) {
  unit_->send_bytes_async(std::move(body), std::move(done));
}

}  // namespace procsup
