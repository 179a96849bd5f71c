// The original design's "Counter Process with State": a standalone process (create_process)
// whose behavior keeps a count, driven by JSON messages. Then the same failure twice: standalone
// (it stays failed: let it crash) and under a supervisor (restarted, with a fresh count, because
// a forked child's memory starts anew on every restart).
#include <nlohmann/json.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "example_support.hpp"

namespace {

using nlohmann::json;
using examples::say;

// { "type": "increment" | "decrement" | "get" | "reset", "amount"?: number } -> the count.
struct counter_behavior {
  long count = 0;

  void init() { count = 0; }

  json handle(json message) {
    const std::string type = message.value("type", "");
    // The original uses `message.amount || 1`: a missing (or zero) amount counts as one.
    long amount = message.value("amount", 1L);
    if (amount == 0) amount = 1;
    if (type == "increment") return count += amount;
    if (type == "decrement") return count -= amount;
    if (type == "get") return count;
    if (type == "reset") return count = 0;
    throw std::runtime_error("Unknown message type: " + type);
  }
};

long send_and_show(procsup::process<json, json>& counter, const json& message) {
  const json reply = counter.send(message).get();
  say("  send {} -> {}", message.dump(), reply.dump());
  return reply.get<long>();
}

int run() {
  examples::checks check;

  say("== A standalone counter process ==");
  auto counter = procsup::create_process(counter_behavior{}, {.name = "counter"});
  counter.start();
  say("  started {} (pid {}), state {}", counter.id(), counter.pid(), procsup::to_string(counter.state()));

  check.expect(send_and_show(counter, {{"type", "increment"}, {"amount", 5}}) == 5, "increment by 5 returns 5");
  check.expect(send_and_show(counter, {{"type", "increment"}}) == 6, "increment returns 6");
  check.expect(send_and_show(counter, {{"type", "decrement"}, {"amount", 2}}) == 4, "decrement by 2 returns 4");
  check.expect(send_and_show(counter, {{"type", "get"}}) == 4, "get returns 4");

  // Many sends in flight at once are handled one at a time, in send order.
  std::vector<procsup::reply<json>> replies;
  for (int i = 0; i < 10; ++i) replies.push_back(counter.send({{"type", "increment"}}));
  bool in_order = true;
  for (int i = 0; i < 10; ++i) in_order = in_order && replies[static_cast<std::size_t>(i)].get() == 5 + i;
  say("  10 increments sent at once -> replies 5..14 in order: {}", in_order ? "yes" : "no");
  check.expect(in_order, "concurrent sends are handled in send order");
  check.expect(send_and_show(counter, {{"type", "reset"}}) == 0, "reset returns 0");

  // An unknown message makes handle() throw: that send fails with the exception's message and
  // the process counts as failed. Nothing supervises it, so it stays failed.
  try {
    counter.send({{"type", "explode"}}).get();
    check.expect(false, "an unknown message type fails the send");
  } catch (const procsup::process_error& e) {
    say("  send {{\"type\":\"explode\"}} failed: {}", e.what());
    check.expect(std::string(e.what()) == "Unknown message type: explode", "the send fails with handle()'s message");
  }
  // The failed send returns as soon as the error reply arrives; the child's exit is seen by the
  // event loop a moment later, so wait (briefly) for the final state.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (counter.state() != procsup::process_state::failed && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const auto info = counter.info();
  say("  now: state {}, last error \"{}\"", procsup::to_string(info.state), info.last_error);
  check.expect(counter.state() == procsup::process_state::failed, "a standalone process stays failed");
  counter.stop();

  say("== The same counter under a supervisor ==");
  procsup::supervisor_options options;
  options.name = "counters";
  procsup::supervisor sup(options);
  auto supervised = sup.spawn(counter_behavior{}, {.name = "supervised-counter"});
  check.expect(send_and_show(supervised, {{"type", "increment"}, {"amount", 3}}) == 3, "supervised increment returns 3");
  const pid_t first_pid = supervised.pid();
  try {
    supervised.send({{"type", "explode"}}).get();
    check.expect(false, "an unknown message type fails the send");
  } catch (const procsup::process_error& e) {
    say("  send {{\"type\":\"explode\"}} failed: {}", e.what());
  }
  // The restarted child is a fresh fork of the pristine behavior: the count starts at 0 again.
  // State that must survive a crash lives in the parent (or in storage), not in the child.
  const long after = send_and_show(supervised, {{"type", "get"}});
  say("  restarted: pid {} -> {}, restart count {}", first_pid, supervised.pid(), supervised.info().restart_count);
  check.expect(after == 0, "the restarted counter starts from 0");
  check.expect(supervised.pid() != first_pid && supervised.info().restart_count == 1, "the supervisor restarted it once");
  sup.stop();
  check.expect(supervised.state() == procsup::process_state::stopped, "stop() leaves it stopped");

  return check.exit_code("counter");
}

}  // namespace

int main() { return examples::run_example("counter", run); }
