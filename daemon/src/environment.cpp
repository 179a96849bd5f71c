// A program's environment: env files, ${VAR} and {instance} expansion, and the environment an
// instance is launched with. See environment.hpp.
#include "procsup/daemon/environment.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace procsup::daemon {

namespace {

bool valid_variable_name(std::string_view name) {
  if (name.empty() || (name.front() >= '0' && name.front() <= '9')) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

bool blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// One line of work: the text, where we are, which line that is.
struct cursor {
  std::string_view text;
  std::size_t pos = 0;
  int line = 1;
  bool done() const { return pos >= text.size(); }
  char peek() const { return text[pos]; }
  void skip_blanks() {
    while (!done() && blank(peek())) ++pos;
  }
  void skip_line() {
    while (!done() && peek() != '\n') ++pos;
  }
};

}  // namespace

std::variant<env_entries, std::vector<config_error>> parse_env_file(std::string_view text, const std::string& file) {
  env_entries out;
  std::vector<config_error> errors;
  cursor c{text};
  auto error = [&](int line, std::string message) { errors.push_back({file, line, 0, "", std::move(message)}); };
  while (!c.done()) {
    c.skip_blanks();
    if (c.done()) break;
    if (c.peek() == '\n') {
      ++c.line;
      ++c.pos;
      continue;
    }
    if (c.peek() == '#' || c.peek() == ';') {
      c.skip_line();
      continue;
    }
    const int entry_line = c.line;
    auto read_key = [&] {
      const std::size_t start = c.pos;
      while (!c.done() && c.peek() != '=' && c.peek() != '\n' && !blank(c.peek())) ++c.pos;
      return std::string(text.substr(start, c.pos - start));
    };
    std::string key = read_key();
    if (key == "export" && !c.done() && blank(c.peek())) {
      c.skip_blanks();
      key = read_key();
    }
    c.skip_blanks();
    if (c.done() || c.peek() != '=') {
      error(entry_line, "expected KEY=VALUE, got \"" + key + "\" without \"=\"");
      c.skip_line();
      continue;
    }
    ++c.pos;  // '='
    if (!valid_variable_name(key)) {
      error(entry_line, "\"" + key + "\" is not a valid variable name (letters, digits and _, not first a digit)");
      c.skip_line();
      continue;
    }
    c.skip_blanks();
    std::string value;
    std::size_t keep = 0;       // value is cut here at the end: trailing blanks of unquoted text go
    bool unquoted = false;      // unquoted text has begun: quotes are ordinary characters now
    bool bad = false;
    while (!c.done() && c.peek() != '\n') {
      const char ch = c.peek();
      if (!unquoted && ch == '\'') {
        const std::size_t close = text.find('\'', c.pos + 1);
        if (close == std::string_view::npos) {
          error(entry_line, "unterminated single quote in the value of " + key);
          bad = true;
          c.pos = text.size();
          break;
        }
        const auto piece = text.substr(c.pos + 1, close - c.pos - 1);
        for (char p : piece) c.line += p == '\n';
        value += piece;
        keep = value.size();
        c.pos = close + 1;
        continue;
      }
      if (!unquoted && ch == '"') {
        ++c.pos;
        bool closed = false;
        while (!c.done()) {
          const char q = c.peek();
          if (q == '"') {
            closed = true;
            ++c.pos;
            break;
          }
          if (q == '\\' && c.pos + 1 < text.size()) {
            const char next = text[c.pos + 1];
            c.pos += 2;
            if (next == '\n') ++c.line;  // continuation
            else if (std::strchr("\"\\`$", next) != nullptr) value += next;
            else (value += '\\') += next;
            continue;
          }
          if (q == '\n') ++c.line;
          value += q;
          ++c.pos;
        }
        if (!closed) {
          error(entry_line, "unterminated double quote in the value of " + key);
          bad = true;
          break;
        }
        keep = value.size();
        continue;
      }
      if (ch == '\\') {
        if (c.pos + 1 < text.size()) {
          const char next = text[c.pos + 1];
          c.pos += 2;
          if (next == '\n') {
            ++c.line;  // continuation
            continue;
          }
          value += next;
          keep = value.size();
          unquoted = true;
        } else {
          ++c.pos;
        }
        continue;
      }
      ++c.pos;
      if (blank(ch)) {
        if (unquoted) value += ch;  // inside the text; trailing ones are cut by `keep`
        continue;
      }
      value += ch;
      keep = value.size();
      unquoted = true;
    }
    if (bad) continue;
    value.resize(keep);
    out.emplace_back(std::move(key), std::move(value));
  }
  if (!errors.empty()) return errors;
  return out;
}

std::variant<env_entries, std::vector<config_error>> load_env_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int e = errno;
    return std::vector<config_error>{{path, 0, 0, "", std::string("cannot read env file: ") + std::strerror(e)}};
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_env_file(ss.str(), path);
}

std::optional<std::string> expand_variables(std::string_view text, const env_lookup& lookup, std::string& error) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (text.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      out += text[i++];
      continue;
    }
    const std::size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      error = "unterminated \"${\" in \"" + std::string(text) + "\" (write $${ for a literal ${)";
      return std::nullopt;
    }
    const std::string_view inner = text.substr(i + 2, close - i - 2);
    const std::size_t sep = inner.find(":-");
    const std::string name(inner.substr(0, sep));
    if (!valid_variable_name(name)) {
      error = "\"${" + std::string(inner) + "}\": \"" + name + "\" is not a variable name (use ${NAME} or ${NAME:-default})";
      return std::nullopt;
    }
    const auto value = lookup(name);
    if (value && !value->empty()) out += *value;
    else if (sep != std::string_view::npos) out += inner.substr(sep + 2);
    else if (!value) {
      error = "${" + name + "} is not set in procsup's environment (give a default: ${" + name + ":-value})";
      return std::nullopt;
    }
    i = close + 1;
  }
  return out;
}

env_lookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

std::string expand_instance(std::string text, int index) {
  static constexpr std::string_view token = "{instance}";
  const std::string n = std::to_string(index);
  for (std::size_t at = 0; (at = text.find(token, at)) != std::string::npos; at += n.size()) text.replace(at, token.size(), n);
  return text;
}

std::vector<std::string> instance_environment(const program_config& p, std::vector<std::string> env, int index,
                                              const std::string& instance_id, bool drops_user) {
  auto set = [&env](const std::string& name, const std::string& value) {
    const std::string prefix = name + "=";
    for (auto& e : env)
      if (e.compare(0, prefix.size(), prefix) == 0) {
        e = prefix + value;
        return;
      }
    env.push_back(prefix + value);
  };
  if (drops_user && p.user) {
    set("HOME", p.home);
    set("USER", *p.user);
    set("LOGNAME", *p.user);
    set("SHELL", p.shell);
  }
  for (const auto& [k, v] : p.file_env) set(k, v);
  for (const auto& [k, v] : p.env) set(k, expand_instance(v, index));
  set("PROCSUP_PROGRAM", p.name);
  set("PROCSUP_INSTANCE", std::to_string(index));
  set("PROCSUP_INSTANCE_ID", instance_id);
  return env;
}

}  // namespace procsup::daemon
