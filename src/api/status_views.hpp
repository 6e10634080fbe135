#pragma once
// The operator's views of the node: the Prometheus page of GET /metrics and
// the JSON of GET /functions, built from the manager's function status and
// the data plane's call counters and the asynchronous call queue's counts.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "async_calls/call_store.hpp"
#include "core/mqtt_trigger.hpp"
#include "manager/function_manager.hpp"
#include "metrics/call_metrics.hpp"
#include "metrics/process_stats.hpp"

namespace tinyfaas {

// Every deployed function gets its series (zeros before its first call);
// removed functions and unknown names get none.
// `standbys`: the backend's standbys up, per runtime that starts them.
std::string renderMetricsPage(const std::vector<FunctionStatus>& functions, const metrics::CallSnapshot& calls,
                              const metrics::ProcessStats& process, const metrics::StartTime& started,
                              const async_calls::StatsByFunction& async = {},
                              const std::map<Runtime, std::size_t>& standbys = {}, const MqttState& mqtt = {});

// RFC 3339 in UTC, to the second.
std::string isoTime(std::chrono::system_clock::time_point t);

// One function as GET /functions lists it; `calls` is null before its first
// call; `mqtt` tells the state of its triggers.
nlohmann::json functionJson(const FunctionStatus& function, const metrics::FunctionStats* calls,
                            const MqttState& mqtt = {});

// How GET /calls lists an asynchronous call: {"id", "state", "failures",
// "accepted", "finished", "code", "reason"}.
nlohmann::json listedCallJson(const async_calls::ListedCall& call);
// queued, running, done or failed; nullopt for anything else.
std::optional<AsyncCallRecord::State> parseCallState(std::string_view text);

// A quarantined function as GET /functions lists it to an admin:
// {"name", "state": "quarantined", "reason", "owner"}.
nlohmann::json quarantinedJson(const QuarantinedFunction& function);

}  // namespace tinyfaas
