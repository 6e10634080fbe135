#include "daemon/node.hpp"

#include <unistd.h>

#include <chrono>
#include <memory>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "async_calls/durable_invoker.hpp"
#include "backend/backend.hpp"
#include "core/async.hpp"
#include "daemon/graceful_shutdown.hpp"
#include "frontend/http/http_frontend.hpp"
#include "manager/log_store.hpp"
#include "metrics/metered_invoker.hpp"
#include "mqtt_triggers/mqtt_triggers.hpp"
#include "net/listen_socket.hpp"
#include "proxy/router.hpp"
#include "util/async_sync.hpp"
#include "util/run_on.hpp"

namespace tinyfaas {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {

// Once the instances are gone every handler returns at once; a longer wait
// is a bug: stop() then goes on with a warning, and the loop runs until the
// close ends.
constexpr std::chrono::seconds kSessionsEndLimit{5};

// Awaits `task` (a close or a join) on `loop`, the one its object lives on,
// from the coroutine's own executor; false when it took longer than
// kSessionsEndLimit.
asio::awaitable<bool> finishOn(asio::any_io_executor loop, asio::awaitable<void> task) {
  const auto home = co_await asio::this_coro::executor;
  // Shared: past the limit the task still ends later and sets it.
  auto closed = std::make_shared<AsyncEvent>(home);
  asio::co_spawn(loop, std::move(task),
                 [home, closed](std::exception_ptr) { asio::post(home, [closed] { closed->set(); }); });
  asio::steady_timer limit(home, kSessionsEndLimit);
  co_await (closed->wait() || limit.async_wait(useTuple));
  co_return closed->isSet();
}

}  // namespace

// Declared in the order they depend on each other: destroyed in reverse.
struct Node::Parts {
  Parts(NodeExecutors e, Backend& backend, LogStore& l, const NodeOptions& options)
      : executors(std::move(e)),
        backend(backend),
        logs(l),
        proxy(executors.dataPlane, router, options.proxy),
        callMetrics(executors.dataPlane, router),
        manager(executors.management, executors.dataPlane, router, backend, logs, options.manager),
        background(executors.management) {}

  NodeExecutors executors;
  Backend& backend;
  LogStore& logs;
  const metrics::StartTime started;
  Router router;
  Proxy proxy;
  // Made once the state dir is ready (create()); asynchronous calls are
  // stored there before they run through the proxy.
  // Cluster mode: calls for functions not running here go to another node.
  std::optional<cluster::CallForwarder> forwarder;
  std::unique_ptr<async_calls::CallQueue> asyncQueue;
  std::optional<cluster::LogExchange> clusterLogs;
  std::optional<async_calls::DurableInvoker> invoker;
  // Each frontend calls through its own metered view of the invoker.
  metrics::CallMetrics callMetrics;
  std::optional<metrics::MeteredInvoker> httpInvoker;
  std::optional<metrics::MeteredInvoker> coapInvoker;
  std::optional<metrics::MeteredInvoker> grpcInvoker;
  std::optional<metrics::MeteredInvoker> mqttInvoker;
  FunctionManager manager;
  std::unique_ptr<mqtt_triggers::MqttTriggers> mqtt;  // with --mqtt
  cluster::NatsTransport* nats = nullptr;             // cluster mode: the daemon's connection
  std::optional<cluster::ClusterAgent> cluster;
  std::unique_ptr<HttpServer> http;
  std::unique_ptr<CoapFrontend> coap;
  std::unique_ptr<GrpcFrontend> grpc;
  std::optional<ManagementApi> api;
  std::unique_ptr<HttpServer> managementServer;
  std::optional<GracefulShutdown> shutdown;
  TaskGroup background;  // start()'s: the backend's preparation, the restore
};

namespace {

// The MQTT session of --mqtt, following the manager's functions' triggers.
boost::system::result<std::unique_ptr<mqtt_triggers::MqttTriggers>, Failure> startMqtt(const NodeExecutors& executors,
                                                                                       const FunctionManager& manager,
                                                                                       Invoker& invoker, LogSink& logs,
                                                                                       const NodeOptions& options) {
  mqtt_triggers::MqttOptions mqtt;
  auto broker = mqtt_triggers::parseBrokerUrl(options.mqttUrl);
  if (!broker) return broker.error();
  mqtt.broker = *broker;
  if (!options.mqttCa.empty()) {
    auto caFile = mqtt_triggers::checkCaFile(mqtt.broker, options.mqttCa);
    if (!caFile) return caFile.error();
    mqtt.caFile = std::move(*caFile);
  }
  if (!options.mqttCredentials.empty()) {
    auto credentials = mqtt_triggers::readCredentials(options.mqttCredentials);
    if (!credentials) return credentials.error();
    mqtt.credentials = std::move(*credentials);
  }
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  mqtt.clientId = mqtt_triggers::clientIdFor(host, options.manager.stateDir);
  mqtt.maxPayloadBytes = options.manager.upstream.maxResponseBytes;
  auto routes = [&manager] {
    std::vector<mqtt_triggers::Route> out;
    for (const auto& function : manager.status()) {
      for (const auto& trigger : function.triggers) out.push_back({function.name, trigger});
    }
    return out;
  };
  return mqtt_triggers::MqttTriggers::create(executors.management, executors.dataPlane, invoker, logs, routes,
                                             std::move(mqtt));
}

}  // namespace

boost::system::result<std::unique_ptr<Node>, NodeError> Node::create(NodeExecutors executors, Backend& backend,
                                                                     LogStore& logs, NodeOptions options) {
  auto parts = std::make_unique<Parts>(std::move(executors), backend, logs, options);
  Parts& p = *parts;
  if (auto ok = p.manager.prepareStateDir(); !ok) return NodeError{2, ok.error()};
  spdlog::info("state directory: {}", options.manager.stateDir.string());
  if (auto kept = logs.keepIn(options.manager.stateDir / "logs", p.executors.management); !kept)
    return NodeError{2, "logs: " + kept.error()};
  p.manager.startScaling();

  async_calls::QueueOptions queueOptions = options.asyncCalls;
  queueOptions.database = options.manager.stateDir / "async-calls.db";
  // The stored functions' retry policies; deploys set them from then on.
  for (const auto& function : p.manager.status()) queueOptions.policies[function.name] = function.calls.async;
  CallRunner* runner = &p.proxy;
  std::function<bool(std::string_view)> elsewhere;
  if (options.cluster) {
    options.cluster->forwarder.callTimeout = options.manager.upstream.callTimeout;
    cluster::CallForwarder& forwarder = p.forwarder.emplace(
        p.executors.dataPlane, p.proxy, options.cluster->nats->connection(), options.cluster->forwarder);
    runner = &forwarder;
    elsewhere = [&forwarder](std::string_view name) { return forwarder.known(name); };
  }
  // Asynchronous calls run through the forwarder too: stored here, run where the function runs.
  auto queue = async_calls::CallQueue::create(p.executors.dataPlane, p.executors.management, *runner, logs,
                                              std::move(queueOptions));
  if (!queue) return NodeError{2, "asynchronous calls: " + queue.error()};
  p.asyncQueue = std::move(*queue);
  p.invoker.emplace(*runner, p.router, *p.asyncQueue, std::move(elsewhere));
  p.httpInvoker.emplace(*p.invoker, p.callMetrics, metrics::Protocol::http);
  p.coapInvoker.emplace(*p.invoker, p.callMetrics, metrics::Protocol::coap);
  p.grpcInvoker.emplace(*p.invoker, p.callMetrics, metrics::Protocol::grpc);
  p.mqttInvoker.emplace(*p.invoker, p.callMetrics, metrics::Protocol::mqtt);
  if (!options.mqttUrl.empty()) {
    auto mqtt = startMqtt(p.executors, p.manager, *p.mqttInvoker, logs, options);
    if (!mqtt) return NodeError{2, mqtt.error().message};
    p.mqtt = std::move(*mqtt);
    auto state = [&mqtt = *p.mqtt] { return mqtt.state(); };
    options.api.mqttState = state;
  }

  if (options.http) {
    auto server = startHttpFrontend(p.executors.dataPlane, *p.httpInvoker, *options.http);
    if (!server) return NodeError{1, "HTTP endpoint: " + server.error()};
    p.http = std::move(*server);
    spdlog::info("HTTP endpoint on {}", formatListenAddress(options.http->address, p.http->port()));
  }
  if (options.coap) {
    auto frontend = CoapFrontend::create(p.executors.dataPlane, *p.coapInvoker, *options.coap);
    if (!frontend) return NodeError{1, "CoAP endpoint: " + frontend.error()};
    p.coap = std::move(*frontend);
    spdlog::info("CoAP endpoint on {}/udp", formatListenAddress(options.coap->address, p.coap->port()));
  }
  if (options.grpc) {
    auto frontend = GrpcFrontend::create(p.executors.dataPlane, *p.grpcInvoker, *options.grpc);
    if (!frontend) return NodeError{1, "gRPC endpoint: " + frontend.error()};
    p.grpc = std::move(*frontend);
    spdlog::info("gRPC endpoint on {}", formatListenAddress(options.grpc->address, p.grpc->port()));
  }

  options.api.ports.http = p.http ? p.http->port() : -1;
  options.api.ports.coap = p.coap ? p.coap->port() : -1;
  options.api.ports.grpc = p.grpc ? p.grpc->port() : -1;
  options.api.calls = &p.callMetrics;
  options.api.asyncCalls = p.asyncQueue.get();
  options.api.started = p.started;
  if (options.cluster) {
    options.cluster->agent.stateDir = options.manager.stateDir;
    options.cluster->agent.memoryBudgetMb = options.manager.memoryBudgetMb;
    p.nats = options.cluster->nats;
    cluster::ClusterAgent& agent = p.cluster.emplace(p.executors.management, options.cluster->io,
                                                     *options.cluster->nats, p.manager, options.cluster->agent);
    agent.onRound([&forwarder = *p.forwarder, dataPlane = p.executors.dataPlane](auto registry, auto running) {
      asio::post(dataPlane, [&forwarder, registry = std::move(registry), running = std::move(running)]() mutable {
        forwarder.update(std::move(registry), std::move(running));
      });
    });
    agent.useLogs(p.clusterLogs.emplace(p.executors.management, options.cluster->io,
                                        options.cluster->nats->connection(), options.cluster->agent.nodeName, logs));
    options.cluster->nats->onAnnounce(
        [&agent, management = p.executors.management] { asio::post(management, [&agent] { agent.changed(); }); });
    options.api.cluster = &agent;
  }
  ManagementApi& api = p.api.emplace(p.manager, logs, p.executors.downloads, std::move(options.api));
  auto managementServer = HttpServer::create(
      p.executors.management, options.management, [&api](HttpRequest& request) { return api.handle(request); },
      [&api](HttpRequest& request, boost::beast::tcp_stream& connection) { return api.stream(request, connection); },
      [&api](const HttpRequest& header) { return api.admit(header); });
  if (!managementServer) return NodeError{1, "management API: " + managementServer.error()};
  p.managementServer = std::move(*managementServer);
  spdlog::info("management API on {}", formatListenAddress(options.management.address, p.managementServer->port()));

  std::vector<DrainTarget> drainTargets;
  if (p.http) drainTargets.push_back({"HTTP", p.http.get(), p.executors.dataPlane});
  if (p.coap) drainTargets.push_back({"CoAP", p.coap.get(), p.executors.dataPlane});
  if (p.grpc) drainTargets.push_back({"gRPC", p.grpc.get(), p.executors.dataPlane});
  if (p.mqtt) drainTargets.push_back({"MQTT", p.mqtt.get(), p.executors.dataPlane});
  drainTargets.push_back({"asynchronous", p.asyncQueue.get(), p.executors.dataPlane});
  drainTargets.push_back({"management API", p.managementServer.get(), p.executors.management});
  p.shutdown.emplace(std::move(drainTargets), options.shutdownTimeout);
  return std::unique_ptr<Node>(new Node(std::move(parts)));
}

Node::Node(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}
Node::~Node() = default;

BoundPorts Node::ports() const {
  const Parts& p = *parts_;
  return {p.managementServer->port(), p.http ? p.http->port() : -1, p.coap ? p.coap->port() : -1,
          p.grpc ? p.grpc->port() : -1};
}

ManagementApi& Node::api() { return *parts_->api; }

void Node::start() {
  Parts& p = *parts_;
  p.background.spawn(p.backend.prepare());
  p.background.spawn(restore());
  auto dispatch = [&queue = *p.asyncQueue] { queue.start(); };
  asio::post(p.executors.dataPlane, dispatch);
}

asio::awaitable<void> Node::restore() {
  co_await parts_->manager.restore();
  // From the stored functions on, the node converges to the registry.
  if (parts_->cluster) parts_->cluster->start();
  parts_->api->markReady();
  spdlog::info("ready: stored functions restored, endpoints listening");
  // After the restore: messages the broker kept for this node find their
  // functions up.
  if (parts_->mqtt) parts_->mqtt->start();
}

asio::awaitable<void> Node::stop() {
  Parts& p = *parts_;
  co_await p.api->endStreams();
  co_await p.shutdown->drain();
  p.api->cancelDownloads();
  auto stopFrontends = [&p] {
    if (p.http) p.http->closeConnections();
    if (p.coap) p.coap->stop();
    if (p.grpc) p.grpc->stop();
    if (p.forwarder) p.forwarder->stopServing();
  };
  co_await runOn(p.executors.dataPlane, stopFrontends);
  // Before the instances stop: a start waiting for a runtime image build
  // fails at once instead of holding the stop up.
  p.backend.cancel();
  co_await p.manager.shutdown();
  // Its calls ended with the instances.
  if (p.mqtt) co_await p.mqtt->stop();
  // Its deploys in flight ended with the manager's shutdown.
  if (p.cluster) {
    p.nats->onAnnounce(nullptr);
    co_await p.cluster->stop();
  }
  // Joined, not only closed: from here on nothing of the node runs. (No
  // loop over structured bindings: GCC 12 miscompiles them in coroutines.)
  const auto late = [](const char* server) {
    spdlog::warn("shutdown: {} requests still handled {} s after the instances stopped", server,
                 kSessionsEndLimit.count());
  };
  if (p.http) {
    asio::awaitable<void> closing = p.http->close();
    if (!co_await finishOn(p.executors.dataPlane, std::move(closing))) late("HTTP");
  }
  // The calls other nodes forwarded here ended with the instances.
  if (p.forwarder) {
    asio::awaitable<void> forwarded = p.forwarder->join();
    if (!co_await finishOn(p.executors.dataPlane, std::move(forwarded))) late("forwarded calls");
  }
  asio::awaitable<void> closingApi = p.managementServer->close();
  if (!co_await finishOn(p.executors.management, std::move(closingApi))) late("management API");
  // The calls it ran ended with the instances (their results are stored).
  asio::awaitable<void> joining = p.asyncQueue->join();
  if (!co_await finishOn(p.executors.dataPlane, std::move(joining))) late("asynchronous calls");
  // The restore ended with the starts it awaited, the preparation where
  // cancel() cut it.
  co_await p.background.join();
  p.logs.stopTimedFlushes();
}

void Node::hurry() { parts_->shutdown->hurry(); }

}  // namespace tinyfaas
