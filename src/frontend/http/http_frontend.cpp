#include "frontend/http/http_frontend.hpp"

#include <boost/beast/http.hpp>

#include "core/function_name.hpp"
#include "util/header_names.hpp"

namespace tinyfaas {

namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace {

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
    switch (invoker.invokeDetached(std::move(invocation))) {
      case CallStatus::ok: co_return textResponse(request, http::status::accepted, "");
      case CallStatus::notFound:
        co_return textResponse(request, http::status::not_found, "function " + std::string(target) + " not found");
      default:
        co_return textResponse(request, http::status::service_unavailable, "too many asynchronous calls in flight");
    }
  }

  CallResult result = co_await invoker.invoke(std::move(invocation));
  // The platform's own answers (not found, timeout, ...) have no code.
  if (result.code == 0 && result.status != CallStatus::ok)
    co_return textResponse(request, toHttpStatus(result.status), result.body);
  HttpResponse response{result.code == 0 ? http::status::ok : static_cast<http::status>(result.code),
                        request.version()};
  response.keep_alive(request.keep_alive());
  for (auto& [name, value] : result.headers) response.insert(name, value);
  // These statuses have no body in HTTP (Beast refuses to frame one).
  if (result.code == 204 || result.code == 304) result.body.clear();
  response.body() = std::move(result.body);
  response.prepare_payload();
  co_return response;
}

boost::system::result<std::unique_ptr<HttpServer>, std::string> startHttpFrontend(asio::any_io_executor executor,
                                                                                  Invoker& invoker,
                                                                                  HttpServerOptions options) {
  return HttpServer::create(std::move(executor), std::move(options),
                            [&invoker](HttpRequest& request) { return handleFunctionRequest(invoker, request); });
}

}  // namespace tinyfaas
