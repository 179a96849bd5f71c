// The start/stop order of depends_on (dependency_graph): examples, then a property test over
// random acyclic graphs checked against a brute-force reachability matrix.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "procsup/daemon/dependency_graph.hpp"

using procsup::daemon::dependency_graph;
using strings = std::vector<std::string>;

namespace {

std::size_t pos(const strings& v, const std::string& s) {
  return static_cast<std::size_t>(std::find(v.begin(), v.end(), s) - v.begin());
}

}  // namespace

TEST(DependencyGraph, ChainStartsDependenciesFirstAndStopsDependentsFirst) {
  const dependency_graph g({{"api", {"db", "cache"}}, {"db", {}}, {"cache", {"db"}}, {"web", {"api"}}, {"cron", {}}});
  EXPECT_TRUE(g.ordered());
  EXPECT_EQ(g.start_closure("web"), (strings{"db", "cache", "api", "web"}));
  EXPECT_EQ(g.start_closure("db"), (strings{"db"}));
  EXPECT_EQ(g.stop_closure("db"), (strings{"web", "api", "cache", "db"}));
  EXPECT_EQ(g.stop_closure("web"), (strings{"web"}));
  EXPECT_EQ(g.stop_closure("cron"), (strings{"cron"}));
  EXPECT_EQ(g.dependents("db"), (strings{"api", "cache"}));
  EXPECT_TRUE(g.dependents("web").empty());
}

TEST(DependencyGraph, UnknownNamesAndNoEdges) {
  const dependency_graph g({{"a", {}}, {"b", {}}});
  EXPECT_FALSE(g.ordered());
  EXPECT_EQ(g.start_closure("zzz"), (strings{"zzz"}));
  EXPECT_EQ(g.stop_closure("zzz"), (strings{"zzz"}));
  EXPECT_TRUE(g.dependents("zzz").empty());
}

TEST(DependencyGraph, DiamondVisitsSharedDependencyOnce) {
  const dependency_graph g({{"top", {"l", "r"}}, {"l", {"base"}}, {"r", {"base"}}, {"base", {}}});
  EXPECT_EQ(g.start_closure("top"), (strings{"base", "l", "r", "top"}));
  EXPECT_EQ(g.stop_closure("base"), (strings{"top", "l", "r", "base"}));
}

TEST(DependencyGraph, DeepChainDoesNotRecurse) {
  std::vector<dependency_graph::program_edges> p;
  const int n = 100'000;
  for (int i = 0; i < n; ++i) p.push_back({"p" + std::to_string(i), i ? strings{"p" + std::to_string(i - 1)} : strings{}});
  const dependency_graph g(std::move(p));
  const auto s = g.start_closure("p" + std::to_string(n - 1));
  ASSERT_EQ(s.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(s.front(), "p0");
  EXPECT_EQ(g.stop_closure("p0").back(), "p0");
}

TEST(DependencyGraph, RandomAcyclicGraphsMatchReachability) {
  std::mt19937 rng(20261204);
  for (int round = 0; round < 300; ++round) {
    const int n = 1 + static_cast<int>(rng() % 12);
    // A random DAG: node i may depend on any j < i in a random permutation's order.
    std::vector<int> perm(n);
    for (int i = 0; i < n; ++i) perm[i] = i;
    std::shuffle(perm.begin(), perm.end(), rng);
    std::vector<std::vector<bool>> dep(n, std::vector<bool>(n, false));  // dep[a][b]: a depends on b
    for (int a = 0; a < n; ++a)
      for (int b = 0; b < a; ++b)
        if (rng() % 3 == 0) dep[perm[a]][perm[b]] = true;
    std::vector<dependency_graph::program_edges> progs;
    for (int i = 0; i < n; ++i) {
      strings d;
      for (int j = 0; j < n; ++j)
        if (dep[i][j]) d.push_back("n" + std::to_string(j));
      progs.push_back({"n" + std::to_string(i), d});
    }
    auto reach = dep;  // transitive closure (Floyd-Warshall)
    for (int k = 0; k < n; ++k)
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j)
          if (reach[i][k] && reach[k][j]) reach[i][j] = true;
    const dependency_graph g(progs);
    for (int x = 0; x < n; ++x) {
      const std::string name = "n" + std::to_string(x);
      const strings start = g.start_closure(name), stop = g.stop_closure(name);
      ASSERT_EQ(start.back(), name);
      ASSERT_EQ(stop.back(), name);
      std::set<std::string> want_start{name}, want_stop{name};
      for (int j = 0; j < n; ++j) {
        if (reach[x][j]) want_start.insert("n" + std::to_string(j));
        if (reach[j][x]) want_stop.insert("n" + std::to_string(j));
      }
      ASSERT_EQ(std::set<std::string>(start.begin(), start.end()), want_start) << "round " << round;
      ASSERT_EQ(start.size(), want_start.size()) << "no duplicates";
      ASSERT_EQ(std::set<std::string>(stop.begin(), stop.end()), want_stop) << "round " << round;
      ASSERT_EQ(stop.size(), want_stop.size());
      // Order: in start, every dependency before its dependent; in stop, every dependent first.
      for (int a = 0; a < n; ++a)
        for (int b = 0; b < n; ++b) {
          if (!dep[a][b]) continue;
          const std::string sa = "n" + std::to_string(a), sb = "n" + std::to_string(b);
          if (want_start.count(sa)) {
            ASSERT_LT(pos(start, sb), pos(start, sa));
          }
          if (want_stop.count(sb) && want_stop.count(sa)) {
            ASSERT_LT(pos(stop, sa), pos(stop, sb));
          }
        }
    }
  }
}
