#pragma once
// The operator's views of the node: the Prometheus page of GET /metrics and
// the JSON of GET /functions, built from the manager's function status and
// the data plane's call counters.

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "manager/function_manager.hpp"
#include "metrics/call_metrics.hpp"
#include "metrics/process_stats.hpp"

namespace tinyfaas {

// Every deployed function gets its series (zeros before its first call);
// removed functions and unknown names get none.
// `standbys`: the process backend's standbys up, per runtime that starts them.
std::string renderMetricsPage(const std::vector<FunctionStatus>& functions, const metrics::CallSnapshot& calls,
                              const metrics::ProcessStats& process, const metrics::StartTime& started,
                              const std::map<Runtime, std::size_t>& standbys = {});

// One function as GET /functions lists it; `calls` is null before its first call.
nlohmann::json functionJson(const FunctionStatus& function, const metrics::FunctionStats* calls);

// A quarantined function as GET /functions lists it to an admin:
// {"name", "state": "quarantined", "reason", "owner"}.
nlohmann::json quarantinedJson(const QuarantinedFunction& function);

}  // namespace tinyfaas
