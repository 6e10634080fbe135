#include "manager/management_api.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <spdlog/spdlog.h>

#include "core/function_name.hpp"
#include "manager/status_views.hpp"
#include "metrics/prometheus_text.hpp"

namespace tinyfaas {

namespace asio = boost::asio;
namespace http = boost::beast::http;

ManagementApi::ManagementApi(FunctionManager& manager, LogStore& logs, asio::any_io_executor downloadWorker,
                             ManagementApiOptions options)
    : manager_(manager), logs_(logs), downloadWorker_(std::move(downloadWorker)), options_(options) {}

asio::awaitable<HttpResponse> ManagementApi::handle(HttpRequest& request) {
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
    co_return co_await upload(request);
  }
  if (path == "/uploadURL") {
    if (auto wrong = requireMethod(http::verb::post)) co_return *wrong;
    co_return co_await uploadUrl(request);
  }
  if (path == "/delete") {
    if (auto wrong = requireMethod(http::verb::post)) co_return *wrong;
    auto name = parseDelete(request.body());
    if (!name) co_return textResponse(request, http::status::bad_request, name.error().message);
    if (!co_await manager_.remove(*name))
      co_return textResponse(request, http::status::not_found, "function " + *name + " not found");
    co_return textResponse(request, http::status::ok, "deleted " + *name);
  }
  if (path == "/list") {
    if (auto wrong = requireMethod(http::verb::get)) co_return *wrong;
    std::string body;
    const auto names = manager_.names();
    for (const auto& name : names) body += name + "\n";
    co_return textResponse(request, http::status::ok, body);
  }
  if (path == "/wipe") {
    if (auto wrong = requireMethod(http::verb::post)) co_return *wrong;
    co_await manager_.removeAll();
    co_return textResponse(request, http::status::ok, "");
  }
  if (path == "/logs") {
    if (auto wrong = requireMethod(http::verb::get)) co_return *wrong;
    auto params = target->params();
    auto name = params.find("name");
    if (name == params.end() || (*name).value.empty()) co_return textResponse(request, http::status::ok, logs_.readAll());
    const std::string function = (*name).value;
    if (!isValidFunctionName(function))
      co_return textResponse(request, http::status::bad_request, "function name must be letters and digits");
    auto names = manager_.names();
    const std::string logs = logs_.read(function);
    if (logs.empty() && std::find(names.begin(), names.end(), function) == names.end())
      co_return textResponse(request, http::status::not_found, "function " + function + " not found");
    co_return textResponse(request, http::status::ok, logs);
  }
  if (path == "/metrics") {
    if (auto wrong = requireMethod(http::verb::get)) co_return *wrong;
    co_return co_await metricsPage(request);
  }
  if (path == "/functions" || path.starts_with("/functions/")) {
    if (auto wrong = requireMethod(http::verb::get)) co_return *wrong;
    std::string_view name = path;
    name.remove_prefix(std::min(name.size(), std::string_view("/functions/").size()));
    co_return co_await functions(request, name);
  }
  co_return textResponse(request, http::status::not_found,
                         "unknown path " + path + " (try /upload, /delete, /list, /wipe, /logs, /functions, /metrics)");
}

asio::awaitable<metrics::CallSnapshot> ManagementApi::callSnapshot() {
  if (!options_.calls) co_return metrics::CallSnapshot{};
  co_return co_await options_.calls->snapshot();
}

asio::awaitable<HttpResponse> ManagementApi::metricsPage(const HttpRequest& request) {
  const auto calls = co_await callSnapshot();
  auto response = textResponse(request, http::status::ok,
                               renderMetricsPage(manager_.status(), calls, metrics::readProcessStats(), options_.started));
  response.set(http::field::content_type, metrics::kPrometheusContentType);
  co_return response;
}

asio::awaitable<HttpResponse> ManagementApi::functions(const HttpRequest& request, std::string_view name) {
  auto json = [&](http::status status, const nlohmann::json& body) {
    auto response = textResponse(request, status, body.dump() + "\n");
    response.set(http::field::content_type, "application/json");
    return response;
  };
  if (!name.empty() && !isValidFunctionName(name))
    co_return json(http::status::bad_request, {{"error", "function name must be letters and digits"}});
  const auto calls = co_await callSnapshot();
  // Read after the snapshot: the status is then as fresh as the counters.
  const auto all = manager_.status();
  if (name.empty()) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& function : all) list.push_back(functionJson(function, calls.find(function.name)));
    co_return json(http::status::ok, list);
  }
  for (const auto& function : all) {
    if (function.name == name) co_return json(http::status::ok, functionJson(function, calls.find(function.name)));
  }
  co_return json(http::status::not_found, {{"error", "function " + std::string(name) + " not found"}});
}

asio::awaitable<HttpResponse> ManagementApi::upload(HttpRequest& request) {
  auto parsed = parseUpload(request.body());
  // The body can be tens of MB of base64; it is not needed past this point.
  request.body().clear();
  request.body().shrink_to_fit();
  if (!parsed) co_return textResponse(request, http::status::bad_request, parsed.error().message);
  spdlog::info("deploying {} ({}, {} bytes zipped)", parsed->config.name, toString(parsed->config.runtime),
               parsed->zip.size());
  co_return co_await deploy(request, std::move(*parsed));
}

asio::awaitable<HttpResponse> ManagementApi::uploadUrl(HttpRequest& request) {
  auto parsed = parseUploadUrl(request.body());
  if (!parsed) co_return textResponse(request, http::status::bad_request, parsed.error().message);
  spdlog::info("deploying {} ({}) from {}", parsed->config.name, toString(parsed->config.runtime), parsed->url);
  auto zip = co_await fetchUrl(downloadWorker_, parsed->url, options_.downloads);
  // The URL is the uploader's: an unreachable or wrong one is a bad request.
  if (!zip) co_return textResponse(request, http::status::bad_request, zip.error().message);
  parsed->zip = std::move(*zip);
  co_return co_await deploy(request, std::move(*parsed));
}

asio::awaitable<HttpResponse> ManagementApi::deploy(const HttpRequest& request, UploadRequest upload) {
  const std::string name = upload.config.name;
  auto deployed =
      co_await manager_.deploy(std::move(upload.config), std::move(upload.zip), std::move(upload.subfolder));
  if (!deployed) {
    co_return textResponse(request,
                           deployed.error().userError ? http::status::bad_request : http::status::internal_server_error,
                           deployed.error().message);
  }
  co_return endpointsFor(request, name);
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
  if (options_.ports.coap >= 0) body += "coap://" + host + ":" + std::to_string(options_.ports.coap) + "/" + name + "\n";
  if (options_.ports.http >= 0) body += "http://" + host + ":" + std::to_string(options_.ports.http) + "/" + name + "\n";
  if (options_.ports.grpc >= 0) body += "grpc://" + host + ":" + std::to_string(options_.ports.grpc) + "/" + name + "\n";
  return textResponse(request, http::status::ok, body);
}

}  // namespace tinyfaas
