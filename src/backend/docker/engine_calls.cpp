#include "backend/docker/engine_calls.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace tinyfaas::docker {

namespace http = boost::beast::http;

boost::asio::awaitable<void> removeContainer(EngineClient& client, const std::string& id) {
  RequestOptions options;
  options.timeout = std::chrono::seconds(30);
  auto removed = co_await client.request(http::verb::delete_, "/containers/" + id + "?force=1&v=1", {}, options);
  // 204 removed; 404 already gone; 409 removal already in progress: all fine for teardown.
  if (!removed) {
    spdlog::warn("cannot remove container {}: {}", id, removed.error());
  } else if (!removed->is({204, 404, 409})) {
    spdlog::warn("cannot remove container {}: {}", id, removed->message());
  }
}

std::string labelFilter(const std::string& label) { return nlohmann::json{{"label", {label}}}.dump(); }

std::string describeExit(std::int64_t code) {
  std::string text = "exited with status " + std::to_string(code);
  if (code > 128 && code < 128 + 65) text += " (killed by signal " + std::to_string(code - 128) + ")";
  return text;
}

}  // namespace tinyfaas::docker
