// A program's environment (issue 20): env files (systemd's EnvironmentFile syntax), ${VAR}
// expansion from procsup's own environment (at config load, so `check` sees it), {instance}
// expansion per instance, and the environment an instance is launched with.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "procsup/daemon/config.hpp"

namespace procsup::daemon {

using env_entries = std::vector<std::pair<std::string, std::string>>;

// Parses an env file: KEY=VALUE lines; blank lines and lines whose first non-blank character is
// `#` or `;` are skipped; an optional `export ` before the key; blanks around `=` and around an
// unquoted value are dropped. As systemd's EnvironmentFile: a value (or a piece of it) in
// '...' is literal, in "..." takes \" \\ \` \$ escapes; a backslash at the end of a line
// continues it; outside quotes a backslash keeps the next character. Errors name file:line.
std::variant<env_entries, std::vector<config_error>> parse_env_file(std::string_view text, const std::string& file);

// Reads and parses `path`; an unreadable file is one error naming it (line 0).
std::variant<env_entries, std::vector<config_error>> load_env_file(const std::string& path);

// Expands ${NAME} and ${NAME:-default} (the default when NAME is unset or empty) in `text`.
// `$${` is a literal `${`; any other `$` is kept as it is (so `sh -c 'echo $HOME'` is untouched).
// nullopt with `error` set when a variable is unset without a default, or a ${ is malformed.
using env_lookup = std::function<std::optional<std::string>(const std::string& name)>;
std::optional<std::string> expand_variables(std::string_view text, const env_lookup& lookup, std::string& error);

// procsup's own environment (getenv), for expand_variables.
env_lookup process_environment();

// Replaces every "{instance}" in `text` with `index` (so `--port=80{instance}` gives 800, 801).
std::string expand_instance(std::string text, int index);

// The environment instance `index` (id `instance_id`) of `p` is launched with: `inherited`
// (procsup's own, NOTIFY_SOCKET & co. already stripped), then, when it drops to p.user, HOME,
// USER, LOGNAME and SHELL from the passwd entry (as systemd does), then its env files, then its
// `env` table ({instance} expanded), then PROCSUP_PROGRAM, PROCSUP_INSTANCE, PROCSUP_INSTANCE_ID.
// A later source replaces a variable of an earlier one.
std::vector<std::string> instance_environment(const program_config& p, std::vector<std::string> inherited, int index,
                                              const std::string& instance_id, bool drops_user);

}  // namespace procsup::daemon
