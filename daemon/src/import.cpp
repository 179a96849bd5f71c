// `procsup import`: supervisord configs and Procfiles to procsup.toml text (import.hpp). This
// file: the Procfile importer, shell-like splitting, format guessing and the shared TOML helpers;
// the supervisord importer is import_supervisord.cpp. docs/cli.md lists the whole mapping.
#include "procsup/daemon/import.hpp"

#include <limits.h>
#include <stdlib.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>

#include "import_detail.hpp"

namespace procsup::daemon {
namespace import_detail {

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A TOML basic string.
std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string toml_array(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + toml_string(items[i]);
  return out + "]";
}

// A comment line's text: one line, whatever the value held.
std::string one_line(std::string_view s) {
  std::string out;
  for (const char c : s) out += (c == '\n' || c == '\r') ? ' ' : c;
  return out;
}

static bool valid_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
}

// procsup program names are 1-64 of A-Z a-z 0-9 _ - . ; anything else becomes '_'.
std::string program_name_from(std::string_view raw, std::set<std::string>& taken) {
  std::string name;
  for (const char c : raw) {
    if ((static_cast<unsigned char>(c) & 0xC0) == 0x80) continue;  // UTF-8 continuation: one '_' per character
    name += valid_name_char(c) ? c : '_';
  }
  if (name.empty()) name = "program";
  if (name.size() > 64) name.resize(64);
  const std::string base = name;
  for (int n = 2; taken.count(name) != 0; ++n) {
    const std::string suffix = "-" + std::to_string(n);
    name = base.substr(0, 64 - suffix.size()) + suffix;
  }
  taken.insert(name);
  return name;
}

// What a command becomes: its argv as-is when plain, else through /bin/sh -c.

}  // namespace import_detail

namespace {

using namespace import_detail;

std::vector<std::string> argv_for_shell_command(const std::string& command) {
  if (!needs_shell(command))
    if (auto argv = split_command_line(command); argv && !argv->empty()) return *argv;
  return {"/bin/sh", "-c", command};
}


// ---- Procfile: `name: command` per line, `#` comments, blank lines (Heroku, foreman).

import_result import_procfile(std::string_view text, const std::string& path) {
  import_result r;
  std::istringstream in{std::string(text)};
  std::string raw;
  int line_no = 0;
  std::set<std::string> names;
  std::string programs;
  std::vector<std::string> notes;
  int index = 0;
  // foreman and Heroku run the commands from the Procfile's directory (./bin/rails ...).
  std::string dir;
  if (char* real = ::realpath(path.c_str(), nullptr)) {
    dir = real;
    std::free(real);
    dir = dir.substr(0, std::max<std::size_t>(dir.rfind('/'), 1));
  }
  while (std::getline(in, raw)) {
    ++line_no;
    if (!raw.empty() && raw.back() == '\r') raw.pop_back();
    const std::string t = trim(raw);
    if (t.empty() || t[0] == '#') continue;
    // foreman: ^([A-Za-z0-9_-]+):\s*(.+)$
    std::size_t n = 0;
    while (n < t.size() && (std::isalnum(static_cast<unsigned char>(t[n])) || t[n] == '_' || t[n] == '-')) ++n;
    if (n == 0 || n >= t.size() || t[n] != ':' || trim(t.substr(n + 1)).empty()) {
      notes.push_back(path + ":" + std::to_string(line_no) + ": not a `name: command` line, skipped: " + t);
      continue;
    }
    const std::string raw_name = t.substr(0, n);
    const std::string command = trim(t.substr(n + 1));
    const std::string name = program_name_from(raw_name, names);
    std::string p = "# " + path + ":" + std::to_string(line_no) + "\n[[program]]\nname = " + toml_string(name) + "\n";
    p += "command = " + toml_array(argv_for_shell_command(command)) + "\n";
    if (!dir.empty()) p += "cwd = " + toml_string(dir) + "\n";
    if (command.find("PORT") != std::string::npos) {
      // foreman gives each process type a port: 5000, 5100, ... (Heroku sets $PORT itself).
      p += "env = { PORT = \"" + std::to_string(5000 + 100 * index) + "\" }  # foreman's default for this process type\n";
    }
    programs += "\n" + p;
    ++index;
  }
  if (index == 0) {
    r.errors.push_back(path + ": no `name: command` line to import");
    for (auto& n : notes) r.errors.push_back(n);
    return r;
  }
  std::string out = "# procsup.toml imported from " + path + " by `procsup import`.\n";
  out += "# Check it with `procsup check FILE`, run it with `procsup run FILE`; docs/cli.md lists the mapping.\n";
  out += "# Commands with shell syntax ($VAR, pipes, &&, redirections) run through /bin/sh -c, as foreman\n";
  out += "# and Heroku run them; the others are split into argv and exec'd directly.\n";
  out += "# A .env file next to the Procfile is not read: put its variables into each program's env.\n";
  for (const auto& n : notes) out += "# " + one_line(n) + "\n";
  out += "\n[supervisor]\nsocket = \"/run/procsup.sock\"\n" + programs;
  r.toml = std::move(out);
  return r;
}

}  // namespace

std::optional<std::vector<std::string>> split_command_line(std::string_view line) {
  std::vector<std::string> out;
  std::string cur;
  bool have = false;  // "" is an argument too
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == '\'') {
      const auto close = line.find('\'', i + 1);
      if (close == std::string_view::npos) return std::nullopt;
      cur.append(line.substr(i + 1, close - i - 1));
      have = true;
      i = close;
    } else if (c == '"') {
      std::size_t j = i + 1;
      for (; j < line.size() && line[j] != '"'; ++j) {
        if (line[j] == '\\' && j + 1 < line.size() &&
            (line[j + 1] == '"' || line[j + 1] == '\\' || line[j + 1] == '$' || line[j + 1] == '`')) {
          cur += line[++j];
        } else {
          cur += line[j];
        }
      }
      if (j >= line.size()) return std::nullopt;
      have = true;
      i = j;
    } else if (c == '\\') {
      if (i + 1 >= line.size()) return std::nullopt;
      if (line[i + 1] != '\n') cur += line[i + 1];
      have = true;
      ++i;
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (have) out.push_back(std::move(cur));
      cur.clear();
      have = false;
    } else {
      cur += c;
      have = true;
    }
  }
  if (have) out.push_back(std::move(cur));
  return out;
}

bool needs_shell(std::string_view command) {
  char quote = 0;
  bool word_start = true;
  bool first_word = true;
  for (std::size_t i = 0; i < command.size(); ++i) {
    const char c = command[i];
    if (quote == '\'') {
      if (c == '\'') quote = 0;
      continue;
    }
    if (c == '\\') {
      ++i;
      continue;
    }
    if (quote == '"') {
      if (c == '"') quote = 0;
      else if (c == '$' || c == '`') return true;  // expanded inside double quotes too
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      word_start = false;
      continue;
    }
    if (std::string_view("$`|&;<>()*?[]~{}\n").find(c) != std::string_view::npos) return true;
    if (c == '#' && word_start) return true;  // a comment
    if (c == '=' && first_word) return true;  // VAR=value command
    if (c == ' ' || c == '\t') {
      if (!word_start) first_word = false;
      word_start = true;
    } else {
      word_start = false;
    }
  }
  return false;
}

std::optional<import_format> guess_import_format(const std::string& path, std::string_view text) {
  const std::string base = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  if (base.rfind("Procfile", 0) == 0) return import_format::procfile;
  auto ends = [&](const char* s) {
    const std::string_view e(s);
    return base.size() >= e.size() && base.compare(base.size() - e.size(), e.size(), e) == 0;
  };
  if (ends(".conf") || ends(".ini")) return import_format::supervisord;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t[0] == '[') return import_format::supervisord;
    const auto colon = t.find(':');
    if (colon != std::string::npos && colon > 0 &&
        std::all_of(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(colon),
                    [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; }))
      return import_format::procfile;
    return std::nullopt;
  }
  return std::nullopt;
}

import_result import_config(import_format format, const std::vector<import_file>& files) {
  if (files.empty()) return {{}, {"nothing to import"}};
  if (format == import_format::procfile) {
    if (files.size() > 1) return {{}, {"one Procfile at a time (got " + std::to_string(files.size()) + " files)"}};
    return import_procfile(files[0].text, files[0].path);
  }
  return import_detail::import_supervisord(files);
}


}  // namespace procsup::daemon
