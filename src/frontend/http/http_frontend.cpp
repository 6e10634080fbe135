#include "frontend/http/http_frontend.hpp"

#include <boost/beast/http.hpp>

#include "core/function_name.hpp"
#include "util/header_names.hpp"

namespace tinyfaas {

namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace {

constexpr std::string_view kCallsPrefix = "calls/";

// Hop-by-hop and framing headers describe this connection, not the call.
bool isForwarded(http::field field) {
  switch (field) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::transfer_encoding:
    case http::field::content_length:
    case http::field::host:
    case http::field::expect:
    case http::field::te:
    case http::field::upgrade:
    case http::field::proxy_connection: return false;
    default: return true;
  }
}

http::status toHttpStatus(CallStatus status) {
  switch (status) {
    case CallStatus::ok: return http::status::ok;
    case CallStatus::notFound: return http::status::not_found;
    case CallStatus::functionError: return http::status::internal_server_error;
    case CallStatus::unavailable: return http::status::service_unavailable;
    case CallStatus::timeout: return http::status::gateway_timeout;
    case CallStatus::overloaded: return http::status::service_unavailable;
    case CallStatus::payloadTooLarge: return http::status::payload_too_large;
  }
  return http::status::internal_server_error;
}

// The answer a call's result makes, whether the client waited for it or
// fetched it later (GET /calls/ID).
HttpResponse resultResponse(const HttpRequest& request, CallResult result) {
  // The platform's own answers (not found, timeout, ...) have no code.
  if (result.code == 0 && result.status != CallStatus::ok)
    return textResponse(request, toHttpStatus(result.status), result.body);
  HttpResponse response{result.code == 0 ? http::status::ok : static_cast<http::status>(result.code),
                        request.version()};
  response.keep_alive(request.keep_alive());
  for (auto& [name, value] : result.headers) response.insert(name, value);
  // These statuses have no body in HTTP (Beast refuses to frame one).
  if (result.code == 204 || result.code == 304) result.body.clear();
  response.body() = std::move(result.body);
  response.prepare_payload();
  return response;
}

// GET /calls/ID: 202 while the call waits or runs, its result once it ended
// (done or failed for good), 404 for an id unknown, malformed or expired.
asio::awaitable<HttpResponse> asyncCallResponse(Invoker& invoker, HttpRequest& request, std::string id) {
  if (request.method() != http::verb::get) {
    auto response = textResponse(request, http::status::method_not_allowed, "use GET for /calls/ID");
    response.set(http::field::allow, "GET");
    co_return response;
  }
  const std::optional<AsyncCallRecord> call = co_await invoker.detachedCall(id);
  if (!call) co_return textResponse(request, http::status::not_found, "no call " + id + " (unknown or expired)");
  switch (call->state) {
    case AsyncCallRecord::State::queued: co_return textResponse(request, http::status::accepted, "queued\n");
    case AsyncCallRecord::State::running: co_return textResponse(request, http::status::accepted, "running\n");
    case AsyncCallRecord::State::done:
    case AsyncCallRecord::State::failed: break;
  }
  co_return resultResponse(request, call->result);
}

}  // namespace

asio::awaitable<HttpResponse> handleFunctionRequest(Invoker& invoker, HttpRequest& request) {
  if (request.method() != http::verb::get && request.method() != http::verb::post) {
    auto response = textResponse(request, http::status::method_not_allowed, "use GET or POST to call a function");
    response.set(http::field::allow, "GET, POST");
    co_return response;
  }
  std::string_view target = request.target();
  target = target.substr(0, target.find('?'));
  if (!target.empty() && target.front() == '/') target.remove_prefix(1);
  // Not a function name (no slash in those): the results of asynchronous calls.
  if (target.starts_with(kCallsPrefix))
    co_return co_await asyncCallResponse(invoker, request, std::string(target.substr(kCallsPrefix.size())));
  if (target.empty()) {
    co_return textResponse(request, http::status::not_found,
                           "no function here: call a function at /NAME (tinyfaas list shows the names)");
  }
  if (!isValidFunctionName(target)) {
    co_return textResponse(request, http::status::not_found, "function " + std::string(target) + " not found");
  }

  Invocation invocation;
  invocation.function.assign(target);
  bool async = false;
  for (const auto& field : request) {
    if (!isForwarded(field.name())) continue;
    std::string name = canonicalHeaderName(field.name_string());
    if (name.empty()) continue;
    if (name == "X-Tinyfaas-Async") async = true;
    invocation.headers.emplace_back(std::move(name), std::string(field.value()));
  }
  invocation.payload = std::move(request.body());

  if (async) {
    // Stored durably before the 202 goes out (async_calls/call_queue.hpp).
    DetachedCall accepted = co_await invoker.invokeDetached(std::move(invocation));
    switch (accepted.status) {
      case CallStatus::ok: {
        auto response = textResponse(request, http::status::accepted, "");
        response.set(http::field::location, "/" + std::string(kCallsPrefix) + accepted.id);
        co_return response;
      }
      case CallStatus::notFound: co_return textResponse(request, http::status::not_found, accepted.reason);
      default: co_return textResponse(request, http::status::service_unavailable, accepted.reason);
    }
  }

  CallResult result = co_await invoker.invoke(std::move(invocation));
  co_return resultResponse(request, std::move(result));
}

boost::system::result<std::unique_ptr<HttpServer>, std::string> startHttpFrontend(asio::any_io_executor executor,
                                                                                  Invoker& invoker,
                                                                                  HttpServerOptions options) {
  return HttpServer::create(std::move(executor), std::move(options),
                            [&invoker](HttpRequest& request) { return handleFunctionRequest(invoker, request); });
}

}  // namespace tinyfaas
