#pragma once
// The operator-facing HTTP API, compatible with upstream tinyFaaS:
// /upload, /uploadURL, /delete, /list, /wipe, /logs; and its own
// /functions (JSON status), /metrics (Prometheus) and /calls (asynchronous
// calls of a function, e.g. its dead letters).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/url/params_view.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <set>

#include "api/access_tokens.hpp"
#include "api/cluster_control.hpp"
#include "api/upload_request.hpp"
#include "async_calls/call_queue.hpp"
#include "core/mqtt_trigger.hpp"
#include "manager/address_policy.hpp"
#include "manager/function_manager.hpp"
#include "manager/log_store.hpp"
#include "manager/url_fetcher.hpp"
#include "metrics/call_metrics.hpp"
#include "metrics/process_stats.hpp"
#include "net/http_server.hpp"

namespace tinyfaas {

// Ports of the enabled function endpoints, for the URLs /upload answers
// with; -1 when disabled.
struct EndpointPorts {
  int coap = -1;
  int http = -1;
  int grpc = -1;
};

struct ManagementApiOptions {
  EndpointPorts ports;
  FetchLimits downloads;  // for /uploadURL
  // Call counters for /metrics and /functions; null reports no calls.
  metrics::CallMetrics* calls = nullptr;
  // The durable queue of asynchronous calls: GET /calls, the "async" retry
  // policy of uploads, queued calls dropped with their function. Null: none.
  async_calls::CallQueue* asyncCalls = nullptr;
  metrics::StartTime started;
  // Without tokens every caller is an admin: the daemon then listens on
  // loopback only, and admit() refuses what a web page could send.
  std::optional<AccessTokens> tokens;
  // Where tenants' /uploadURL may connect; admins' downloads go anywhere.
  AddressPolicy uploadUrlPolicy;
  // The MQTT session's state for /functions and /metrics, awaited on the
  // management executor; empty without --mqtt.
  std::function<boost::asio::awaitable<MqttState>()> mqttState;
  // Cluster mode (--cluster): /upload, /uploadURL, /delete, /wipe and /list
  // act on the cluster's registry, GET /nodes lists its nodes. Null: this
  // node alone.
  ClusterControl* cluster = nullptr;
};

// Lives on the management thread. Downloads for /uploadURL block, so they
// run on `downloadWorker` (a small thread pool) instead.
class ManagementApi {
 public:
  ManagementApi(FunctionManager& manager, LogStore& logs, boost::asio::any_io_executor downloadWorker,
                ManagementApiOptions options);
  // Decides on the header alone, before any body byte is read (the HTTP
  // server's header check): with tokens, 401 without a known token; without
  // tokens, 403 for what a web page on another origin or behind a rebound
  // name sends (api/local_origin.hpp). nullopt: go on.
  std::optional<HttpResponse> admit(const HttpRequest& header) const;
  // admit(), then the call.
  boost::asio::awaitable<HttpResponse> handle(HttpRequest& request);
  // Replaces the tokens after the token file changed (SIGHUP); on the
  // management thread like every request. False when the API runs without
  // tokens (then it listens on loopback only and stays so).
  bool replaceTokens(AccessTokens tokens);
  std::size_t tokenCount() const { return options_.tokens ? options_.tokens->size() : 0; }
  // GET /readyz answers 200 from now on: stored functions are restored and
  // every endpoint listens.
  void markReady() { ready_ = true; }
  // GET /logs?follow=1 (with or without name=): the lines so far, then every
  // new one as it comes, in one chunked reply that lasts until the client
  // goes away or the daemon stops. False for every other request.
  boost::asio::awaitable<bool> stream(HttpRequest& request, boost::beast::tcp_stream& connection);
  // At shutdown, before connections are closed: every followed log gets
  // the lines it has waiting and a clean end of its reply (the CLI then
  // says "daemon stopped"), within a second.
  boost::asio::awaitable<void> endStreams();
  // At shutdown, once requests in flight were drained: /uploadURL downloads
  // still running end within a second (their requests were answered 503).
  void cancelDownloads() { downloadsCancelled_->store(true); }

 private:
  // GET /healthz and /readyz; nullopt for every other request.
  std::optional<HttpResponse> health(const HttpRequest& request) const;
  // The caller's scope; nullopt when the token is missing or wrong.
  std::optional<Scope> scopeOf(const HttpRequest& request) const;
  boost::asio::awaitable<HttpResponse> route(HttpRequest& request, const Scope& scope);
  boost::asio::awaitable<HttpResponse> upload(HttpRequest& request, const Scope& scope);
  boost::asio::awaitable<HttpResponse> uploadUrl(HttpRequest& request, const Scope& scope);
  boost::asio::awaitable<HttpResponse> deploy(const HttpRequest& request, UploadRequest upload, Scope scope);
  boost::asio::awaitable<HttpResponse> deployToCluster(const HttpRequest& request, UploadRequest upload, Scope scope);
  HttpResponse logs(const HttpRequest& request, const boost::urls::params_view& params, const Scope& scope) const;
  // Cluster mode: this node's lines and those of the other nodes running it.
  boost::asio::awaitable<HttpResponse> clusterLogs(const HttpRequest& request, boost::urls::params_view params,
                                                   Scope scope);
  HttpResponse endpointsFor(const HttpRequest& request, const std::string& name) const;
  boost::asio::awaitable<HttpResponse> metricsPage(const HttpRequest& request, const Scope& scope);
  boost::asio::awaitable<HttpResponse> functions(const HttpRequest& request, std::string_view name, const Scope& scope);
  boost::asio::awaitable<metrics::CallSnapshot> callSnapshot();
  boost::asio::awaitable<MqttState> mqttState();
  boost::asio::awaitable<HttpResponse> asyncCalls(const HttpRequest& request, const boost::urls::params_view& params,
                                                  const Scope& scope);
  // Drops the stored calls of functions that are gone (after /delete, /wipe).
  boost::asio::awaitable<void> dropCallsOfRemoved(std::vector<std::string> names);

  FunctionManager& manager_;
  LogStore& logs_;
  boost::asio::any_io_executor downloadWorker_;
  std::shared_ptr<std::atomic<bool>> downloadsCancelled_ = std::make_shared<std::atomic<bool>>(false);
  ManagementApiOptions options_;
  bool ready_ = false;
  // What one follower may have waiting before lines are dropped (and counted).
  static constexpr std::size_t kFollowBacklogBytes = 1 << 20;
  // Wakes each follower's sender; set once the streams are to end.
  std::set<boost::asio::steady_timer*> followers_;
  bool streamsEnded_ = false;
};

}  // namespace tinyfaas
