// The original design's "Worker Pool for Background Tasks": three supervised workers, tasks
// dispatched round-robin and run concurrently (each worker one task at a time), then every
// worker's stats, which must add up to what the pool saw.
//
// One change from the original: a task that fails (SMTP down, analysis failed, unknown type) is
// reported as a failed result instead of thrown out of handle(). In procsup a throw means "this
// process is broken": the child dies and its restarted instance starts from fresh memory, which
// would throw the worker's stats away. A task failure is an expected outcome, not a broken
// worker, so the worker stays up and counts it.
//
// Then a poison task: one whose native decoder crashes the worker (SIGSEGV), sent to one worker
// with three tasks right behind it. Only the poison task fails; the three were never started by
// the dying instance and are run, in order, by the worker's next instance.
#include <nlohmann/json.hpp>

#include <csignal>
#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "example_support.hpp"

namespace {

using nlohmann::json;
using examples::say;

constexpr std::uint64_t seed = 7;

// { "type": "execute_task", "task": { "id", "type", "payload" } } | { "type": "get_stats" }
class worker_behavior {
 public:
  explicit worker_behavior(std::string worker_id) : worker_id_(std::move(worker_id)) {}

  void init() { say("  [child {}] Worker {} initialized", ::getpid(), worker_id_); }

  json handle(json message) {
    const std::string type = message.value("type", "");
    if (type == "execute_task") return execute_task(message.at("task"));
    if (type == "get_stats")
      return {{"workerId", worker_id_},
              {"tasksExecuted", tasks_executed_},
              {"tasksSuccess", tasks_success_},
              {"tasksFailed", tasks_failed_},
              {"currentTask", current_task_.empty() ? json(nullptr) : json(current_task_)}};
    throw std::runtime_error("Unknown message type: " + type);
  }

  void terminate() {
    say("  [child {}] Worker {} shutting down", ::getpid(), worker_id_);
    say("  [child {}] Executed {} tasks ({} success, {} failed)", ::getpid(), tasks_executed_, tasks_success_, tasks_failed_);
  }

 private:
  json execute_task(const json& task) {
    const std::string id = task.at("id");
    current_task_ = id;
    ++tasks_executed_;
    say("  [child {}] Worker {} executing task {} ({})", ::getpid(), worker_id_, id, task.at("type").get<std::string>());
    try {
      json result = process_task(task);
      ++tasks_success_;
      current_task_.clear();
      say("  [child {}] Worker {} completed task {}", ::getpid(), worker_id_, id);
      return {{"success", true}, {"result", result}, {"workerId", worker_id_}, {"pid", ::getpid()}};
    } catch (const std::exception& e) {
      ++tasks_failed_;
      current_task_.clear();
      say("  [child {}] Worker {} failed task {}: {}", ::getpid(), worker_id_, id, e.what());
      return {{"success", false}, {"error", e.what()}, {"workerId", worker_id_}, {"pid", ::getpid()}};
    }
  }

  static json process_task(const json& task) {
    // Deterministic per task: the same task always takes as long and fails the same way.
    std::mt19937_64 rng(seed ^ std::hash<std::string>{}(task.at("id").get<std::string>()));
    std::uniform_real_distribution<double> random(0.0, 1.0);
    auto work = [&](double base_ms, double spread_ms) {
      std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(base_ms + random(rng) * spread_ms));
    };
    const std::string type = task.at("type");
    const json& payload = task.at("payload");
    if (type == "native_decode") {
      // Stands for crash-prone native code: this blob crashes it (no exception to catch).
      std::signal(SIGSEGV, SIG_DFL);  // a sanitizer's handler would turn the crash into exit(1)
      std::raise(SIGSEGV);
    }
    if (type == "image_resize") {
      work(100, 200);
      return {{"resizedImages", payload.at("images").size()}, {"format", "jpg"}};
    }
    if (type == "email_send") {
      work(50, 100);
      if (random(rng) < 0.1) throw std::runtime_error("SMTP server unavailable");
      return {{"sent", true}, {"recipient", payload.at("recipient")}};
    }
    if (type == "data_analysis") {
      work(200, 500);
      if (random(rng) < 0.05) throw std::runtime_error("Analysis failed");
      return {{"analyzed", payload.at("records")}, {"insights", static_cast<int>(random(rng) * 10)}};
    }
    throw std::runtime_error("Unknown task type: " + type);
  }

  std::string worker_id_;
  int tasks_executed_ = 0;
  int tasks_success_ = 0;
  int tasks_failed_ = 0;
  std::string current_task_;
};

class worker_pool {
 public:
  explicit worker_pool(procsup::supervisor& sup) : sup_(sup) {}

  void init(int size) {
    for (int i = 0; i < size; ++i) {
      const std::string id = "worker-" + std::to_string(i + 1);
      workers_.push_back(sup_.spawn(worker_behavior(id), {.name = id}));
    }
    say("  Worker pool initialized with {} workers", size);
  }

  // Round-robin dispatch; the reply arrives later (tasks run concurrently on the workers).
  procsup::reply<json> execute_task(const json& task) {
    auto& worker = workers_[next_++ % workers_.size()];
    return worker.send({{"type", "execute_task"}, {"task", task}});
  }

  json get_stats() {
    std::vector<procsup::reply<json>> replies;
    for (auto& w : workers_) replies.push_back(w.send({{"type", "get_stats"}}));
    json stats = json::array();
    int total = 0, success = 0, failed = 0;
    for (auto& r : replies) {
      json s = r.get();
      total += s.at("tasksExecuted").get<int>();
      success += s.at("tasksSuccess").get<int>();
      failed += s.at("tasksFailed").get<int>();
      stats.push_back(std::move(s));
    }
    return {{"totalWorkers", workers_.size()}, {"workers", stats}, {"totalTasks", total}, {"totalSuccess", success},
            {"totalFailed", failed}};
  }

  // To one worker (the poison demo).
  procsup::reply<json> execute_on(std::size_t worker, const json& task) {
    return workers_.at(worker).send({{"type", "execute_task"}, {"task", task}});
  }
  procsup::process_info info(std::size_t worker) const { return workers_.at(worker).info(); }
  pid_t pid(std::size_t worker) const { return workers_.at(worker).pid(); }

  std::size_t size() const { return workers_.size(); }

 private:
  procsup::supervisor& sup_;
  std::vector<procsup::process<json, json>> workers_;
  std::size_t next_ = 0;
};

int run() {
  examples::checks check;
  say("== Worker pool ==");
  procsup::supervisor_options options;
  options.name = "pool";
  procsup::supervisor sup(options);
  worker_pool pool(sup);
  pool.init(3);

  // The original's five tasks, then seven more so that each worker gets four.
  std::vector<json> tasks = {
      {{"id", "task1"}, {"type", "image_resize"}, {"payload", {{"images", {"img1.jpg", "img2.png"}}}}},
      {{"id", "task2"}, {"type", "email_send"}, {"payload", {{"recipient", "user@example.com"}}}},
      {{"id", "task3"}, {"type", "data_analysis"}, {"payload", {{"records", 1000}}}},
      {{"id", "task4"}, {"type", "image_resize"}, {"payload", {{"images", {"img3.gif"}}}}},
      {{"id", "task5"}, {"type", "email_send"}, {"payload", {{"recipient", "admin@example.com"}}}},
  };
  const char* kinds[] = {"email_send", "image_resize", "data_analysis"};
  for (int i = 6; i <= 11; ++i) {
    const std::string kind = kinds[i % 3];
    json payload = kind == "email_send"     ? json{{"recipient", "user" + std::to_string(i) + "@example.com"}}
                   : kind == "image_resize" ? json{{"images", {"img" + std::to_string(i) + ".png"}}}
                                            : json{{"records", 100 * i}};
    tasks.push_back({{"id", "task" + std::to_string(i)}, {"type", kind}, {"payload", payload}});
  }
  tasks.push_back({{"id", "task12"}, {"type", "video_encode"}, {"payload", json::object()}});  // no such task type

  // Execute all tasks concurrently (Promise.allSettled): send everything, then collect.
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<procsup::reply<json>> replies;
  for (const auto& t : tasks) replies.push_back(pool.execute_task(t));
  int seen_success = 0, seen_failed = 0;
  bool round_robin = true;
  say("  Task results:");
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const json r = replies[i].get();
    const bool ok = r.value("success", false);
    (ok ? seen_success : seen_failed)++;
    round_robin = round_robin && r.value("workerId", "") == "worker-" + std::to_string(i % pool.size() + 1);
    say("    {} {}: {}", tasks[i].at("id").get<std::string>(), ok ? "fulfilled" : "rejected", r.dump());
  }
  const auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const json stats = pool.get_stats();
  say("  Worker pool stats: {}", stats.dump(2));
  say("  {} tasks in {:.2f} s on {} workers", tasks.size(), elapsed, pool.size());

  check.expect(round_robin, "tasks were dispatched round-robin");
  check.expect(stats.at("totalWorkers") == 3, "three workers");
  check.expect(stats.at("totalTasks") == tasks.size(), "the workers executed every task exactly once");
  check.expect(stats.at("totalSuccess") == seen_success && stats.at("totalFailed") == seen_failed,
               "the workers' success / failure counts match the results");
  check.expect(stats.at("totalSuccess").get<int>() + stats.at("totalFailed").get<int>() == stats.at("totalTasks").get<int>(),
               "success + failed = executed");
  bool per_worker = true;
  for (const auto& w : stats.at("workers"))
    per_worker = per_worker && w.at("tasksExecuted") == tasks.size() / pool.size() && w.at("currentTask").is_null();
  check.expect(per_worker, "each worker ran its round-robin share and is idle now");
  check.expect(seen_failed >= 1, "failed tasks are reported (at least the unknown task type)");

  say("  A poison task on worker-1, three tasks queued right behind it:");
  const pid_t before = pool.pid(0);
  auto poison = pool.execute_on(0, {{"id", "task13"}, {"type", "native_decode"}, {"payload", {{"blob", "corrupt"}}}});
  std::vector<procsup::reply<json>> behind;
  for (int i = 14; i <= 16; ++i)
    behind.push_back(pool.execute_on(
        0, {{"id", "task" + std::to_string(i)}, {"type", "email_send"}, {"payload", {{"recipient", "late@example.com"}}}}));
  std::string poison_error;
  try {
    (void)poison.get();
  } catch (const procsup::process_error& e) {
    poison_error = e.what();
  }
  say("    task13 rejected: {}", poison_error);
  bool behind_ok = true;
  for (std::size_t i = 0; i < behind.size(); ++i) {
    try {
      const json r = behind[i].get();
      say("    task{} {}: {}", 14 + i, r.value("success", false) ? "fulfilled" : "failed on its own", r.dump());
      behind_ok = behind_ok && r.value("workerId", "") == "worker-1" && r.value("pid", 0) != before;
    } catch (const procsup::process_error& e) {
      say("    task{} rejected: {}", 14 + i, e.what());
      behind_ok = false;
    }
  }
  check.expect(poison_error.find("killed by SIGSEGV") != std::string::npos, "the poison task failed, naming the crash");
  check.expect(behind_ok, "the three tasks behind it were run by worker-1's next instance, none lost");
  check.expect(pool.info(0).restart_count == 1 && pool.pid(0) != before, "worker-1 was restarted once");

  sup.stop();
  return check.exit_code("worker_pool");
}

}  // namespace

int main() { return examples::run_example("worker_pool", run); }
