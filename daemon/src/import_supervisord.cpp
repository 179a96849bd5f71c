// `procsup import` of supervisord configs: its INI dialect (as Python's ConfigParser reads it
// for supervisord), %(name)s expansions, [include], and every [program:x] key mapped to procsup's
// or kept as a comment with the reason (docs/cli.md has the table).
#include <glob.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "import_detail.hpp"

namespace procsup::daemon::import_detail {
namespace {

// ---- the INI dialect

struct ini_entry {
  std::string key;  // lower case
  std::string value;
  int line = 0;
};

struct ini_section {
  std::string name;  // as written, e.g. "program:web"
  int line = 0;
  std::vector<ini_entry> entries;
  const ini_entry* find(const std::string& key) const {
    for (const auto& e : entries)
      if (e.key == key) return &e;
    return nullptr;
  }
};

// Python's ConfigParser as supervisord configures it: `key = value` or `key: value`, `;` and
// `#` comment lines and inline comments (after whitespace), indented continuation lines.
std::vector<ini_section> parse_ini(std::string_view text, const std::string& path, std::vector<std::string>& errors) {
  std::vector<ini_section> out;
  std::istringstream in{std::string(text)};
  std::string raw;
  int line_no = 0;
  ini_entry* last = nullptr;
  while (std::getline(in, raw)) {
    ++line_no;
    if (!raw.empty() && raw.back() == '\r') raw.pop_back();
    const std::string t = trim(raw);
    if (t.empty() || t[0] == ';' || t[0] == '#') {
      if (t.empty()) last = nullptr;
      continue;
    }
    // Inline comment: ';' or '#' preceded by whitespace.
    std::string content = raw;
    for (std::size_t i = 1; i < content.size(); ++i)
      if ((content[i] == ';' || content[i] == '#') && (content[i - 1] == ' ' || content[i - 1] == '\t')) {
        content.resize(i);
        break;
      }
    if ((raw[0] == ' ' || raw[0] == '\t') && last != nullptr) {  // continuation
      last->value += "\n" + trim(content);
      continue;
    }
    const std::string c = trim(content);
    if (c.front() == '[') {
      const auto close = c.find(']');
      if (close == std::string::npos) {
        errors.push_back(path + ":" + std::to_string(line_no) + ": section header without ']': " + c);
        continue;
      }
      out.push_back({trim(c.substr(1, close - 1)), line_no, {}});
      last = nullptr;
      continue;
    }
    if (out.empty()) {
      errors.push_back(path + ":" + std::to_string(line_no) + ": a key before any [section]: " + c);
      continue;
    }
    const auto sep = c.find_first_of("=:");
    ini_entry e;
    e.key = lower(trim(c.substr(0, sep)));
    e.value = sep == std::string::npos ? "" : trim(c.substr(sep + 1));
    e.line = line_no;
    // A later duplicate wins, as in ConfigParser(strict=False).
    auto& entries = out.back().entries;
    entries.erase(std::remove_if(entries.begin(), entries.end(), [&](const ini_entry& x) { return x.key == e.key; }),
                  entries.end());
    entries.push_back(std::move(e));
    last = &entries.back();
  }
  return out;
}

std::optional<bool> ini_bool(const std::string& v) {
  const std::string l = lower(v);
  if (l == "true" || l == "yes" || l == "on" || l == "1") return true;
  if (l == "false" || l == "no" || l == "off" || l == "0") return false;
  return std::nullopt;
}

// supervisord's byte sizes: 1024-based KB / MB / GB.
std::optional<std::string> ini_size(const std::string& v) {
  const std::string u = lower(trim(v));
  std::size_t digits = 0;
  while (digits < u.size() && std::isdigit(static_cast<unsigned char>(u[digits]))) ++digits;
  if (digits == 0) return std::nullopt;
  const std::string n = u.substr(0, digits);
  const std::string unit = u.substr(digits);
  if (unit.empty() || unit == "b") return n;
  if (unit == "kb") return "\"" + n + "KiB\"";
  if (unit == "mb") return "\"" + n + "MiB\"";
  if (unit == "gb") return "\"" + n + "GiB\"";
  return std::nullopt;
}

std::optional<long> ini_int(const std::string& v) {
  const std::string t = trim(v);
  if (t.empty()) return std::nullopt;
  char* end = nullptr;
  const long n = std::strtol(t.c_str(), &end, 10);
  if (*end != '\0') return std::nullopt;
  return n;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

// supervisord's %(name)s / %(name)02d expansions. Unknown names are left as written and reported.
struct expander {
  std::map<std::string, std::string> vars;  // program_name, group_name, here, host_node_name, ...
  std::string process_num_as;               // what %(process_num)... becomes ("{instance}" or a number)
  std::string first_process_num = "0";      // numprocs_start: in file paths
  std::vector<std::string>* notes = nullptr;
  const std::vector<std::pair<std::string, std::string>>* own_env = nullptr;  // [supervisord] environment

  std::string operator()(const std::string& v) const {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (v[i] != '%') {
        out += v[i];
        continue;
      }
      if (i + 1 < v.size() && v[i + 1] == '%') {
        out += '%';
        ++i;
        continue;
      }
      const auto close = v.find(')', i);
      if (i + 1 >= v.size() || v[i + 1] != '(' || close == std::string::npos) {
        out += v[i];
        continue;
      }
      const std::string name = v.substr(i + 2, close - i - 2);
      // The conversion: s, d, or a width like 02d.
      std::size_t conv = close + 1;
      while (conv < v.size() && (std::isdigit(static_cast<unsigned char>(v[conv])) || v[conv] == '-')) ++conv;
      if (conv >= v.size() || (v[conv] != 's' && v[conv] != 'd')) {
        out += v[i];
        continue;
      }
      const std::string width = v.substr(close + 1, conv - close - 1);
      std::string value;
      bool known = true;
      if (name == "process_num") {
        value = process_num_as;
        if (!width.empty() && value == "{instance}" && notes)
          notes->push_back("%(process_num)" + width + "d: {instance} is not zero-padded");
      } else if (name.rfind("ENV_", 0) == 0) {
        // supervisord's own environment: its [supervisord] environment, else the one it was
        // started with (here: procsup import's).
        const std::string var = name.substr(4);
        const char* env = std::getenv(var.c_str());
        bool set = env != nullptr;
        if (env) value = env;
        if (own_env != nullptr)
          for (const auto& [key, val] : *own_env)
            if (key == var) {
              value = val;
              set = true;
            }
        if (notes)
          notes->push_back("%(" + name + ")s: expanded at import time" + std::string(set ? "" : " (not set: empty)"));
      } else if (auto it = vars.find(name); it != vars.end()) {
        value = it->second;
      } else {
        known = false;
      }
      if (!known) {
        out += v.substr(i, conv - i + 1);
        if (notes) notes->push_back("%(" + name + ") is not a supervisord expansion: kept as written");
      } else {
        if (!width.empty() && width.front() == '0' && value.size() < std::stoul(width) && value != "{instance}")
          value.insert(0, std::stoul(width) - value.size(), '0');
        out += value;
      }
      i = conv;
    }
    return out;
  }
};

// `environment=A="1",B='x y',C=3`: KEY=VALUE pairs split at commas outside quotes.
std::vector<std::pair<std::string, std::string>> parse_environment(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string key, value;
  bool in_value = false;
  bool quoted = false;
  char quote = 0;
  auto flush = [&] {
    const std::string k = trim(key);
    if (!k.empty()) out.emplace_back(k, quoted ? value : trim(value));
    key.clear();
    value.clear();
    in_value = false;
    quoted = false;
  };
  for (const char c : text) {
    if (quote) {
      if (c == quote) quote = 0;
      else value += c;
    } else if (c == ',') {
      flush();
    } else if (!in_value && c == '=') {
      in_value = true;
    } else if (in_value && (c == '"' || c == '\'')) {
      quote = c;
      quoted = true;
    } else if (in_value) {
      if (!(value.empty() && (c == ' ' || c == '\t' || c == '\n'))) value += c;
    } else if (c != '\n') {
      key += c;
    }
  }
  flush();
  return out;
}

struct program_out {
  std::string name;
  long priority = 999;
  int order = 0;
  std::string text;
};

class supervisord_importer {
 public:
  supervisord_importer(const std::string& path) : path_(path) {}

  import_result run(const std::vector<import_file>& files) {
    import_result r;
    for (std::size_t i = 0; i < files.size(); ++i)
      load(files[i].text, files[i].path, r.errors, i == 0 ? 0 : 1);  // more files: as if included
    if (!r.errors.empty()) return r;
    // [supervisord] first: its environment is the programs' (and %(ENV_X)s's).
    for (const auto& [file, s] : sections_)
      if (lower(s.name) == "supervisord") section(file, s);
    for (const auto& [file, s] : sections_)
      if (lower(s.name) != "supervisord") section(file, s);
    if (programs_.empty()) {
      r.errors.push_back(path_ + ": no [program:NAME] section to import");
      return r;
    }
    // supervisord starts by priority (lower first), procsup in file order.
    std::stable_sort(programs_.begin(), programs_.end(),
                     [](const program_out& a, const program_out& b) { return a.priority < b.priority; });
    std::string out = "# procsup.toml imported from " + path_ + " by `procsup import`.\n";
    out += "# Check it with `procsup check FILE`, run it with `procsup run FILE`; docs/cli.md lists the mapping.\n";
    if (!notes_.empty()) {
      out += "#\n# Not imported (procsup has no such setting, or does it another way):\n";
      for (const auto& n : notes_) out += "#   " + one_line(n) + "\n";
    }
    out += "\n[supervisor]\n";
    out += "# supervisord has no tree-wide restart limit; procsup gives up (exit 3) after `intensity`\n";
    out += "# restarts within `period` of all programs together: raise it to taste.\n";
    out += "intensity = 10\nperiod = \"60s\"\n";
    out += "socket = \"/run/procsup.sock\"\n";
    for (const auto& p : programs_) out += "\n" + p.text;
    r.toml = std::move(out);
    return r;
  }

 private:
  void load(std::string_view text, const std::string& file, std::vector<std::string>& errors, int depth) {
    auto sections = parse_ini(text, file, errors);
    for (auto& s : sections) {
      if (lower(s.name) == "include" && depth == 0) {
        include(s, file, errors);
        continue;
      }
      sections_.emplace_back(file, std::move(s));
    }
  }

  void include(const ini_section& s, const std::string& file, std::vector<std::string>& errors) {
    const auto* files = s.find("files");
    if (files == nullptr) return;
    const std::string here = directory_of(file);
    std::istringstream words(files->value);
    std::string pattern;
    while (words >> pattern) {
      const std::string full = pattern.front() == '/' ? pattern : here + "/" + pattern;
      glob_t g{};
      const int rc = ::glob(full.c_str(), 0, nullptr, &g);
      if (rc != 0 || g.gl_pathc == 0) {
        notes_.push_back("[include] files = " + pattern + ": no file matches here; import those files too: " +
                         "procsup import " + file + " FILE...");
      } else {
        for (std::size_t i = 0; i < g.gl_pathc; ++i) {
          std::ifstream in(g.gl_pathv[i], std::ios::binary);
          std::stringstream buf;
          buf << in.rdbuf();
          load(buf.str(), g.gl_pathv[i], errors, 1);  // included files cannot include (as in supervisord)
        }
      }
      ::globfree(&g);
    }
  }

  static std::string directory_of(const std::string& file) {
    const auto slash = file.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : file.substr(0, slash);
  }

  // %(here)s: the config file's directory, absolute (as supervisord has it).
  static std::string absolute_directory_of(const std::string& file) {
    std::string dir = directory_of(file);
    if (char* real = ::realpath(dir.c_str(), nullptr)) {
      dir = real;
      std::free(real);
    }
    return dir;
  }

  static std::string where(const std::string& file, int line) { return file + ":" + std::to_string(line); }

  void section(const std::string& file, const ini_section& s) {
    const std::string kind = lower(s.name.substr(0, s.name.find(':')));
    const std::string label = "[" + s.name + "] (" + where(file, s.line) + ")";
    if (kind == "program") {
      program(file, s);
    } else if (kind == "supervisord") {
      for (const auto& e : s.entries) {
        std::string why = "procsup's own settings are its command line (`--log-format`, `--log-level`) and [supervisor]";
        if (e.key == "nodaemon") why = "procsup always runs in the foreground (under systemd, in a container)";
        else if (e.key == "logfile" || e.key == "logfile_maxbytes" || e.key == "logfile_backups")
          why = "procsup logs to stderr (journald, the container runtime)";
        else if (e.key == "pidfile") why = "no pid file: systemd or the container runtime knows the pid";
        else if (e.key == "childlogdir") why = "AUTO child logs go to procsup's log (stdout = \"log\")";
        else if (e.key == "minfds") why = "procsup raises its open-file limit to the hard limit itself";
        else if (e.key == "user") why = "run procsup as that user instead (or give each program a user)";
        else if (e.key == "environment") why = "no global environment: added to every program's env below";
        notes_.push_back("[supervisord] " + e.key + " = " + e.value + ": " + why);
        if (e.key == "environment") global_env_ = parse_environment(e.value);
      }
    } else if (kind == "unix_http_server" || kind == "inet_http_server") {
      notes_.push_back(label + ": procsup's control socket is [supervisor] socket (owner-only, peer-checked), "
                                "used by `procsup ctl`; there is no HTTP interface");
    } else if (kind == "supervisorctl") {
      notes_.push_back(label + ": use `procsup ctl --socket PATH` (docs/cli.md)");
    } else if (kind == "rpcinterface") {
      notes_.push_back(label + ": no XML-RPC interface; `procsup ctl` speaks JSON lines over the socket");
    } else if (kind == "group") {
      const auto* programs = s.find("programs");
      notes_.push_back(label + (programs ? " programs = " + programs->value : std::string()) +
                       ": no groups; `procsup ctl` addresses each program (all its instances) by name");
    } else if (kind == "eventlistener") {
      notes_.push_back(label + ": no event listener protocol; lifecycle events are procsup's JSON log lines "
                                "(--log-format json)");
    } else if (kind == "fcgi-program") {
      notes_.push_back(label + ": no FastCGI socket management");
    } else if (kind == "include") {
      notes_.push_back(label + ": an included file cannot include others (as in supervisord)");
    } else {
      notes_.push_back(label + ": unknown section");
    }
  }

  void program(const std::string& file, const ini_section& s) {
    program_out p;
    p.order = static_cast<int>(programs_.size());
    const std::string raw_name = s.name.substr(s.name.find(':') + 1);
    p.name = program_name_from(trim(raw_name), names_);
    std::vector<std::string> comments;  // inside the [[program]] table
    std::vector<std::string> lines;     // key = value
    if (p.name != trim(raw_name))
      comments.push_back("supervisord name \"" + trim(raw_name) + "\": procsup names are A-Z a-z 0-9 _ - .");

    auto get = [&](const std::string& key) -> const ini_entry* { return s.find(key); };
    long numprocs = 1;
    if (const auto* e = get("numprocs")) {
      if (auto n = ini_int(e->value); n && *n >= 1) numprocs = *n;
      else comments.push_back("numprocs = " + e->value + ": not a positive integer; 1 instance");
    }
    long numprocs_start = 0;
    if (const auto* e = get("numprocs_start")) numprocs_start = ini_int(e->value).value_or(0);

    std::vector<std::string> expand_notes;
    expander x;
    x.notes = &expand_notes;
    x.own_env = &global_env_;
    x.vars = {{"program_name", trim(raw_name)},
              {"group_name", trim(raw_name)},
              {"here", absolute_directory_of(file)},
              {"host_node_name", host_name()},
              {"numprocs", std::to_string(numprocs)}};
    x.process_num_as = numprocs > 1 ? "{instance}" : std::to_string(numprocs_start);
    x.first_process_num = std::to_string(numprocs_start);
    if (numprocs > 1 && numprocs_start != 0)
      comments.push_back("numprocs_start = " + std::to_string(numprocs_start) +
                         ": procsup numbers instances from 0 ({instance} is 0.." + std::to_string(numprocs - 1) + ")");

    const ini_entry* command = get("command");
    if (command == nullptr || trim(command->value).empty()) {
      notes_.push_back("[" + s.name + "] (" + where(file, s.line) + "): no command; not imported");
      return;
    }
    // supervisord splits the command with shlex and execs it: no shell (a '|' or '$X' in it is
    // an argument), so neither does procsup.
    const std::string cmd_text = x(trim(command->value));
    auto argv = split_command_line(cmd_text);
    if (!argv || argv->empty()) {
      comments.push_back("command: unterminated quote; run through /bin/sh -c as written");
      argv = std::vector<std::string>{"/bin/sh", "-c", cmd_text};
    } else {
      for (const auto& a : *argv)
        if (a == "|" || a == "&&" || a == "||" || a == ";" || a == ">" || a == "<" || a == ">>" || a == "2>&1") {
          comments.push_back("command has \"" + a + "\": supervisord passes it to the program as an argument (no "
                             "shell), and so does procsup; use [\"/bin/sh\", \"-c\", \"...\"] for a shell");
          break;
        }
    }
    lines.push_back("command = " + toml_array(*argv));
    if (numprocs > 1) lines.push_back("instances = " + std::to_string(numprocs));

    // Restarts: autorestart unexpected (default) = restart on a failure; true = also after a
    // success code; false = never.
    std::string autorestart = "unexpected";
    if (const auto* e = get("autorestart")) autorestart = lower(e->value);
    if (autorestart == "true" || autorestart == "yes" || autorestart == "on" || autorestart == "1") {
      lines.push_back("strategy = \"restart\"");
      lines.push_back("restart_on_exit = true");
    } else if (autorestart == "false" || autorestart == "no" || autorestart == "off" || autorestart == "0") {
      lines.push_back("strategy = \"stop\"");
    } else {
      if (autorestart != "unexpected") comments.push_back("autorestart = " + autorestart + ": unknown; taken as unexpected");
      lines.push_back("strategy = \"restart\"");
    }
    if (const auto* e = get("exitcodes")) {
      std::vector<std::string> codes;
      std::string bad;
      std::stringstream in(e->value);
      for (std::string item; std::getline(in, item, ',');) {
        auto n = ini_int(item);
        if (n && *n >= 0 && *n <= 255) codes.push_back(std::to_string(*n));
        else bad = item;
      }
      if (!bad.empty()) comments.push_back("exitcodes = " + e->value + ": \"" + trim(bad) + "\" is not an exit code");
      if (!codes.empty()) {
        std::string list = "[";
        for (std::size_t i = 0; i < codes.size(); ++i) list += (i ? ", " : "") + codes[i];
        lines.push_back("success_codes = " + list + "]");
      }
    }

    // Environment: [supervisord]'s first, the program's own win.
    std::vector<std::pair<std::string, std::string>> env = global_env_;
    if (const auto* e = get("environment"))
      for (auto& [k, v] : parse_environment(x(e->value))) {
        auto it = std::find_if(env.begin(), env.end(), [&](const auto& kv) { return kv.first == k; });
        if (it != env.end()) it->second = v;
        else env.emplace_back(k, v);
      }
    if (!env.empty()) {
      std::string t = "env = { ";
      for (std::size_t i = 0; i < env.size(); ++i) {
        bool bare = !env[i].first.empty();
        for (char c : env[i].first) bare = bare && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-');
        t += (i ? ", " : "") + (bare ? env[i].first : toml_string(env[i].first)) + " = " + toml_string(env[i].second);
      }
      lines.push_back(t + " }");
    }
    if (const auto* e = get("directory")) lines.push_back("cwd = " + toml_string(x(e->value)));
    if (const auto* e = get("user")) lines.push_back("user = " + toml_string(x(e->value)));
    if (const auto* e = get("stopsignal")) {
      std::string sig = trim(e->value);
      for (auto& c : sig) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      lines.push_back("stop_signal = " + toml_string(sig));
    }
    if (const auto* e = get("stopwaitsecs")) {
      if (auto n = ini_int(e->value); n && *n >= 0) lines.push_back("stop_timeout = \"" + std::to_string(*n) + "s\"");
      else comments.push_back("stopwaitsecs = " + e->value + ": not a number of seconds");
    }

    output(s, x, lines, comments);

    for (const auto& e : s.entries) {
      static const std::set<std::string> mapped = {
          "command", "numprocs", "numprocs_start", "autorestart", "exitcodes", "environment", "directory", "user",
          "stopsignal", "stopwaitsecs", "redirect_stderr", "stdout_logfile", "stderr_logfile",
          "stdout_logfile_maxbytes", "stderr_logfile_maxbytes", "stdout_logfile_backups", "stderr_logfile_backups"};
      if (mapped.count(e.key) != 0) continue;
      std::string why;
      if (e.key == "process_name") why = "procsup names instances NAME (one) or NAME:0 .. NAME:N-1";
      else if (e.key == "priority") {
        why = "programs are listed (and started) in priority order";
        p.priority = ini_int(e.value).value_or(999);
      } else if (e.key == "autostart") {
        if (ini_bool(e.value).value_or(true)) continue;  // procsup's behaviour too
        why = "procsup starts every program at start; stop it with `procsup ctl stop " + p.name + "`";
      } else if (e.key == "startsecs")
        why = "procsup counts a run as stable after 10 s (backoff resets); a program is up once exec'd (or ready = \"protocol\")";
      else if (e.key == "startretries")
        why = "restarts back off exponentially (backoff) and are bounded by [supervisor] intensity / period";
      else if (e.key == "stopasgroup" || e.key == "killasgroup")
        why = "procsup always signals the whole process group";
      else if (e.key == "umask") why = "no umask setting: set it in the program (or a wrapper)";
      else if (e.key == "serverurl") why = "no supervisor RPC for children";
      else if (e.key.find("_capture_maxbytes") != std::string::npos || e.key.find("_events_enabled") != std::string::npos)
        why = "no event listeners; lines are in procsup's log and `procsup ctl logs`";
      else if (e.key.find("_syslog") != std::string::npos) why = "stdout = \"log\" goes to procsup's log (journald under systemd)";
      else why = "not a supervisord program setting";
      comments.push_back(e.key + " = " + e.value + ": " + why);
    }
    for (const auto& n : expand_notes) comments.push_back(n);

    std::string t = "# from [" + s.name + "], " + where(file, s.line) + "\n[[program]]\nname = " + toml_string(p.name) + "\n";
    for (const auto& l : lines) t += l + "\n";
    for (const auto& c : comments) t += "# " + one_line(c) + "\n";
    p.text = std::move(t);
    programs_.push_back(std::move(p));
  }

  // stdout_logfile / stderr_logfile: AUTO (default) -> procsup's log; a path -> that file
  // (rotated by procsup); /dev/stdout -> inherit; NONE -> procsup's log (no discard target).
  void output(const ini_section& s, const expander& x, std::vector<std::string>& lines, std::vector<std::string>& comments) {
    auto target = [&](const std::string& key, const char* own_dev) -> std::string {
      const auto* e = s.find(key);
      if (e == nullptr) return "log";
      // One file target per program: every instance writes (and procsup rotates) the same file.
      expander in_path = x;
      in_path.process_num_as = x.first_process_num;
      std::vector<std::string> notes;
      in_path.notes = &notes;
      const std::string v = in_path(trim(e->value));
      if (v != x(trim(e->value)))
        comments.push_back(key + " = " + e->value + ": one file for all instances (procsup has one target per program)");
      const std::string l = lower(v);
      if (l == "auto" || l.empty()) return "log";
      if (l == "none") {
        comments.push_back(key + " = NONE: procsup has no discard target; the lines go to procsup's log");
        return "log";
      }
      if (l == "syslog") {
        comments.push_back(key + " = syslog: procsup's log (journald under systemd)");
        return "log";
      }
      if (v == own_dev) return "inherit";
      if (v == "/dev/stdout" || v == "/dev/stderr" || v.rfind("/dev/fd/", 0) == 0 || v.rfind("/proc/self/fd/", 0) == 0) {
        comments.push_back(key + " = " + v + ": procsup rotates file targets (renames them): to procsup's log instead");
        return "log";
      }
      return v;
    };
    const std::string out = target("stdout_logfile", "/dev/stdout");
    bool redirect = false;
    if (const auto* e = s.find("redirect_stderr")) redirect = ini_bool(e->value).value_or(false);
    std::string err = redirect ? out : target("stderr_logfile", "/dev/stderr");
    if (redirect && s.find("stderr_logfile") != nullptr)
      comments.push_back("stderr_logfile: redirect_stderr = true sends stderr to stdout's target");
    // With redirect_stderr, inherit means procsup's stdout for both (as supervisord does).
    if (out != "log") lines.push_back("stdout = " + toml_string(out));
    if (err != "log") lines.push_back("stderr = " + toml_string(err));
    const bool files = (out != "log" && out != "inherit") || (err != "log" && err != "inherit");
    for (const char* which : {"maxbytes", "backups"}) {
      const auto* so = s.find(std::string("stdout_logfile_") + which);
      const auto* se = s.find(std::string("stderr_logfile_") + which);
      const ini_entry* e = (out != "log" && out != "inherit") ? so : se;
      if (e == nullptr) e = so ? so : se;
      if (e == nullptr) continue;
      if (!files) {
        if (trim(e->value) != "0")
          comments.push_back(e->key + " = " + e->value + ": no file target here (procsup does not rotate its own log)");
        continue;
      }
      if (std::string(which) == "maxbytes") {
        auto size = ini_size(e->value);
        if (!size) comments.push_back(e->key + " = " + e->value + ": not a size");
        else if (*size == "0") comments.push_back(e->key + " = 0: procsup always rotates file targets; kept its 10MiB default");
        else lines.push_back("log_max_size = " + *size);
      } else {
        auto n = ini_int(e->value);
        if (n && *n >= 0 && *n <= 1000) lines.push_back("log_keep = " + std::to_string(*n));
        else comments.push_back(e->key + " = " + e->value + ": not a count of files (0-1000)");
      }
      if (so && se && so->value != se->value)
        comments.push_back(se->key + " = " + se->value + ": procsup has one log_max_size / log_keep per program");
    }
  }

  std::string path_;
  std::vector<std::pair<std::string, ini_section>> sections_;  // by file, in order
  std::vector<std::string> notes_;
  std::vector<program_out> programs_;
  std::set<std::string> names_;
  std::vector<std::pair<std::string, std::string>> global_env_;
};


}  // namespace

import_result import_supervisord(const std::vector<import_file>& files) {
  return supervisord_importer(files.at(0).path).run(files);
}

}  // namespace procsup::daemon::import_detail
