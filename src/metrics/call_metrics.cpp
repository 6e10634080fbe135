#include "metrics/call_metrics.hpp"

#include "proxy/router.hpp"
#include "util/run_on.hpp"

namespace tinyfaas::metrics {

std::string_view toString(Protocol protocol) {
  switch (protocol) {
    case Protocol::http: return "http";
    case Protocol::coap: return "coap";
    case Protocol::grpc: return "grpc";
    case Protocol::mqtt: return "mqtt";
  }
  return "unknown";
}

std::string_view errorKind(CallStatus status) {
  switch (status) {
    case CallStatus::ok: return "";
    case CallStatus::notFound: return "not_found";
    case CallStatus::functionError: return "function_error";
    case CallStatus::unavailable: return "unavailable";
    case CallStatus::timeout: return "timeout";
    case CallStatus::overloaded: return "overload";
    case CallStatus::payloadTooLarge: return "payload_too_large";
  }
  return "unknown";
}

std::uint64_t FunctionStats::calls() const {
  std::uint64_t sum = 0;
  for (const auto& p : protocols) sum += p.calls;
  return sum;
}

std::uint64_t FunctionStats::errors() const {
  std::uint64_t sum = 0;
  for (const auto& p : protocols) sum += p.errors();
  return sum;
}

LatencyHistogram FunctionStats::latency() const {
  LatencyHistogram all;
  for (const auto& p : protocols) all.merge(p.latency);
  return all;
}

CallMetrics::CallMetrics(boost::asio::any_io_executor dataPlane, const Router& router)
    : dataPlane_(std::move(dataPlane)), router_(router) {}

FunctionStats* CallMetrics::find(std::string_view function) {
  if (auto it = functions_.find(function); it != functions_.end()) return &it->second;
  if (!router_.contains(function)) return nullptr;
  return &functions_.try_emplace(std::string(function)).first->second;
}

CallSnapshot CallMetrics::copyAndPrune() {
  CallSnapshot snapshot;
  snapshot.unknownFunctionCalls = unknown_;
  for (auto it = functions_.begin(); it != functions_.end();) {
    snapshot.functions.emplace(it->first, it->second);
    bool busy = false;
    for (const auto& p : it->second.protocols) busy = busy || p.inFlight > 0;
    if (!busy && !router_.contains(it->first)) {
      it = functions_.erase(it);
    } else {
      ++it;
    }
  }
  return snapshot;
}

boost::asio::awaitable<CallSnapshot> CallMetrics::snapshot() {
  auto copy = [this] { return copyAndPrune(); };
  co_return co_await runOn(dataPlane_, copy);
}

}  // namespace tinyfaas::metrics
