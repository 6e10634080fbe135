#pragma once
// What the management API asks of a cluster (src/cluster) when the daemon
// runs with --cluster: deploys, deletes and lists act on the cluster's
// registry instead of this node's FunctionManager alone. Without --cluster
// the API has none and works on the local manager as before.

#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>
#include <nlohmann/json_fwd.hpp>

#include "manager/function_manager.hpp"
#include "manager/log_store.hpp"

namespace tinyfaas {

class ClusterControl {
 public:
  virtual ~ClusterControl() = default;
  // Stores the function in the registry; completes once it is ready on at
  // least one node, with the names of the nodes it is ready on.
  // `nodes`: how many nodes run it, 0 for every node.
  virtual boost::asio::awaitable<boost::system::result<std::vector<std::string>, DeployError>> deploy(
      FunctionConfig config, std::string zip, std::string subfolder, int nodes, Scope scope) = 0;
  // False when the registry has no such function within `scope`.
  virtual boost::asio::awaitable<bool> remove(std::string name, Scope scope) = 0;
  // Returns the names removed.
  virtual boost::asio::awaitable<std::vector<std::string>> removeAll(Scope scope) = 0;
  // The registry's functions within `scope` (as last read when NATS is away).
  virtual boost::asio::awaitable<std::vector<std::string>> names(Scope scope) = 0;
  // GET /nodes: one object per known node, naming only functions within `scope`.
  virtual nlohmann::json nodes(const Scope& scope) const = 0;
  // GET /functions: gives each of this node's functions (objects with
  // "name") its place in the cluster, and adds the registry's functions
  // within `scope` that do not run here.
  virtual void annotate(nlohmann::json& functions, const Scope& scope) const = 0;
  // Whether the registry has `name` within `scope`.
  virtual bool has(const std::string& name, const Scope& scope) const = 0;
  // GET /logs?name=: the lines of the other nodes that run the function.
  virtual boost::asio::awaitable<std::string> remoteLogs(std::string name, Scope scope, LogQuery query) = 0;
};

}  // namespace tinyfaas
