// `procsup import FILE`: a supervisord config (INI, [program:x] sections) or a Procfile
// (`name: command` lines) turned into the text of an equivalent procsup.toml. What procsup has
// no equivalent for is kept as a comment with the reason, so nothing is dropped silently.
// Pure text in, text out (the only outside look-ups: [include] globs, the environment for
// %(ENV_X)s and the host name for %(host_node_name)s).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace procsup::daemon {

enum class import_format { supervisord, procfile };

// From the file's name (Procfile*, *.conf, *.ini) and then its content ([program:x] sections,
// `name: command` lines); nullopt when it looks like neither.
std::optional<import_format> guess_import_format(const std::string& path, std::string_view text);

struct import_result {
  std::string toml;                 // the procsup.toml text (empty when errors is not)
  std::vector<std::string> errors;  // "FILE:LINE: message": nothing could be imported
};

struct import_file {
  std::string path;  // names the file in messages; where %(here)s and relative [include] globs start
  std::string text;
};

// The first file is the config; more (supervisord only, e.g. conf.d/*.conf) are read as if
// [include]d. The first file's [include] globs are followed too, where they match.
import_result import_config(import_format format, const std::vector<import_file>& files);

// Splits a command line into argv as POSIX sh would (quotes, backslashes; no expansion), like
// Python's shlex.split, which supervisord uses for `command`. nullopt: an unterminated quote.
std::optional<std::vector<std::string>> split_command_line(std::string_view line);

// True if `command` needs a shell to mean what it says: parameter expansion ($PORT), pipes,
// lists (&&, ;), redirections, globs, subshells, a leading VAR=value.
bool needs_shell(std::string_view command);

}  // namespace procsup::daemon
