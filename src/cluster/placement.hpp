#pragma once
// Which nodes run a function with "nodes": N, and what one node must deploy
// or remove to match the registry. Pure functions of the registry and the
// heartbeats: every node computes the same placement from the same view, so
// no leader is needed; views differ only for the second or so a heartbeat
// takes to spread, and the next round converges.

#include <map>
#include <string>
#include <vector>

#include "cluster/function_record.hpp"

namespace tinyfaas::cluster {

struct Candidate {
  std::string name;
  bool up = false;
  int budgetMb = 0;          // 0: no memory budget
  long long reservedMb = 0;  // memory_mb of what it runs now
  // The functions it runs now: their own memory counts as free for them,
  // so that a function does not move off a node only because it fills it.
  std::vector<std::string> running = {};
};

// `count` up nodes for `function`: nodes with enough free budget for one
// instance of `memoryMb` first, then by rendezvous hashing of (function,
// node), which spreads functions over nodes and moves only those of a node
// that comes or goes. Fewer when fewer are up.
std::vector<std::string> place(const std::string& function, int count, int memoryMb,
                               const std::vector<Candidate>& nodes);

struct Plan {
  std::vector<FunctionRecord> deploy;  // missing here or at another version
  std::vector<std::string> remove;     // deployed here from the registry, no longer for this node
};

// What `self` must change. `applied`: functions deployed here from the
// registry, name -> version; functions deployed before cluster mode are not
// in it and are left alone. `failed`: versions that failed here, not tried
// again until a new upload. `settled`: this node has read the heartbeats
// long enough to know which nodes are up; before, it takes on no function
// with "nodes" that it does not run yet (a node starting with others would
// otherwise take one that a node it has not heard of yet is placed on).
Plan plan(const std::map<std::string, FunctionRecord>& records, const std::vector<Candidate>& nodes,
          const std::string& self, const std::map<std::string, std::string>& applied,
          const std::map<std::string, std::string>& failed, bool settled = true);

// Whether `self` should run `record` (every node when nodes is 0).
bool placedOn(const FunctionRecord& record, const std::vector<Candidate>& nodes, const std::string& self);

}  // namespace tinyfaas::cluster
