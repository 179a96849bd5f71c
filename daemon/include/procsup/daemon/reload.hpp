// Live reload (`procsup ctl reload`, SIGHUP): what differs between the running config and a newly
// parsed one. The runner applies the plan; this file only compares.
#pragma once

#include <string>
#include <vector>

#include "procsup/daemon/config.hpp"

namespace procsup::daemon {

// True if every setting that shapes an instance is equal: all fields except `instances` (an
// instance-count change starts or stops only the extra instances) and `line` (where the table
// sits in the file: moving it is no change).
bool same_program(const program_config& a, const program_config& b);

struct reload_plan {
  std::vector<std::string> added;      // new names: start all their instances
  std::vector<std::string> removed;    // names gone: stop and forget their instances
  std::vector<std::string> changed;    // settings differ: stop every instance, start anew
  std::vector<std::string> resized;    // only `instances` differs: start / stop the extra ones
  std::vector<std::string> unchanged;  // keep running, same pids
  // [supervisor] differences, as log lines. policy / intensity / period are applied live;
  // the socket is not (it needs a restart of procsup).
  std::vector<std::string> supervisor_notes;
  bool limits_changed = false;  // policy, intensity or period
  bool socket_changed = false;

  bool empty() const noexcept {
    return added.empty() && removed.empty() && changed.empty() && resized.empty() && !limits_changed &&
           !socket_changed;
  }
  // "2 added (a, b), 1 removed (c), 1 changed (d), 1 resized (e: 1 -> 3), 4 unchanged"
  std::string summary() const;
  std::vector<std::string> resized_notes;  // "e: 1 -> 3", for summary()
};

// `running`: the programs as they run now, in start order.
reload_plan plan_reload(const supervisor_config& running_supervisor, const std::vector<const program_config*>& running,
                        const config& next);

}  // namespace procsup::daemon
