// The original design's "Supervision Strategies": three services under one supervisor, each
// with its own strategy for when it fails:
//   database  restart   a fresh instance takes over; the caller's next query succeeds
//   batch     stop      it stays failed; sends to it fail at once
//   api       escalate  the supervisor itself fails: it stops its children and its parent decides
// The original fails at random; here a request fails when it asks to ({"fail": true}), so every
// run shows all three. The services supervisor sits under a root supervisor, which restarts it
// (and with it all its children) when it escalates. Last, escalation at the top of a tree reaches
// the owner through on_escalate.
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>

#include "example_support.hpp"

namespace {

using nlohmann::json;
using examples::say;
using procsup::event_kind;
using procsup::process_state;

// A service that answers `type` with `result`, and fails when the request says so.
struct service_behavior {
  std::string type;
  json result;
  std::string failure;

  json handle(json message) {
    if (message.value("type", "") != type) throw std::runtime_error("Unknown message type");
    if (message.value("fail", false)) throw std::runtime_error(failure);
    return result;
  }
};

json call(procsup::process<json, json>& p, const json& message) {
  try {
    json r = p.send(message).get();
    say("  {}.send({}) -> {}", p.id(), message.dump(), r.dump());
    return r;
  } catch (const procsup::process_error& e) {
    say("  {}.send({}) failed: {}", p.id(), message.dump(), e.what());
    return {{"error", e.what()}};
  }
}

void show_children(const std::string& title, const std::vector<procsup::process_info>& children) {
  say("  {}: managing {} processes", title, children.size());
  for (const auto& c : children)
    say("    {:<10} {:<9} strategy {:<8} restarts {} {}", c.id, procsup::to_string(c.state), procsup::to_string(c.on_failure),
        c.restart_count, c.last_error.empty() ? "" : "(last error: " + c.last_error + ")");
}

int run() {
  examples::checks check;
  examples::event_recorder events;

  procsup::supervisor_options root_options;
  root_options.name = "root";
  root_options.emit = events.sink("root");
  root_options.log = false;  // the sinks print every event
  procsup::supervisor root(root_options);

  procsup::supervisor_options services_options;
  services_options.name = "services";
  services_options.emit = events.sink("services");
  services_options.log = false;
  auto services = root.spawn_supervisor(services_options, procsup::strategy::restart);

  auto database = services->spawn(service_behavior{"query", {{"result", "data"}}, "Database connection lost"}, {.name = "database"});
  services->supervise(database, procsup::strategy::restart);  // the default, made explicit
  auto batch = services->spawn(service_behavior{"process_batch", {{"processed", 100}}, "Batch processing failed"}, {.name = "batch"});
  services->supervise(batch, procsup::strategy::stop);
  auto api = services->spawn(service_behavior{"api_call", {{"data", "api response"}}, "External API unavailable"}, {.name = "api"});
  services->supervise(api, procsup::strategy::escalate);
  show_children("services", services->children());

  say("== restart: the database loses its connection ==");
  const pid_t db_pid = database.pid();
  call(database, {{"type", "query"}, {"fail", true}});
  const json db = call(database, {{"type", "query"}});  // queued until the new instance is ready
  check.expect(db == json{{"result", "data"}}, "the restarted database answers the next query");
  check.expect(database.info().restart_count == 1 && database.pid() != db_pid, "the database was restarted once");

  say("== stop: the batch job fails ==");
  const auto before_batch = events.mark();
  call(batch, {{"type", "process_batch"}, {"fail", true}});
  check.expect(events.wait_for(event_kind::stopped, "batch", before_batch), "the supervisor reports the batch job stopped");
  const json again = call(batch, {{"type", "process_batch"}});
  check.expect(again.contains("error") && batch.state() == process_state::failed, "a stopped batch job is not restarted");
  check.expect(call(database, {{"type", "query"}}) == json{{"result", "data"}}, "its siblings are unaffected");

  say("== escalate: the external API fails ==");
  const auto before_api = events.mark();
  const pid_t api_pid = api.pid();
  call(api, {{"type", "api_call"}, {"fail", true}});
  // services gives up on its own: it stops its children and hands the failure to root, whose
  // strategy for it is restart: root starts services again, and services starts its children.
  check.expect(events.wait_for(event_kind::escalated, "api", before_api), "the api's failure is escalated");
  check.expect(events.wait_for(event_kind::restarting, "services", before_api), "root restarts the services supervisor");
  check.expect(events.wait_for(event_kind::ready, "api", before_api), "the api is started again with its supervisor");
  check.expect(events.count(event_kind::exited, "database", before_api) == 1, "the escalation stopped the database too");
  check.expect(call(api, {{"type", "api_call"}}) == json{{"data", "api response"}} && api.pid() != api_pid,
               "the api serves again after root's decision");
  check.expect(call(database, {{"type", "query"}}) == json{{"result", "data"}}, "the database serves again");
  show_children("services", services->children());
  show_children("root", root.children());

  say("== escalate at the top: the owner decides ==");
  // on_escalate runs on the supervisor's loop thread, just after the "escalated" event.
  std::string owner_heard;
  std::mutex owner_mu;
  std::condition_variable owner_cv;
  procsup::supervisor_options edge_options;
  edge_options.name = "edge";
  edge_options.emit = events.sink("edge");
  edge_options.log = false;
  edge_options.on_escalate = [&](const std::string& cause) {
    say("  owner: supervisor edge escalated: {}", cause);
    {
      std::lock_guard lk(owner_mu);
      owner_heard = cause;
    }
    owner_cv.notify_all();
  };
  procsup::supervisor edge(edge_options);
  auto uplink = edge.spawn(service_behavior{"api_call", {{"data", "uplink"}}, "Uplink lost"}, {.name = "uplink"});
  edge.supervise(uplink, procsup::strategy::escalate);
  const auto before_edge = events.mark();
  call(uplink, {{"type", "api_call"}, {"fail", true}});
  check.expect(events.wait_for(event_kind::escalated, "edge", before_edge), "the top supervisor escalates");
  {
    std::unique_lock lk(owner_mu);
    owner_cv.wait_for(lk, std::chrono::seconds(10), [&] { return !owner_heard.empty(); });
    check.expect(owner_heard.find("Uplink lost") != std::string::npos, "the owner's on_escalate hears the cause");
  }
  say("  uplink is now {}", procsup::to_string(uplink.state()));
  check.expect(uplink.state() != process_state::running, "a supervisor that escalated leaves its children down");

  edge.stop();
  root.stop();
  return check.exit_code("supervision_strategies");
}

}  // namespace

int main() { return examples::run_example("supervision_strategies", run); }
