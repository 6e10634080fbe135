#pragma once
// This node's part in the cluster: every second it writes its heartbeat,
// reads the registry and the other nodes' heartbeats, and deploys or
// removes functions through its own FunctionManager until it runs what the
// placement (placement.hpp) gives it. The management API calls it for
// cluster-wide deploys, deletes and lists (api/cluster_control.hpp).
//
// Offline first: the FunctionManager keeps its own store, so while NATS is
// unreachable the node serves what it has; each round that reaches NATS
// converges again, deletes included (the versions deployed from the
// registry are remembered in STATE_DIR/cluster.json, so a function the
// registry no longer has is removed even after a restart).

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "api/cluster_control.hpp"
#include "cluster/cluster_transport.hpp"
#include "cluster/function_record.hpp"
#include "cluster/log_exchange.hpp"
#include "cluster/node_status.hpp"
#include "cluster/placement.hpp"
#include "manager/function_manager.hpp"
#include "util/async_sync.hpp"

namespace tinyfaas::cluster {

struct AgentOptions {
  std::string nodeName;
  std::filesystem::path stateDir;
  int memoryBudgetMb = 0;
  std::chrono::milliseconds heartbeat{1000};
  // A node not heard of for this long is down.
  std::chrono::milliseconds downAfter{4000};
  // How long an upload waits for a node to be ready with it.
  std::chrono::seconds deployTimeout{660};
};

// Lives on the management thread, like the FunctionManager; the blocking
// NATS calls run on `io` (the cluster's own thread), which alone uses `kv`.
class ClusterAgent final : public ClusterControl {
 public:
  ClusterAgent(boost::asio::any_io_executor management, boost::asio::any_io_executor io, KvTransport& kv,
               FunctionManager& manager, AgentOptions options);

  // Reads what was deployed from the registry before and starts the rounds.
  void start();
  // Ends the rounds and the deploys it started.
  boost::asio::awaitable<void> stop();
  // Another node announced a change (KvTransport::announce): a round at once.
  void changed() { kick(); }

  // After each round that read the registry (for the call forwarding): the
  // registry's functions with their call timeouts, and those with a
  // healthy instance here.
  using RoundListener =
      std::function<void(std::map<std::string, std::chrono::milliseconds> registry, std::set<std::string> running)>;
  void onRound(RoundListener listener) { roundListener_ = std::move(listener); }

  boost::asio::awaitable<boost::system::result<std::vector<std::string>, DeployError>> deploy(
      FunctionConfig config, std::string zip, std::string subfolder, int nodes, Scope scope) override;
  boost::asio::awaitable<bool> remove(std::string name, Scope scope) override;
  boost::asio::awaitable<std::vector<std::string>> removeAll(Scope scope) override;
  boost::asio::awaitable<std::vector<std::string>> names(Scope scope) override;
  nlohmann::json nodes(const Scope& scope) const override;
  void annotate(nlohmann::json& functions, const Scope& scope) const override;
  bool has(const std::string& name, const Scope& scope) const override;
  boost::asio::awaitable<std::string> remoteLogs(std::string name, Scope scope, LogQuery query) override;
  // Where remoteLogs() asks the other nodes.
  void useLogs(LogExchange& exchange) { logs_ = &exchange; }

 private:
  boost::asio::awaitable<void> loop();
  // A round at once (or right after the one running).
  void kick();
  // Heartbeat, then the registry and heartbeats; false when NATS was not reached.
  boost::asio::awaitable<bool> refresh();
  void reconcile();
  // Replaces the records as last read.
  void takeRecords(const std::vector<KvEntry>& entries);
  boost::asio::awaitable<void> apply(FunctionRecord record);
  boost::asio::awaitable<void> drop(std::string name);
  // Removes code from the code bucket unless a record (as last read) uses it.
  boost::asio::awaitable<void> dropUnusedCode(std::string hash);
  boost::asio::awaitable<boost::system::result<std::vector<std::string>, DeployError>> awaitReady(
      const std::string& name, const std::string& version);
  std::vector<Candidate> candidates() const;
  bool up(const std::string& node) const;
  // Up nodes other than this one whose heartbeat says they run `name`.
  std::vector<std::string> runningElsewhere(const std::string& name) const;
  NodeStatus ownStatus() const;
  void loadApplied();
  void saveApplied() const;

  boost::asio::any_io_executor management_;
  boost::asio::any_io_executor io_;
  KvTransport& kv_;
  FunctionManager& manager_;
  AgentOptions options_;
  std::string instance_;

  std::map<std::string, FunctionRecord> records_;  // the registry as last read
  std::map<std::string, NodeStatus> nodes_;        // heartbeats as last read
  struct Seen {
    std::uint64_t revision = 0;
    std::chrono::steady_clock::time_point changed;
  };
  std::map<std::string, Seen> seen_;            // when each node's heartbeat last changed, by our clock
  std::map<std::string, std::string> applied_;  // deployed here from the registry: name -> version
  std::map<std::string, DeployFailure> failures_;
  std::set<std::string> busy_;  // names with a deploy or removal running here
  bool online_ = false;
  std::chrono::steady_clock::time_point onlineSince_;  // placement waits a downAfter from here
  bool kicked_ = false;
  std::string lastAnnounced_;  // this node's status as last announced, without its time
  RoundListener roundListener_;
  LogExchange* logs_ = nullptr;
  TaskGroup tasks_;
  boost::asio::steady_timer wake_;  // the pause between rounds; cancelled for a round at once
};

}  // namespace tinyfaas::cluster
