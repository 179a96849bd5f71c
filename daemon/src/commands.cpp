// The control socket's grammar and its command table: one JSON request per line, {"cmd": NAME,
// ...}, one JSON reply per line, {"ok": true, ...} or {"ok": false, "error": "..."}. Every
// command, its request fields and its reply are the rows of `commands` below (docs/cli.md
// shows them as `procsup ctl` commands; docs/control-socket.md the socket's limits). A reply
// that is null is answered later (control_server::defer): start / stop / restart once every
// instance got there, send once the worker replied.
#include "daemon_runner.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <string_view>

#include "procsup/daemon/logging.hpp"

namespace procsup::daemon {

namespace {

using json = nlohmann::json;

struct command_entry {
  control_command grammar;
  json (daemon_runner::*run)(const json& req);
};

// NAME: an instance id ("api:2") or a program name (every instance of it).
const command_entry commands[] = {
    {{"status", R"({"cmd":"status"})",
      R"({"ok":true,"instances":[{"name","instance","id","pid","state","restarts","uptime_s","last_exit",...}]})"},
     &daemon_runner::cmd_status},
    {{"start", R"({"cmd":"start","name":NAME})",
      R"({"ok","instances":[ids],"results":[{"id","ok","pid","state","message"|"error"}],"message"}, once running)"},
     &daemon_runner::cmd_start_stop_restart},
    {{"stop", R"({"cmd":"stop","name":NAME})", R"(as start, once stopped)"}, &daemon_runner::cmd_start_stop_restart},
    {{"restart", R"({"cmd":"restart","name":NAME})", R"(as start, once running with a new pid)"},
     &daemon_runner::cmd_start_stop_restart},
    {{"signal", R"({"cmd":"signal","name":NAME,"signal":"HUP"|"SIGHUP"|"1"})",
      R"({"ok":true,"instances":[ids],"message":"api: sent SIGHUP"})"},
     &daemon_runner::cmd_signal},
    {{"logs", R"({"cmd":"logs","name":NAME,"lines":50,"follow":false})",
      R"({"ok":true,"lines":[...]}; with follow, then one JSON object per output line until the client closes)"},
     &daemon_runner::cmd_logs},
    {{"shutdown", R"({"cmd":"shutdown"})", R"({"ok":true,"message":"procsup: shutting down"})"},
     &daemon_runner::cmd_shutdown},
    {{"reload", R"({"cmd":"reload"})",
      R"({"ok":true,"message","added","removed","changed","resized","unchanged","supervisor"?} or the config's errors)"},
     &daemon_runner::cmd_reload},
    {{"send", R"({"cmd":"send","name":NAME,"body":JSON})",
      R"({"ok":true,"instance":id,"reply":JSON|"reply_text":text}, once the protocol worker replied)"},
     &daemon_runner::cmd_send},
};

json no_such(const std::string& name) {
  return {{"ok", false}, {"error", "no program or instance named \"" + name + "\""}};
}

}  // namespace

std::vector<control_command> control_commands() {
  std::vector<control_command> out;
  for (const auto& c : commands) out.push_back(c.grammar);
  return out;
}

json daemon_runner::handle(const json& req) {
  const std::string cmd = req.value("cmd", "");
  for (const auto& c : commands)
    if (c.grammar.name == cmd) return (this->*c.run)(req);
  return {{"ok", false}, {"error", "unknown command \"" + cmd + "\""}};
}

json daemon_runner::cmd_status(const json&) { return {{"ok", true}, {"instances", status()}}; }

json daemon_runner::cmd_logs(const json& req) {
  const std::string name = req.value("name", "");
  auto ids = reg_.match(name);
  if (ids.empty()) return no_such(name);
  return output_.logs_command(req, ids, ctl_->current_connection(),
                              [this](int fd, const json& line) { return ctl_ && ctl_->push(fd, line); });
}

json daemon_runner::cmd_shutdown(const json&) {
  loop_.post([this] { begin_shutdown(exit_codes::clean); });
  return {{"ok", true}, {"message", "procsup: shutting down"}};
}

json daemon_runner::cmd_reload(const json&) { return reload("ctl reload"); }

json daemon_runner::cmd_start_stop_restart(const json& req) {
  const std::string name = req.value("name", "");
  const std::string cmd = req.value("cmd", "");
  auto ids = reg_.match(name);
  // A program (not one instance) with depends_on anywhere, or not started (waiting / held):
  // started or stopped in dependency order (start_order.cpp).
  if (const auto* prog = reg_.program(name); prog != nullptr && cmd != "restart" && (graph().ordered() || ids.empty()))
    return staged_command(cmd, *prog);
  if (ids.empty()) return no_such(name);
  return control_command(cmd, ids);
}

json daemon_runner::cmd_signal(const json& req) {
  const std::string name = req.value("name", "");
  auto ids = reg_.match(name);
  if (ids.empty()) return no_such(name);
  auto s = parse_signal(req.value("signal", ""));
  if (!s) return {{"ok", false}, {"error", "unknown signal \"" + req.value("signal", "") + "\""}};
  std::string message;
  for (const auto& id : ids) {
    sup_->signal_child(id, *s);
    message += (message.empty() ? "" : "\n") + id + ": sent " + signal_name(*s);
  }
  return {{"ok", true}, {"instances", ids}, {"message", message}};
}

// ---- ctl start / stop / restart: the reply waits until every instance got there (or failed),
// so a script's next command sees the new state, and says so: "api: restarted (pid 123)".
// Settled from the instances' states after each of their lifecycle events (and once right
// after the command, for an instance that is there already); a start or restart fails at the
// first crashed / spawn_failed / stopped / escalated of that instance.

json daemon_runner::control_command(const std::string& cmd, const std::vector<std::string>& ids) {
  command_wait w{cmd, {}, ctl_->defer(), {}, {}, false};
  for (const auto& id : ids) {
    const auto* i = reg_.find(id);
    const auto info = i ? i->handle.info() : process_info{};
    w.targets.push_back({id, info.pid, info.state, {}, false, {}});
  }
  waits_.push_back(std::move(w));  // before the commands: their events may come at once
  for (const auto& id : ids) {
    if (cmd == "start") sup_->start_child(id);
    else if (cmd == "stop") sup_->stop_child(id);
    else sup_->restart_child(id);
  }
  loop_.after_exit_handlers([this] { settle_waits(nullptr); });
  return nullptr;  // deferred: answered by settle_waits
}

void daemon_runner::settle_waits(const lifecycle_event* event) {
  for (auto& w : waits_) {
    const lifecycle_event* e = event;  // it concerns the current stage's targets only
    for (bool next_stage = true; next_stage && !w.answered;) {
      next_stage = false;
      bool all = true;
      for (auto& t : w.targets) {
        if (t.done) continue;
        const bool failure = e != nullptr && e->process_id == t.id &&
                             (e->kind == event_kind::crashed || e->kind == event_kind::spawn_failed ||
                              e->kind == event_kind::stopped || e->kind == event_kind::escalated);
        if (failure && w.cmd != "stop") t.failure = e->cause.empty() ? to_string(e->kind) : e->cause;
        const auto* i = reg_.find(t.id);
        const auto* prog = i == nullptr ? reg_.program_of_id(t.id) : nullptr;  // a program not started
        if ((i != nullptr && !i->handle) ||                                     // being launched right now
            (prog != nullptr && prog->waiting() && w.cmd == "start")) {           // starts once its dependencies are
          all = false;
          continue;
        }
        if (prog != nullptr && prog->start == program_registry::entry::start_state::dependency_failed && w.cmd == "start") {
          t.result = {{"id", t.id}, {"ok", false}, {"error", t.id + ": did not start: " + prog->error}};
        } else if (i == nullptr) {
          t.result = {{"id", t.id}, {"ok", false}, {"error", t.id + ": removed by a reload"}};
        } else if (!t.failure.empty()) {
          t.result = {{"id", t.id}, {"ok", false}, {"error", t.id + ": did not start: " + t.failure}};
        } else {
          const auto info = i->handle.info();
          const bool running = info.state == process_state::running && info.pid != 0;
          // Down for good: no process and none on its way (stopped, failed, or any later such state).
          auto down = [](process_state st, pid_t pid) {
            return pid == 0 && st != process_state::starting && st != process_state::running &&
                   st != process_state::stopping;
          };
          if (w.cmd == "stop" && down(info.state, info.pid))
            t.result = {{"id", t.id}, {"ok", true}, {"state", to_string(info.state)},
                        {"message", t.id + (down(t.old_state, t.old_pid) ? ": already stopped" : ": stopped")}};
          else if (w.cmd == "start" && running)
            t.result = {{"id", t.id}, {"ok", true}, {"pid", info.pid}, {"state", "running"},
                        {"message", t.id + (info.pid == t.old_pid ? ": already running" : ": started") + " (pid " +
                                        std::to_string(info.pid) + ")"}};
          else if (w.cmd == "restart" && running && info.pid != t.old_pid)
            t.result = {{"id", t.id}, {"ok", true}, {"pid", info.pid}, {"state", "running"},
                        {"message", t.id + ": restarted (pid " + std::to_string(info.pid) + ")"}};
        }
        t.done = !t.result.is_null();
        all = all && t.done;
      }
      if (!all) continue;
      // A staged command (depends_on): the next program once this one is there; a start ends at
      // the first program that did not start (what needs it would not start either).
      const bool stage_failed =
          std::any_of(w.targets.begin(), w.targets.end(), [](const auto& t) { return !t.result.value("ok", false); });
      if (!w.later.empty() && !(w.cmd == "start" && stage_failed) && !shutting_down_) {
        for (auto& t : w.targets) w.settled.push_back(std::move(t));
        w.targets.clear();
        begin_stage(w);
        next_stage = true;  // settle what is there already (a stage with nothing to wait for)
        e = nullptr;
        continue;
      }
      w.settled.insert(w.settled.end(), std::make_move_iterator(w.targets.begin()), std::make_move_iterator(w.targets.end()));
      json results = json::array();
      json ids = json::array();
      std::string message, error;
      bool ok = true;
      for (auto& t : w.settled) {
        ids.push_back(t.id);
        const bool good = t.result.value("ok", false);
        ok = ok && good;
        std::string& text = good ? message : error;
        text += (text.empty() ? "" : "\n") + t.result.value(good ? "message" : "error", "");
        results.push_back(std::move(t.result));
      }
      json reply = {{"ok", ok}, {"instances", ids}, {"results", results}, {"message", message}};
      if (!ok) reply["error"] = error;
      if (ctl_) ctl_->complete(w.reply, reply);
      w.answered = true;  // erased below
    }
  }
  std::erase_if(waits_, [](const command_wait& w) { return w.answered; });
}

// ---- `ctl send NAME JSON`: one request to a protocol worker, answered when its reply is in

json daemon_runner::cmd_send(const json& req) {
  const std::string name = req.value("name", "");
  instance* target = reg_.find(name);
  if (target == nullptr) {
    // A program name: its first running instance, else its first one (which says why not).
    for (auto& i : reg_.instances)
      if (i.prog->cfg.name == name && (target == nullptr || (target->handle.state() != process_state::running &&
                                                        i.handle.state() == process_state::running)))
        target = &i;
  }
  if (target == nullptr) return no_such(name);
  const std::string id = target->id;
  if (target->prog->cfg.ready != readiness::protocol)
    return {{"ok", false},
            {"error", id + " is not a protocol worker (ready = \"" + std::string(to_string(target->prog->cfg.ready)) +
                          "\"): only programs with ready = \"protocol\" take requests"}};
  const auto info = target->handle.info();
  if (info.state != process_state::running && info.state != process_state::starting)
    return {{"ok", false},
            {"error", id + " is not running (" + to_string(info.state) + ")" +
                          (info.last_error.empty() ? "" : "; last error: " + info.last_error)}};
  const std::string text = req.contains("body") ? req["body"].dump() : "null";
  std::vector<std::byte> bytes(text.size());
  std::memcpy(bytes.data(), text.data(), text.size());
  const auto later = ctl_->defer();
  target->handle.send_bytes_async(std::move(bytes), [this, later, id](bool ok, std::string body) {
    if (!ctl_) return;
    if (!ok) {
      ctl_->complete(later, {{"ok", false}, {"instance", id}, {"error", body}});
      return;
    }
    json reply = json::parse(body, nullptr, false);
    json out = {{"ok", true}, {"instance", id}};
    if (reply.is_discarded()) out["reply_text"] = body;  // not JSON: passed on as text
    else out["reply"] = std::move(reply);
    ctl_->complete(later, out);
  });
  return nullptr;  // deferred: answered by the callback
}

}  // namespace procsup::daemon
