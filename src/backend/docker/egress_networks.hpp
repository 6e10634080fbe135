#pragma once
// The bridge networks of functions that asked for egress: one per function,
// created for its first running instance and removed with its last.
// Instances of other functions and of functions without egress have no
// network at all ("none").

#include <map>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include "backend/docker/engine_client.hpp"
#include "util/async_sync.hpp"

namespace tinyfaas::docker {

// Lives on its client's thread.
class EgressNetworks {
 public:
  EgressNetworks(EngineClient& client, std::string nodeId) : client_(client), nodeId_(std::move(nodeId)) {}

  // tinyfaas-NODE-FUNCTION: the node id keeps nodes on one engine apart.
  std::string name(const std::string& function) const { return "tinyfaas-" + nodeId_ + "-" + function; }
  // Counts an instance of `function` on its network, creating it first.
  boost::asio::awaitable<boost::system::result<void, std::string>> acquire(const std::string& function);
  // Uncounts one; the last one removes the network.
  boost::asio::awaitable<void> release(const std::string& function);

 private:
  struct Network {
    int users = 0;  // instances started on it and not yet stopped
    bool exists = false;
  };

  EngineClient& client_;
  std::string nodeId_;
  std::map<std::string, Network> networks_;
  AsyncMutex mutex_;  // held while a network is created or removed
};

}  // namespace tinyfaas::docker
