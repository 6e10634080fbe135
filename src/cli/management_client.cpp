#include "cli/management_client.hpp"

#include <nlohmann/json.hpp>

#include "cli/http_client.hpp"
#include "cli/reply_text.hpp"

namespace tinyfaas::cli {

Result<ManagementClient> ManagementClient::create(std::string_view baseUrl, std::string token) {
  auto url = parseHttpUrl(baseUrl);
  if (!url) return failure(url.error());
  std::string display(baseUrl);
  while (display.ends_with('/')) display.pop_back();
  return ManagementClient(std::move(*url), std::move(display), std::move(token));
}

Result<std::string> ManagementClient::get(std::string_view pathAndQuery, std::chrono::milliseconds timeout) const {
  return send(false, pathAndQuery, {}, {}, timeout);
}

Result<std::string> ManagementClient::post(std::string_view path, const nlohmann::json& body,
                                           std::chrono::milliseconds timeout) const {
  return send(true, path, body.dump(), "application/json", timeout);
}

Result<std::string> ManagementClient::post(std::string_view path, std::chrono::milliseconds timeout) const {
  return send(true, path, {}, {}, timeout);
}

Result<void> ManagementClient::follow(std::string_view pathAndQuery,
                                      std::function<void(std::string_view)> onText) const {
  auto done = send(false, pathAndQuery, {}, {}, kManagementTimeout, std::move(onText));
  if (!done) return failure(done.error());
  return {};
}

Result<std::string> ManagementClient::send(bool post, std::string_view path, std::string body,
                                           std::string_view contentType, std::chrono::milliseconds timeout,
                                           std::function<void(std::string_view)> onBody) const {
  HttpRequest request;
  request.method = post ? HttpMethod::post : HttpMethod::get;
  request.host = url_.host;
  request.port = url_.port;
  request.target = url_.basePath + std::string(path);
  request.contentType = std::string(contentType);
  request.body = std::move(body);
  request.timeout = timeout;
  request.onBody = std::move(onBody);
  if (!token_.empty()) request.headers.emplace_back("Authorization", "Bearer " + token_);

  auto response = sendHttpRequest(request);
  if (!response) {
    const HttpError& error = response.error();
    switch (error.kind) {
      case HttpError::Kind::resolve:
        return failure("cannot reach the management API at " + display_ + ": " + error.detail);
      case HttpError::Kind::connect:
        return failure("cannot reach the management API at " + display_ + ": " + error.detail +
                       " (is `tinyfaas serve` running?)");
      case HttpError::Kind::timeout:
        return failure("the management API at " + display_ + " did not answer: " + error.detail);
      case HttpError::Kind::exchange:
      case HttpError::Kind::tooLarge:
        return failure("bad reply from the management API at " + display_ + ": " + error.detail);
    }
  }
  // Every 2xx is success; the daemon answers 200, but a proxy in front of it
  // may not, and the body is what the operator wants to see either way.
  if (response->status < 200 || response->status > 299) {
    return failure(statusLine(response->status, response->reason, response->body));
  }
  return success(std::move(response->body));
}

}  // namespace tinyfaas::cli
