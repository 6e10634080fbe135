#include "api/management_api.hpp"

#include <algorithm>
#include <utility>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "api/local_origin.hpp"
#include "api/status_views.hpp"
#include "core/async.hpp"
#include "core/function_name.hpp"
#include "metrics/prometheus_text.hpp"
#include "util/web_url.hpp"

namespace tinyfaas {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using namespace asio::experimental::awaitable_operators;

ManagementApi::ManagementApi(FunctionManager& manager, LogStore& logs, asio::any_io_executor downloadWorker,
                             ManagementApiOptions options)
    : manager_(manager), logs_(logs), downloadWorker_(std::move(downloadWorker)), options_(options) {}

namespace {

// The most calls GET /calls lists, oldest first.
constexpr std::size_t kListedCalls = 1000;

// "Bearer TOKEN" (the scheme is case-insensitive, RFC 7235); empty when absent.
std::string_view bearerToken(const HttpRequest& request) {
  auto it = request.find(http::field::authorization);
  if (it == request.end()) return {};
  std::string_view value = it->value();
  constexpr std::string_view scheme = "bearer ";
  if (value.size() <= scheme.size() || !boost::beast::iequals(value.substr(0, scheme.size()), scheme)) return {};
  value.remove_prefix(scheme.size());
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  return value;
}

HttpResponse unauthorized(const HttpRequest& request, bool tokenGiven) {
  auto response =
      textResponse(request, http::status::unauthorized,
                   tokenGiven ? "invalid bearer token" : "missing bearer token (send Authorization: Bearer TOKEN)");
  response.set(http::field::www_authenticate,
               tokenGiven ? R"(Bearer realm="tinyfaas", error="invalid_token")" : R"(Bearer realm="tinyfaas")");
  return response;
}

}  // namespace

std::optional<Scope> ManagementApi::scopeOf(const HttpRequest& request) const {
  if (!options_.tokens) return Scope{};  // an admin: a daemon without tokens listens on loopback only
  const std::string_view token = bearerToken(request);
  return token.empty() ? std::nullopt : options_.tokens->find(token);
}

bool ManagementApi::replaceTokens(AccessTokens tokens) {
  if (!options_.tokens) return false;
  options_.tokens = std::move(tokens);
  return true;
}

// Probes for process supervisors and load balancers, answered without a
// token and to any origin: they tell only that the daemon runs and is done
// starting, which anyone who can connect learns anyway.
std::optional<HttpResponse> ManagementApi::health(const HttpRequest& request) const {
  const std::string_view target = request.target();
  const std::string_view path = target.substr(0, target.find('?'));
  if (path != "/healthz" && path != "/readyz") return std::nullopt;
  if (request.method() != http::verb::get && request.method() != http::verb::head) {
    auto response = textResponse(request, http::status::method_not_allowed, "use GET for " + std::string(path));
    response.set(http::field::allow, "GET, HEAD");
    return response;
  }
  if (path == "/healthz" || ready_) return textResponse(request, http::status::ok, "ok");
  return textResponse(request, http::status::service_unavailable, "starting: the stored functions are being restored");
}

std::optional<HttpResponse> ManagementApi::admit(const HttpRequest& header) const {
  if (health(header)) return std::nullopt;
  if (!options_.tokens) {
    if (auto reason = foreignRequestReason(header)) return textResponse(header, http::status::forbidden, *reason);
    return std::nullopt;
  }
  if (!scopeOf(header)) return unauthorized(header, !bearerToken(header).empty());
  return std::nullopt;
}

asio::awaitable<HttpResponse> ManagementApi::handle(HttpRequest& request) {
  // Named objects, never temporaries inside the co_await (GCC 12 destroys
  // those twice, see README).
  std::optional<HttpResponse> probe = health(request);
  if (probe) co_return std::move(*probe);
  std::optional<HttpResponse> refusal = admit(request);
  if (refusal) co_return std::move(*refusal);
  const Scope scope = *scopeOf(request);
  co_return co_await route(request, scope);
}

asio::awaitable<HttpResponse> ManagementApi::route(HttpRequest& request, const Scope& scope) {
  auto target = boost::urls::parse_origin_form(request.target());
  if (!target) co_return textResponse(request, http::status::bad_request, "malformed request target");
  const std::string path = target->path();
  const auto method = request.method();

  auto requireMethod = [&](http::verb expected) -> std::optional<HttpResponse> {
    if (method == expected) return std::nullopt;
    auto response = textResponse(request, http::status::method_not_allowed,
                                 "use " + std::string(http::to_string(expected)) + " for " + path);
    response.set(http::field::allow, http::to_string(expected));
    return response;
  };

  if (path == "/upload") {
    if (auto wrong = requireMethod(http::verb::post)) co_return *wrong;
    co_return co_await upload(request, scope);
  }
  if (path == "/uploadURL") {
    if (auto wrong = requireMethod(http::verb::post)) co_return *wrong;
    co_return co_await uploadUrl(request, scope);
  }
  if (path == "/delete") {
    if (auto wrong = requireMethod(http::verb::post)) co_return *wrong;
    auto name = parseDelete(request.body());
    if (!name) co_return textResponse(request, http::status::bad_request, name.error().message);
    // Another tenant's function is "not found" too: its existence stays hidden.
    bool removed = false;
    if (options_.cluster) {
      removed = co_await options_.cluster->remove(*name, scope);
    } else {
      removed = co_await manager_.remove(*name, scope);
    }
    if (!removed) co_return textResponse(request, http::status::not_found, "function " + *name + " not found");
    std::vector<std::string> dropped{*name};
    co_await dropCallsOfRemoved(std::move(dropped));
    co_return textResponse(request, http::status::ok, "deleted " + *name);
  }
  if (path == "/list") {
    if (auto wrong = requireMethod(http::verb::get)) co_return *wrong;
    std::string body;
    std::vector<std::string> names;
    if (options_.cluster) {
      names = co_await options_.cluster->names(scope);
    } else {
      names = manager_.names(scope);
    }
    for (const auto& name : names) body += name + "\n";
    co_return textResponse(request, http::status::ok, body);
  }
  if (path == "/wipe") {
    if (auto wrong = requireMethod(http::verb::post)) co_return *wrong;
    std::vector<std::string> names;
    if (options_.cluster) {
      names = co_await options_.cluster->removeAll(scope);
    } else {
      names = manager_.names(scope);
      co_await manager_.removeAll(scope);
    }
    co_await dropCallsOfRemoved(std::move(names));
    co_return textResponse(request, http::status::ok, "");
  }
  if (path == "/nodes") {
    if (auto wrong = requireMethod(http::verb::get)) co_return *wrong;
    if (!options_.cluster)
      co_return textResponse(request, http::status::not_found, "/nodes needs cluster mode (tinyfaas serve --cluster)");
    auto response = textResponse(request, http::status::ok, options_.cluster->nodes(scope).dump() + "\n");
    response.set(http::field::content_type, "application/json");
    co_return response;
  }
  if (path == "/logs") {
    if (auto wrong = requireMethod(http::verb::get)) co_return *wrong;
    const boost::urls::params_view params = target->params();
    if (options_.cluster) co_return co_await clusterLogs(request, params, scope);
    co_return logs(request, params, scope);
  }
  if (path == "/calls") {
    if (auto wrong = requireMethod(http::verb::get)) co_return *wrong;
    const boost::urls::params_view params = target->params();
    co_return co_await asyncCalls(request, params, scope);
  }
  if (path == "/metrics") {
    if (auto wrong = requireMethod(http::verb::get)) co_return *wrong;
    co_return co_await metricsPage(request, scope);
  }
  if (path == "/functions" || path.starts_with("/functions/")) {
    if (auto wrong = requireMethod(http::verb::get)) co_return *wrong;
    std::string_view name = path;
    name.remove_prefix(std::min(name.size(), std::string_view("/functions/").size()));
    co_return co_await functions(request, name, scope);
  }
  co_return textResponse(
      request, http::status::not_found,
      "unknown path " + path + " (try /upload, /delete, /list, /wipe, /logs, /functions, /metrics, /calls, /nodes)");
}

asio::awaitable<metrics::CallSnapshot> ManagementApi::callSnapshot() {
  if (!options_.calls) co_return metrics::CallSnapshot{};
  co_return co_await options_.calls->snapshot();
}

asio::awaitable<MqttState> ManagementApi::mqttState() {
  if (!options_.mqttState) co_return MqttState{};
  co_return co_await options_.mqttState();
}

asio::awaitable<void> ManagementApi::dropCallsOfRemoved(std::vector<std::string> names) {
  if (!options_.asyncCalls) co_return;
  for (const std::string& name : names) {
    // A name deployed again meanwhile keeps its calls.
    if (!manager_.visible(name, Scope{})) co_await options_.asyncCalls->drop(name);
  }
}

asio::awaitable<HttpResponse> ManagementApi::asyncCalls(const HttpRequest& request,
                                                        const boost::urls::params_view& params, const Scope& scope) {
  auto name = params.find("name");
  if (name == params.end() || (*name).value.empty())
    co_return textResponse(request, http::status::bad_request,
                           "GET /calls needs ?name=FUNCTION, optionally &state=queued|running|done|failed");
  const std::string function = (*name).value;
  if (!isValidFunctionName(function))
    co_return textResponse(request, http::status::bad_request,
                           "function name must be " + std::string(kFunctionNameRule));
  std::optional<AsyncCallRecord::State> state;
  if (auto given = params.find("state"); given != params.end()) {
    state = parseCallState((*given).value);
    if (!state)
      co_return textResponse(
          request, http::status::bad_request,
          "state must be queued, running, done or failed (got '" + std::string((*given).value) + "')");
  }
  // Another tenant's function is "not found": its existence stays hidden.
  if (!manager_.visible(function, scope) || !options_.asyncCalls)
    co_return textResponse(request, http::status::not_found, "function " + function + " not found");
  auto listed = co_await options_.asyncCalls->list(function, state, kListedCalls);
  if (!listed) {
    spdlog::error("GET /calls: {}", listed.error());
    co_return textResponse(request, http::status::internal_server_error, "cannot read the asynchronous calls");
  }
  nlohmann::json list = nlohmann::json::array();
  for (const auto& call : *listed) list.push_back(listedCallJson(call));
  // A function's error output need not be UTF-8.
  auto response = textResponse(request, http::status::ok,
                               list.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  response.set(http::field::content_type, "application/json");
  co_return response;
}

asio::awaitable<HttpResponse> ManagementApi::metricsPage(const HttpRequest& request, const Scope& scope) {
  const auto calls = co_await callSnapshot();
  async_calls::StatsByFunction async;
  if (options_.asyncCalls) async = co_await options_.asyncCalls->stats();
  const MqttState mqtt = co_await mqttState();
  // A tenant gets the series of its own functions only.
  auto response = textResponse(request, http::status::ok,
                               renderMetricsPage(manager_.status(scope), calls, metrics::readProcessStats(),
                                                 options_.started, async, manager_.standbys(), mqtt));
  response.set(http::field::content_type, metrics::kPrometheusContentType);
  co_return response;
}

asio::awaitable<HttpResponse> ManagementApi::functions(const HttpRequest& request, std::string_view name,
                                                       const Scope& scope) {
  auto json = [&](http::status status, const nlohmann::json& body) {
    auto response = textResponse(request, status, body.dump() + "\n");
    response.set(http::field::content_type, "application/json");
    return response;
  };
  if (!name.empty() && !isValidFunctionName(name))
    co_return json(http::status::bad_request, {{"error", "function name must be " + std::string(kFunctionNameRule)}});
  const auto calls = co_await callSnapshot();
  const MqttState mqtt = co_await mqttState();
  // Read after the snapshot: the status is then as fresh as the counters.
  const auto all = manager_.status(scope);
  const auto quarantined = manager_.quarantined(scope);
  if (name.empty()) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& function : all) list.push_back(functionJson(function, calls.find(function.name), mqtt));
    for (const auto& function : quarantined) list.push_back(quarantinedJson(function));
    if (options_.cluster) options_.cluster->annotate(list, scope);
    co_return json(http::status::ok, list);
  }
  if (options_.cluster) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& function : all) {
      if (function.name == name) list.push_back(functionJson(function, calls.find(function.name)));
    }
    options_.cluster->annotate(list, scope);
    for (const auto& function : list) {
      if (function.value("name", "") == name) co_return json(http::status::ok, function);
    }
  }
  for (const auto& function : all) {
    if (function.name == name)
      co_return json(http::status::ok, functionJson(function, calls.find(function.name), mqtt));
  }
  for (const auto& function : quarantined) {
    if (function.name == name) co_return json(http::status::ok, quarantinedJson(function));
  }
  co_return json(http::status::not_found, {{"error", "function " + std::string(name) + " not found"}});
}

HttpResponse ManagementApi::logs(const HttpRequest& request, const boost::urls::params_view& params,
                                 const Scope& scope) const {
  auto given = [&](std::string_view key) -> std::optional<std::string> {
    auto it = params.find(key);
    return it == params.end() ? std::nullopt : std::optional<std::string>((*it).value);
  };
  const auto tail = given("tail");
  const auto since = given("since");
  auto query = parseLogQuery(tail, since, std::chrono::system_clock::now());
  if (!query) return textResponse(request, http::status::bad_request, query.error());
  auto name = params.find("name");
  if (name == params.end() || (*name).value.empty())
    return textResponse(request, http::status::ok, logs_.readAll(scope, *query));
  const std::string function = (*name).value;
  if (!isValidFunctionName(function))
    return textResponse(request, http::status::bad_request, "function name must be " + std::string(kFunctionNameRule));
  // The store decides whose lines a caller reads (manager/log_store.hpp):
  // a deploy in progress already logs for its owner.
  const std::string lines = logs_.read(function, scope, *query);
  if (lines.empty() && !manager_.visible(function, scope))
    return textResponse(request, http::status::not_found, "function " + function + " not found");
  return textResponse(request, http::status::ok, lines);
}

asio::awaitable<HttpResponse> ManagementApi::clusterLogs(const HttpRequest& request, boost::urls::params_view params,
                                                         Scope scope) {
  HttpResponse local = logs(request, params, scope);
  auto name = params.find("name");
  const bool answered = local.result() == http::status::ok || local.result() == http::status::not_found;
  if (name == params.end() || (*name).value.empty() || !answered) co_return local;
  const std::string function = (*name).value;
  auto tail = params.find("tail");
  auto since = params.find("since");
  auto query = parseLogQuery(tail == params.end() ? std::nullopt : std::optional<std::string_view>((*tail).value),
                             since == params.end() ? std::nullopt : std::optional<std::string_view>((*since).value),
                             std::chrono::system_clock::now());
  if (!query) co_return textResponse(request, http::status::bad_request, query.error());
  std::string lines = local.result() == http::status::ok ? local.body() : std::string();
  lines += co_await options_.cluster->remoteLogs(function, scope, *query);
  if (lines.empty() && local.result() == http::status::not_found && !options_.cluster->has(function, scope))
    co_return local;
  co_return textResponse(request, http::status::ok, std::move(lines));
}

namespace {

bool followAsked(const boost::urls::params_view& params) {
  auto follow = params.find("follow");
  return follow != params.end() && (*follow).value != "0" && (*follow).value != "false";
}

// Lines waiting to be sent to one follower, and the timer that wakes it.
struct FollowQueue {
  explicit FollowQueue(asio::any_io_executor executor) : wake(executor, asio::steady_timer::time_point::max()) {}
  std::string pending;
  std::size_t dropped = 0;
  asio::steady_timer wake;
};

// Ends when the client closes its side (or the daemon closes the socket).
asio::awaitable<void> untilClosed(beast::tcp_stream& connection) {
  char sink[512];
  for (;;) {
    auto [ec, n] = co_await connection.async_read_some(asio::buffer(sink), useTuple);
    (void)n;
    if (ec) co_return;
  }
}

asio::awaitable<void> sendLines(beast::tcp_stream& connection, FollowQueue& queue, const bool& ended) {
  for (;;) {
    if (queue.pending.empty()) {
      if (ended) {
        // The daemon stops: a complete reply, which the client can tell from
        // a lost connection.
        co_await asio::async_write(connection, http::make_chunk_last(), useTuple);
        co_return;
      }
      queue.wake.expires_at(asio::steady_timer::time_point::max());
      co_await queue.wake.async_wait(useTuple);
      // New lines wake the timer by cancelling it; so do the client leaving
      // (untilClosed won the race; only then is the coroutine cancelled) and
      // endStreams().
      const auto state = co_await asio::this_coro::cancellation_state;
      if (state.cancelled() != asio::cancellation_type::none) co_return;
      if (queue.pending.empty()) continue;
    }
    std::string text = std::exchange(queue.pending, {});
    if (queue.dropped > 0) {
      text = "(" + std::to_string(std::exchange(queue.dropped, 0)) + " lines dropped: the reader is too slow)\n" + text;
    }
    auto [ec, n] = co_await asio::async_write(connection, http::make_chunk(asio::buffer(text)), useTuple);
    (void)n;
    if (ec) co_return;
  }
}

}  // namespace

asio::awaitable<bool> ManagementApi::stream(HttpRequest& request, beast::tcp_stream& connection) {
  auto target = boost::urls::parse_origin_form(request.target());
  if (!target || target->path() != "/logs" || request.method() != http::verb::get || !followAsked(target->params()))
    co_return false;
  // Authorisation, the 400/404 cases and the lines so far: the plain reply's.
  HttpResponse first = co_await handle(request);
  if (first.result() != http::status::ok) {
    first.keep_alive(false);
    co_await http::async_write(connection, first, useTuple);
    co_return true;
  }
  const Scope scope = *scopeOf(request);  // handle() answered 200: authorised
  auto name = target->params().find("name");
  const std::string function = name == target->params().end() ? std::string() : std::string((*name).value);

  FollowQueue queue(connection.get_executor());
  followers_.insert(&queue.wake);
  struct Unlist {
    std::set<asio::steady_timer*>& followers;
    asio::steady_timer* wake;
    ~Unlist() { followers.erase(wake); }
  } unlist{followers_, &queue.wake};
  // Only lines of functions the tenant owns when they are written.
  auto subscription = logs_.follow(scope, [&](std::string_view from, std::string_view entry) {
    if (!function.empty() && from != function) return;
    if (queue.pending.size() > kFollowBacklogBytes) {
      ++queue.dropped;
      return;
    }
    queue.pending.append(entry).push_back('\n');
    queue.wake.cancel();
  });
  queue.pending = std::move(first.body());

  http::response<http::empty_body> header{http::status::ok, request.version()};
  header.set(http::field::content_type, "text/plain; charset=utf-8");
  header.set(http::field::cache_control, "no-cache");
  header.keep_alive(false);
  header.chunked(true);
  connection.expires_never();
  http::response_serializer<http::empty_body> serializer{header};
  auto [ec, n] = co_await http::async_write_header(connection, serializer, useTuple);
  (void)n;
  if (ec) co_return true;
  co_await (untilClosed(connection) || sendLines(connection, queue, streamsEnded_));
  co_return true;
}

asio::awaitable<void> ManagementApi::endStreams() {
  streamsEnded_ = true;
  for (auto* wake : followers_) wake->cancel();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  asio::steady_timer pause(co_await asio::this_coro::executor);
  while (!followers_.empty() && std::chrono::steady_clock::now() < deadline) {
    pause.expires_after(std::chrono::milliseconds(10));
    co_await pause.async_wait(useTuple);
  }
}

asio::awaitable<HttpResponse> ManagementApi::upload(HttpRequest& request, const Scope& scope) {
  auto parsed = parseUpload(request.body());
  // The body can be tens of MB of base64; it is not needed past this point.
  request.body().clear();
  request.body().shrink_to_fit();
  if (!parsed) co_return textResponse(request, http::status::bad_request, parsed.error().message);
  spdlog::info("deploying {} ({}, {} bytes zipped)", parsed->config.name, toString(parsed->config.runtime),
               parsed->zip.size());
  co_return co_await deploy(request, std::move(*parsed), scope);
}

asio::awaitable<HttpResponse> ManagementApi::uploadUrl(HttpRequest& request, const Scope& scope) {
  auto parsed = parseUploadUrl(request.body());
  if (!parsed) co_return textResponse(request, http::status::bad_request, parsed.error().message);
  const std::string shown = urlWithoutSecrets(parsed->url);
  spdlog::info("deploying {} ({}) from {}", parsed->config.name, toString(parsed->config.runtime), shown);
  FetchLimits limits = options_.downloads;
  if (!scope.admin) {
    limits.allowAddress = [policy = options_.uploadUrlPolicy](const asio::ip::address& address) {
      return policy.permits(address);
    };
  }
  limits.cancelled = downloadsCancelled_;
  auto zip = co_await fetchUrl(downloadWorker_, parsed->url, limits);
  if (downloadsCancelled_->load())
    co_return textResponse(request, http::status::service_unavailable,
                           "tinyFaaS is shutting down; upload again once it is back");
  if (!zip && !scope.admin) {
    // One text for every failure: different ones would tell a tenant which
    // internal hosts and ports exist. The operator's log has the reason.
    spdlog::info("download of {} for tenant {} failed: {}", shown, scope.tenant, zip.error().message);
    co_return textResponse(request, http::status::bad_request,
                           "cannot download the archive: the URL must answer HTTP 200 from an address this node "
                           "may fetch from, with at most " +
                               std::to_string(options_.downloads.maxBytes) + " bytes within " +
                               std::to_string(options_.downloads.timeout.count()) + " s");
  }
  // The URL is the uploader's: an unreachable or wrong one is a bad request.
  if (!zip)
    co_return textResponse(request, http::status::bad_request, "cannot download " + shown + ": " + zip.error().message);
  parsed->zip = std::move(*zip);
  co_return co_await deploy(request, std::move(*parsed), scope);
}

namespace {

// A failed deploy, on this node or in the cluster.
HttpResponse deployFailure(const HttpRequest& request, const DeployError& error) {
  if (error.nameTaken) return textResponse(request, http::status::conflict, error.message);
  if (error.shuttingDown) return textResponse(request, http::status::service_unavailable, error.message);
  return textResponse(request, error.userError ? http::status::bad_request : http::status::internal_server_error,
                      error.message);
}

}  // namespace

asio::awaitable<HttpResponse> ManagementApi::deploy(const HttpRequest& request, UploadRequest upload, Scope scope) {
  if (options_.cluster) co_return co_await deployToCluster(request, std::move(upload), std::move(scope));
  if (upload.nodes != 0)
    co_return textResponse(request, http::status::bad_request,
                           "field \"nodes\" needs cluster mode (tinyfaas serve --cluster)");
  const std::string name = upload.config.name;
  const RetryPolicy retries = upload.config.calls.async;
  auto deployed = co_await manager_.deploy(std::move(upload.config), std::move(upload.zip), std::move(upload.subfolder),
                                           std::move(scope));
  if (!deployed) co_return deployFailure(request, deployed.error());
  if (options_.asyncCalls) co_await options_.asyncCalls->setPolicy(name, retries);
  co_return endpointsFor(request, name);
}

asio::awaitable<HttpResponse> ManagementApi::deployToCluster(const HttpRequest& request, UploadRequest upload,
                                                             Scope scope) {
  const std::string name = upload.config.name;
  const RetryPolicy retries = upload.config.calls.async;
  auto deployed = co_await options_.cluster->deploy(std::move(upload.config), std::move(upload.zip),
                                                    std::move(upload.subfolder), upload.nodes, std::move(scope));
  if (!deployed) co_return deployFailure(request, deployed.error());
  if (options_.asyncCalls) co_await options_.asyncCalls->setPolicy(name, retries);
  HttpResponse response = endpointsFor(request, name);
  // The endpoint lines first, as on one node; then the nodes it is ready on.
  std::string nodes;
  for (const auto& node : *deployed) nodes += (nodes.empty() ? "" : ",") + node;
  response.body() += "nodes: " + nodes + "\n";
  response.set("X-tinyFaaS-Nodes", nodes);
  response.prepare_payload();
  co_return response;
}

HttpResponse ManagementApi::endpointsFor(const HttpRequest& request, const std::string& name) const {
  // The host the operator reached us by is the best guess for the URLs that
  // clients should use; upstream printed its listen address instead.
  std::string host = "localhost";
  if (auto it = request.find(http::field::host); it != request.end() && !it->value().empty()) {
    std::string_view value = it->value();
    if (value.front() == '[') {
      host = std::string(value.substr(0, value.find(']') + 1));
    } else {
      host = std::string(value.substr(0, value.find(':')));
    }
  }
  std::string body;
  if (options_.ports.coap >= 0)
    body += "coap://" + host + ":" + std::to_string(options_.ports.coap) + "/" + name + "\n";
  if (options_.ports.http >= 0)
    body += "http://" + host + ":" + std::to_string(options_.ports.http) + "/" + name + "\n";
  if (options_.ports.grpc >= 0)
    body += "grpc://" + host + ":" + std::to_string(options_.ports.grpc) + "/" + name + "\n";
  return textResponse(request, http::status::ok, body);
}

}  // namespace tinyfaas
