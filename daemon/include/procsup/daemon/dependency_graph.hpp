// The start order of programs (`depends_on`): which programs a `ctl start` must start first and
// which a `ctl stop` must stop first. Pure: names in, names out; `procsup check` has already
// rejected unknown names and cycles (config.cpp), so the graph here is a DAG over known names.
#pragma once

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace procsup::daemon {

class dependency_graph {
 public:
  // One entry per program, in config order: its name and the names it depends on.
  using program_edges = std::pair<std::string, std::vector<std::string>>;

  dependency_graph() = default;
  explicit dependency_graph(std::vector<program_edges> programs);

  // `name` and everything it needs, transitively: dependencies before dependents (in config order
  // among equals), `name` last. What `ctl start name` starts, in this order.
  std::vector<std::string> start_closure(const std::string& name) const;
  // `name` and everything that needs it, transitively: dependents before their dependencies,
  // `name` last. What `ctl stop name` stops, in this order.
  std::vector<std::string> stop_closure(const std::string& name) const;
  // The programs that name `name` in their depends_on.
  std::vector<std::string> dependents(const std::string& name) const;
  // Whether any program has a dependency.
  bool ordered() const noexcept { return ordered_; }

 private:
  std::size_t index(const std::string& name) const;  // npos if unknown
  // Post-order depth-first walk from `from` along `next`: every node after the ones it reaches.
  std::vector<std::string> closure(std::size_t from, const std::vector<std::vector<std::size_t>>& next) const;

  std::vector<std::string> names_;
  std::unordered_map<std::string, std::size_t> index_;  // name -> position in names_ (the first)
  std::vector<std::vector<std::size_t>> needs_;    // needs_[i]: programs i depends on
  std::vector<std::vector<std::size_t>> needed_;   // needed_[i]: programs that depend on i
  bool ordered_ = false;
};

}  // namespace procsup::daemon
