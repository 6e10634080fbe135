#pragma once
// A node's heartbeat (bucket "nodes", key = node name), written every
// second: what it runs, what failed to deploy there, its memory. Every node
// reads all of them to place functions and to answer GET /nodes.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/cluster_transport.hpp"

namespace tinyfaas::cluster {

struct DeployFailure {
  std::string version;
  std::string error;
  bool userError = true;  // the upload is at fault (400), not the node
};

struct NodeStatus {
  std::string name;
  std::string instance;                         // random per daemon run: two live nodes of one name differ in it
  std::int64_t lastSeenMs = 0;                  // the writer's wall clock
  std::vector<std::string> functions;           // with a healthy instance here
  std::map<std::string, std::string> versions;  // deployed here from the registry: name -> record version
  std::map<std::string, DeployFailure> failures;
  int memoryBudgetMb = 0;                    // --memory-budget-mb; 0: none
  long long reservedMb = 0;                  // memory_mb of its instances together
  std::optional<std::uint64_t> memoryBytes;  // measured (PSS) of its instances together
};

std::string statusJson(const NodeStatus& status);
Result<NodeStatus> parseStatus(std::string_view text);

// Whether a live daemon already uses `name`: its heartbeat is there and
// changes within `watch` (a heartbeat period and then some). A node that
// restarts after a crash finds its old heartbeat standing still.
// `sleep` waits (a parameter, so that tests need not).
Result<bool> nameInUse(KvTransport& kv, const std::string& name, std::chrono::milliseconds watch,
                       const std::function<void(std::chrono::milliseconds)>& sleep);

}  // namespace tinyfaas::cluster
