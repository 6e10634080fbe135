#pragma once
// One tinyFaaS node, composed: the data plane (router, proxy, call metrics,
// the HTTP, CoAP and gRPC endpoints) on one executor, the management side
// (function manager, management API) on another, over a Backend the caller
// chose. `tinyfaas serve` builds one from its configuration and runs the
// loops; tests can build one in-process with a fake backend and port 0.

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include "api/management_api.hpp"
#include "async_calls/call_queue.hpp"
#include "cluster/call_forwarder.hpp"
#include "cluster/cluster_agent.hpp"
#include "cluster/nats_transport.hpp"
#include "daemon/bound_ports.hpp"
#include "frontend/coap/coap_frontend.hpp"
#include "frontend/grpc/grpc_frontend.hpp"
#include "manager/function_manager.hpp"
#include "net/http_server.hpp"
#include "proxy/proxy.hpp"

namespace tinyfaas {

class Backend;
class LogStore;

struct NodeExecutors {
  boost::asio::any_io_executor dataPlane;   // frontends, router, upstream connections
  boost::asio::any_io_executor management;  // manager, API, backend
  boost::asio::any_io_executor downloads;   // /uploadURL's blocking downloads
};

// Cluster mode: the connection to NATS, the thread its blocking calls run
// on, and this node's part: the agent (registry) and the call forwarding.
struct ClusterSetup {
  cluster::NatsTransport* nats = nullptr;
  boost::asio::any_io_executor io;
  cluster::AgentOptions agent;
  cluster::ForwarderOptions forwarder;
};

struct NodeOptions {
  ProxyOptions proxy;
  // Limits of asynchronous calls; the database goes into the state dir.
  async_calls::QueueOptions asyncCalls;
  ManagerOptions manager;
  // nullopt: the endpoint is disabled.
  std::optional<HttpServerOptions> http;
  std::optional<CoapOptions> coap;
  std::optional<GrpcOptions> grpc;
  HttpServerOptions management;
  // ports, calls and started are the node's own.
  ManagementApiOptions api;
  std::chrono::seconds shutdownTimeout{30};
  // --mqtt, --mqtt-ca and --mqtt-credentials; an empty url: no MQTT triggers.
  std::string mqttUrl;
  std::filesystem::path mqttCa;
  std::filesystem::path mqttCredentials;
  std::optional<ClusterSetup> cluster;  // nullopt: one node alone
};

// Why a node could not be built, with the exit status `tinyfaas serve`
// gives for it (2: the state dir; 1: a listener).
struct NodeError {
  int status = 1;
  std::string message;
};

class Node {
 public:
  // Prepares the state dir and binds every listener; nothing is served
  // before the executors run.
  static boost::system::result<std::unique_ptr<Node>, NodeError> create(NodeExecutors executors, Backend& backend,
                                                                        LogStore& logs, NodeOptions options);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  BoundPorts ports() const;
  ManagementApi& api();

  // Before the executors run, or on the management one: in the background,
  // readies the backend (the docker backend's runtime images, which the API
  // need not wait for) and starts the stored functions. Restored functions
  // are listed at once and answer once an instance is healthy (503 until
  // then); /readyz says 200 when all of them started or were given up on.
  void start();
  // On the management executor: stops accepting, lets calls in flight
  // finish up to the shutdown timeout (or hurry()), cuts the rest short,
  // closes the endpoints and every connection left, ends the backend's
  // preparation, and stops every instance. Then no work of the node or its
  // backend is left on either executor.
  boost::asio::awaitable<void> stop();
  // Ends stop()'s wait for calls in flight (a second signal).
  void hurry();

 private:
  struct Parts;
  explicit Node(std::unique_ptr<Parts> parts);
  boost::asio::awaitable<void> restore();
  std::unique_ptr<Parts> parts_;
};

}  // namespace tinyfaas
