#include "procsup/daemon/dependency_graph.hpp"

#include <algorithm>

namespace procsup::daemon {

namespace {
constexpr std::size_t npos = static_cast<std::size_t>(-1);
}

dependency_graph::dependency_graph(std::vector<program_edges> programs) {
  names_.reserve(programs.size());
  for (const auto& p : programs) {
    index_.emplace(p.first, names_.size());
    names_.push_back(p.first);
  }
  needs_.resize(names_.size());
  needed_.resize(names_.size());
  for (std::size_t i = 0; i < programs.size(); ++i)
    for (const auto& d : programs[i].second) {
      const std::size_t j = index(d);
      if (j == npos || j == i) continue;  // `check` rejects both; ignore rather than loop
      needs_[i].push_back(j);
      needed_[j].push_back(i);
      ordered_ = true;
    }
  // Config order among equals: the walks visit neighbours in ascending index.
  for (auto& v : needs_) std::sort(v.begin(), v.end());
  for (auto& v : needed_) std::sort(v.begin(), v.end());
}

std::size_t dependency_graph::index(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? npos : it->second;
}

std::vector<std::string> dependency_graph::closure(std::size_t from,
                                                   const std::vector<std::vector<std::size_t>>& next) const {
  std::vector<std::string> order;
  std::vector<char> seen(names_.size(), 0);
  // Iterative post-order (a deep chain of depends_on must not recurse without bound).
  std::vector<std::pair<std::size_t, std::size_t>> stack{{from, 0}};
  seen[from] = 1;
  while (!stack.empty()) {
    auto& [node, at] = stack.back();
    if (at < next[node].size()) {
      const std::size_t n = next[node][at++];
      if (!seen[n]) {
        seen[n] = 1;
        stack.emplace_back(n, 0);
      }
      continue;
    }
    order.push_back(names_[node]);
    stack.pop_back();
  }
  return order;
}

std::vector<std::string> dependency_graph::start_closure(const std::string& name) const {
  const std::size_t i = index(name);
  return i == npos ? std::vector<std::string>{name} : closure(i, needs_);
}

std::vector<std::string> dependency_graph::stop_closure(const std::string& name) const {
  const std::size_t i = index(name);
  return i == npos ? std::vector<std::string>{name} : closure(i, needed_);
}

std::vector<std::string> dependency_graph::dependents(const std::string& name) const {
  std::vector<std::string> out;
  const std::size_t i = index(name);
  if (i == npos) return out;
  for (std::size_t j : needed_[i]) out.push_back(names_[j]);
  return out;
}

}  // namespace procsup::daemon
