#pragma once
// Call counters and latency per function and protocol. Kept by the data-plane
// thread that runs the calls, with plain counters (no lock, no atomic per
// call); other threads read them through snapshot(), which copies them on
// that thread.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "core/invocation.hpp"
#include "metrics/latency_histogram.hpp"

namespace tinyfaas {
class Router;
}

namespace tinyfaas::metrics {

// mqtt: calls made for messages of the function's MQTT triggers.
enum class Protocol : std::uint8_t { http, coap, grpc, mqtt };
inline constexpr std::array<Protocol, 4> kProtocols = {Protocol::http, Protocol::coap, Protocol::grpc, Protocol::mqtt};
std::string_view toString(Protocol protocol);

inline constexpr std::size_t kCallStatusCount = static_cast<std::size_t>(CallStatus::payloadTooLarge) + 1;

// The `kind` label of an error: a CallStatus other than ok.
std::string_view errorKind(CallStatus status);

struct ProtocolStats {
  std::uint64_t calls = 0;  // finished calls, whatever their outcome
  std::array<std::uint64_t, kCallStatusCount> outcomes{};
  std::uint64_t inFlight = 0;
  std::uint64_t asyncAccepted = 0;  // X-tinyFaaS-Async calls started
  LatencyHistogram latency;

  std::uint64_t errors() const { return calls - outcomes[static_cast<std::size_t>(CallStatus::ok)]; }
};

struct FunctionStats {
  std::array<ProtocolStats, kProtocols.size()> protocols;

  ProtocolStats& of(Protocol protocol) { return protocols[static_cast<std::size_t>(protocol)]; }
  const ProtocolStats& of(Protocol protocol) const { return protocols[static_cast<std::size_t>(protocol)]; }
  std::uint64_t calls() const;
  std::uint64_t errors() const;
  LatencyHistogram latency() const;  // all protocols together
};

struct CallSnapshot {
  std::map<std::string, FunctionStats, std::less<>> functions;
  // Calls to names no function has: counted per protocol only, so that
  // clients asking for random names cannot grow the series without bound.
  std::array<std::uint64_t, kProtocols.size()> unknownFunctionCalls{};

  // Null for a function without calls since the daemon started.
  const FunctionStats* find(std::string_view function) const {
    auto it = functions.find(function);
    return it == functions.end() ? nullptr : &it->second;
  }
};

// Lives on the data-plane thread (the one running `executor`): every method
// but snapshot() must be called there.
class CallMetrics {
 public:
  CallMetrics(boost::asio::any_io_executor dataPlane, const Router& router);

  // The stats of a deployed function, created on its first call; null for a
  // name the router does not know. The reference stays valid while the
  // function has calls in flight.
  FunctionStats* find(std::string_view function);
  void countUnknown(Protocol protocol) { ++unknown_[static_cast<std::size_t>(protocol)]; }

  // Callable from any thread; completes on the caller's executor. Drops the
  // stats of functions that are gone and have nothing in flight.
  boost::asio::awaitable<CallSnapshot> snapshot();

 private:
  CallSnapshot copyAndPrune();

  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  boost::asio::any_io_executor dataPlane_;
  const Router& router_;
  // Node-based: references to values survive inserting other functions.
  std::unordered_map<std::string, FunctionStats, Hash, std::equal_to<>> functions_;
  std::array<std::uint64_t, kProtocols.size()> unknown_{};
};

}  // namespace tinyfaas::metrics
