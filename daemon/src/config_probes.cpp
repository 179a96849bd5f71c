// ready = ... and health = ... of a [[program]] (config_checker.hpp, docs/services.md).
#include <algorithm>

#include "config_checker.hpp"
#include "procsup/daemon/http_server.hpp"

namespace procsup::daemon::config_detail {

// `ready`: a name ("none", "protocol", "notify") or a table with one probe: { fd = N },
// { tcp = "host:port" }, { http = "http://host:port/path" }, { exec = [argv] } (docs/services.md).
void parse_ready(checker& c, const toml::node& v, const std::string& key, program_config& p) {
  if (v.is_string()) {
    if (auto r = c.choice<readiness>(v, key, {{"none", readiness::none},
                                              {"protocol", readiness::protocol},
                                              {"notify", readiness::notify}}))
      p.ready = *r;
    return;
  }
  const auto* t = v.as_table();
  if (t == nullptr) {
    c.wrong_type(v, key, "\"none\" | \"protocol\" | \"notify\" or a table { fd | tcp | http | exec = ... }");
    return;
  }
  int forms = 0;
  for (const auto& [rk, rv] : *t) {
    const std::string rkey = key + "." + std::string(rk.str());
    if (rk == "fd") {
      ++forms;
      if (auto n = c.integer(rv, rkey, 3, 1023)) {
        p.ready = readiness::fd;
        p.ready_fd = static_cast<int>(*n);
      }
    } else if (rk == "tcp") {
      ++forms;
      if (auto s = c.string(rv, rkey)) {
        const auto colon = s->rfind(':');
        if (colon == std::string::npos || colon == 0 || colon + 1 == s->size() ||
            s->find_first_not_of("0123456789", colon + 1) != std::string::npos)
          c.error(rv.source(), rkey, "expected \"host:port\", got \"" + *s + "\"");
        p.ready = readiness::tcp;
        p.ready_address = *s;
      }
    } else if (rk == "http") {
      ++forms;
      if (auto s = c.string(rv, rkey)) {
        if (s->rfind("http://", 0) != 0 || s->size() <= 7)
          c.error(rv.source(), rkey, "expected an http:// URL, got \"" + *s + "\"");
        p.ready = readiness::http;
        p.ready_address = *s;
      }
    } else if (rk == "exec") {
      ++forms;
      if (c.command(rv, rkey, p.ready_command)) p.ready = readiness::exec;
    } else {
      c.error(rk.source(), rkey, "unknown key (expected one of fd, tcp, http, exec)");
    }
  }
  if (forms != 1) c.error(v.source(), key, "needs exactly one of fd, tcp, http, exec; got " + std::to_string(forms));
}

void parse_health(checker& c, const toml::node& v, const std::string& key, program_config& p) {
  const auto* t = v.as_table();
  if (t == nullptr) {
    c.wrong_type(v, key, "a table { http | tcp | exec = ..., interval, timeout, failures, start_after }");
    return;
  }
  health_config h;
  int forms = 0;
  for (const auto& [hk, hv] : *t) {
    const std::string hkey = key + "." + std::string(hk.str());
    if (hk == "tcp" || hk == "http") {
      ++forms;
      if (auto s = c.string(hv, hkey)) {
        const bool http = hk == "http";
        if (http && (s->rfind("http://", 0) != 0 || s->size() <= 7))
          c.error(hv.source(), hkey, "expected an http:// URL, got \"" + *s + "\"");
        if (!http && (s->rfind(':') == std::string::npos || s->rfind(':') + 1 == s->size()))
          c.error(hv.source(), hkey, "expected \"host:port\", got \"" + *s + "\"");
        h.kind = http ? readiness::http : readiness::tcp;
        h.address = *s;
      }
    } else if (hk == "exec") {
      ++forms;
      if (c.command(hv, hkey, h.command)) h.kind = readiness::exec;
    } else if (hk == "interval" || hk == "timeout" || hk == "start_after") {
      if (auto d = c.duration(hv, hkey)) {
        if (hk == "start_after") h.start_after = *d;
        else if (d->count() <= 0) c.error(hv.source(), hkey, "must be longer than 0");
        else (hk == "interval" ? h.interval : h.timeout) = *d;
      }
    } else if (hk == "failures") {
      if (auto n = c.integer(hv, hkey, 1, 1000)) h.failures = static_cast<int>(*n);
    } else {
      c.error(hk.source(), hkey, "unknown key (expected http, tcp, exec, interval, timeout, failures, start_after)");
    }
  }
  if (forms != 1) c.error(v.source(), key, "needs exactly one of http, tcp, exec; got " + std::to_string(forms));
  p.health = h;
}

}  // namespace procsup::daemon::config_detail
