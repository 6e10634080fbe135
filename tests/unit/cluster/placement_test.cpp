#include "cluster/placement.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <gtest/gtest.h>

namespace tinyfaas::cluster {
namespace {

std::vector<Candidate> threeUp() { return {{"a", true}, {"b", true}, {"c", true}}; }

FunctionRecord record(const std::string& name, int nodes, const std::string& version = "v1") {
  FunctionRecord r;
  r.config.name = name;
  r.nodes = nodes;
  r.version = version;
  r.code = "hash";
  return r;
}

TEST(Placement, SameInputSamePlacementWhateverTheOrderOfNodes) {
  auto nodes = threeUp();
  const auto first = place("fn", 2, 64, nodes);
  std::reverse(nodes.begin(), nodes.end());
  EXPECT_EQ(place("fn", 2, 64, nodes), first);
  EXPECT_EQ(first.size(), 2u);
}

TEST(Placement, OnlyUpNodesAndFewerWhenFewerAreUp) {
  std::vector<Candidate> nodes{{"a", true}, {"b", false}, {"c", false}};
  EXPECT_EQ(place("fn", 2, 64, nodes), std::vector<std::string>{"a"});
  nodes[0].up = false;
  EXPECT_TRUE(place("fn", 1, 64, nodes).empty());
}

TEST(Placement, SpreadsFunctionsOverNodes) {
  std::map<std::string, int> perNode;
  for (int i = 0; i < 300; ++i) perNode[place("fn" + std::to_string(i), 1, 64, threeUp()).front()]++;
  ASSERT_EQ(perNode.size(), 3u);
  for (const auto& [node, count] : perNode) EXPECT_GT(count, 60) << node;
}

TEST(Placement, ADeadNodesFunctionMovesAndTheOthersStay) {
  auto nodes = threeUp();
  std::map<std::string, std::string> before;
  for (int i = 0; i < 50; ++i) before["f" + std::to_string(i)] = place("f" + std::to_string(i), 1, 64, nodes).front();
  nodes[1].up = false;  // b dies
  for (const auto& [name, node] : before) {
    const auto now = place(name, 1, 64, nodes).front();
    if (node == "b") {
      EXPECT_NE(now, "b");
    } else {
      EXPECT_EQ(now, node) << name << " moved although its node lives";
    }
  }
}

TEST(Placement, NodesWithoutRoomInTheirMemoryBudgetComeLast) {
  std::vector<Candidate> nodes{{"a", true, 512, 500}, {"b", true, 512, 0}, {"c", true, 0, 0}};
  const auto chosen = place("fn", 2, 256, nodes);
  EXPECT_EQ(std::set<std::string>(chosen.begin(), chosen.end()), (std::set<std::string>{"b", "c"}));
  // Its own instance counts as free room on the node that runs it.
  nodes = {{"a", true, 512, 500, {"fn"}}};
  EXPECT_EQ(place("fn", 1, 256, nodes), std::vector<std::string>{"a"});
  // Full everywhere: still placed rather than nowhere.
  nodes = {{"a", true, 100, 100}};
  EXPECT_EQ(place("fn", 1, 256, nodes), std::vector<std::string>{"a"});
}

TEST(Plan, EveryNodeDeploysAFunctionWithoutNodes) {
  std::map<std::string, FunctionRecord> records{{"fn", record("fn", 0)}};
  for (const char* self : {"a", "b", "c"}) {
    const auto p = plan(records, threeUp(), self, {}, {});
    ASSERT_EQ(p.deploy.size(), 1u) << self;
    EXPECT_TRUE(p.remove.empty());
  }
}

TEST(Plan, ExactlyTheChosenNodesDeployAFunctionWithNodes) {
  std::map<std::string, FunctionRecord> records{{"fn", record("fn", 2)}};
  int deploying = 0;
  for (const char* self : {"a", "b", "c"}) deploying += plan(records, threeUp(), self, {}, {}).deploy.size();
  EXPECT_EQ(deploying, 2);
}

TEST(Plan, CurrentVersionIsKeptANewOneDeployed) {
  std::map<std::string, FunctionRecord> records{{"fn", record("fn", 0, "v2")}};
  EXPECT_TRUE(plan(records, threeUp(), "a", {{"fn", "v2"}}, {}).deploy.empty());
  EXPECT_EQ(plan(records, threeUp(), "a", {{"fn", "v1"}}, {}).deploy.size(), 1u);
}

TEST(Plan, AFailedVersionIsNotRetriedUntilANewUpload) {
  std::map<std::string, FunctionRecord> records{{"fn", record("fn", 0, "v2")}};
  EXPECT_TRUE(plan(records, threeUp(), "a", {}, {{"fn", "v2"}}).deploy.empty());
  EXPECT_EQ(plan(records, threeUp(), "a", {}, {{"fn", "v1"}}).deploy.size(), 1u);
}

TEST(Plan, UnsettledANodeTakesOnNoNewPlacedFunctionButKeepsAndUpdatesItsOwn) {
  std::map<std::string, FunctionRecord> records{{"placed", record("placed", 1, "v2")},
                                                {"everywhere", record("everywhere", 0)}};
  // Only "a" up: it is placed here whatever the hash says.
  const std::vector<Candidate> alone{{"a", true}};
  auto p = plan(records, alone, "a", {}, {}, /*settled=*/false);
  ASSERT_EQ(p.deploy.size(), 1u);
  EXPECT_EQ(p.deploy.front().config.name, "everywhere");
  p = plan(records, alone, "a", {{"placed", "v1"}}, {}, /*settled=*/false);
  EXPECT_EQ(p.deploy.size(), 2u);  // its own, at a new version
  EXPECT_EQ(plan(records, alone, "a", {}, {}, /*settled=*/true).deploy.size(), 2u);
}

TEST(Plan, ADeleteMissedWhileDownIsCaughtUp) {
  // The node deployed fn from the registry, was down when it was deleted:
  // the registry lacks it now, so the node removes its local copy.
  const auto p = plan({}, threeUp(), "a", {{"fn", "v1"}}, {});
  EXPECT_EQ(p.remove, std::vector<std::string>{"fn"});
}

TEST(Plan, AFunctionPlacedElsewhereNowIsRemovedHere) {
  std::map<std::string, FunctionRecord> records{{"fn", record("fn", 1)}};
  const std::string chosen = place("fn", 1, 256, threeUp()).front();
  for (const char* self : {"a", "b", "c"}) {
    const auto p = plan(records, threeUp(), self, {{"fn", "v1"}}, {});
    if (self == chosen) {
      EXPECT_TRUE(p.remove.empty());
    } else {
      EXPECT_EQ(p.remove, std::vector<std::string>{"fn"}) << self;
    }
  }
}

}  // namespace
}  // namespace tinyfaas::cluster
