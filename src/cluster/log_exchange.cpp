#include "cluster/log_exchange.hpp"

#include <boost/asio/post.hpp>
#include <nats/nats.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "util/run_on.hpp"

namespace tinyfaas::cluster {

namespace asio = boost::asio;
using nlohmann::json;

namespace {

constexpr std::string_view kLogsPrefix = "tinyfaas.logs.";
// An answer stays below NATS' max_payload (1 MiB by default): the newest lines.
constexpr std::size_t kMaxAnswerBytes = 900 * 1024;
constexpr int kAnswerTimeoutMs = 1000;

using SharedPtr = std::shared_ptr<void>;

void releaseClosure(void* closure) { delete static_cast<SharedPtr*>(closure); }

std::int64_t toMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

struct LogExchange::Shared {
  asio::any_io_executor management;
  natsConnection* connection = nullptr;
  LogStore* logs = nullptr;  // null once the exchange is gone
  natsSubscription* subscription = nullptr;

  void answer(const std::string& reply, const std::string& request) {
    if (!logs) return;
    const json r = json::parse(request, nullptr, /*allow_exceptions=*/false);
    std::string lines;
    if (r.is_object()) {
      const Scope scope{r.value("tenant", ""), r.value("admin", false)};
      LogQuery query;
      if (r.contains("tail") && r["tail"].is_number_unsigned()) query.tail = r["tail"].get<std::size_t>();
      if (r.contains("since_ms") && r["since_ms"].is_number_integer())
        query.since =
            std::chrono::system_clock::time_point(std::chrono::milliseconds(r["since_ms"].get<std::int64_t>()));
      lines = logs->read(r.value("name", ""), scope, query);
    }
    if (lines.size() > kMaxAnswerBytes) lines.erase(0, lines.find('\n', lines.size() - kMaxAnswerBytes) + 1);
    natsConnection_Publish(connection, reply.c_str(), lines.data(), static_cast<int>(lines.size()));
  }
};

LogExchange::LogExchange(asio::any_io_executor management, asio::any_io_executor io, natsConnection* connection,
                         std::string nodeName, LogStore& logs)
    : io_(std::move(io)), connection_(connection), shared_(std::make_shared<Shared>()) {
  shared_->management = std::move(management);
  shared_->connection = connection;
  shared_->logs = &logs;
  auto onRequest = [](natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto shared = std::static_pointer_cast<Shared>(*static_cast<SharedPtr*>(closure));
    const char* reply = natsMsg_GetReply(msg);
    std::string replyTo = reply ? reply : "";
    std::string request(natsMsg_GetData(msg) ? natsMsg_GetData(msg) : "",
                        static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
    natsMsg_Destroy(msg);
    if (replyTo.empty()) return;
    asio::post(shared->management, [shared, replyTo = std::move(replyTo), request = std::move(request)] {
      shared->answer(replyTo, request);
    });
  };
  const std::string subject = std::string(kLogsPrefix) + nodeName;
  auto* closure = new SharedPtr(shared_);
  if (natsConnection_Subscribe(&shared_->subscription, connection_, subject.c_str(), onRequest, closure) != NATS_OK) {
    spdlog::warn("cluster: cannot subscribe to {}: other nodes' /logs lack this node's lines", subject);
    delete closure;
    shared_->subscription = nullptr;
  } else {
    natsSubscription_SetOnCompleteCB(shared_->subscription, releaseClosure, closure);
  }
}

LogExchange::~LogExchange() {
  if (shared_->subscription) {
    natsSubscription_Unsubscribe(shared_->subscription);
    natsSubscription_Destroy(shared_->subscription);
  }
  shared_->logs = nullptr;
}

asio::awaitable<std::string> LogExchange::gather(std::string function, Scope scope, LogQuery query,
                                                 std::vector<std::string> nodes) {
  json request{{"name", function}, {"tenant", scope.tenant}, {"admin", scope.admin}};
  if (query.tail) request["tail"] = *query.tail;
  if (query.since) request["since_ms"] = toMs(*query.since);
  const std::string body = request.dump();
  auto ask = [this, &body, &nodes]() {
    std::string lines;
    for (const auto& node : nodes) {
      natsMsg* reply = nullptr;
      const std::string subject = std::string(kLogsPrefix) + node;
      if (natsConnection_Request(&reply, connection_, subject.c_str(), body.data(), static_cast<int>(body.size()),
                                 kAnswerTimeoutMs) != NATS_OK)
        continue;
      if (!natsMsg_IsNoResponders(reply) && natsMsg_GetData(reply))
        lines.append(natsMsg_GetData(reply), static_cast<std::size_t>(natsMsg_GetDataLength(reply)));
      natsMsg_Destroy(reply);
    }
    return lines;
  };
  co_return co_await runOn(io_, ask);
}

}  // namespace tinyfaas::cluster
