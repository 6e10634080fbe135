#include "api/status_views.hpp"

#include <array>
#include <cmath>
#include <ctime>
#include <limits>
#include <tuple>

#include <nlohmann/json.hpp>

#include "manager/function_config_json.hpp"
#include "metrics/prometheus_text.hpp"

namespace tinyfaas {

using metrics::FunctionStats;
using metrics::LatencyHistogram;
using metrics::Protocol;

namespace {

double seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// The error kinds a function's call can end in (not_found has no function).
constexpr CallStatus kErrorStatuses[] = {CallStatus::functionError, CallStatus::unavailable, CallStatus::timeout,
                                         CallStatus::overloaded, CallStatus::payloadTooLarge};

void writeCallFamilies(metrics::PrometheusText& out, const std::vector<FunctionStatus>& functions,
                       const metrics::CallSnapshot& calls) {
  static const FunctionStats kNoCalls;
  auto each = [&](auto write) {
    for (const auto& function : functions) {
      const FunctionStats* stats = calls.find(function.name);
      for (Protocol protocol : metrics::kProtocols)
        write(function.name, metrics::toString(protocol), (stats ? *stats : kNoCalls).of(protocol));
    }
  };

  out.family("tinyfaas_calls_total", "counter", "Finished function calls, whatever their outcome.");
  each([&](std::string_view name, std::string_view protocol, const metrics::ProtocolStats& s) {
    out.sample("tinyfaas_calls_total", {{"function", name}, {"protocol", protocol}}, s.calls);
  });

  out.family("tinyfaas_call_errors_total", "counter",
             "Function calls that failed, by kind: function_error (the function failed), unavailable (no "
             "instance up), timeout, overload, payload_too_large.");
  each([&](std::string_view name, std::string_view protocol, const metrics::ProtocolStats& s) {
    for (CallStatus status : kErrorStatuses) {
      out.sample("tinyfaas_call_errors_total",
                 {{"function", name}, {"protocol", protocol}, {"kind", metrics::errorKind(status)}},
                 s.outcomes[static_cast<std::size_t>(status)]);
    }
  });

  out.family("tinyfaas_unknown_function_calls_total", "counter",
             "Calls to a name no function has (answered not found); no function label, so random names add "
             "no series.");
  for (Protocol protocol : metrics::kProtocols) {
    out.sample("tinyfaas_unknown_function_calls_total", {{"protocol", metrics::toString(protocol)}},
               calls.unknownFunctionCalls[static_cast<std::size_t>(protocol)]);
  }

  out.family("tinyfaas_call_duration_seconds", "histogram",
             "Time from a frontend handing a call to the proxy until its result.");
  each([&](std::string_view name, std::string_view protocol, const metrics::ProtocolStats& s) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < LatencyHistogram::kBuckets; ++i) {
      cumulative += s.latency.buckets()[i];
      const double le = i < LatencyHistogram::kBoundsMicros.size()
                            ? static_cast<double>(LatencyHistogram::kBoundsMicros[i]) / 1e6
                            : std::numeric_limits<double>::infinity();
      out.bucket("tinyfaas_call_duration_seconds_bucket", {{"function", name}, {"protocol", protocol}}, le, cumulative);
    }
    out.sample("tinyfaas_call_duration_seconds_sum", {{"function", name}, {"protocol", protocol}},
               static_cast<double>(s.latency.sumMicros()) / 1e6);
    out.sample("tinyfaas_call_duration_seconds_count", {{"function", name}, {"protocol", protocol}}, s.latency.count());
  });

  out.family("tinyfaas_calls_in_flight", "gauge", "Function calls running now.");
  each([&](std::string_view name, std::string_view protocol, const metrics::ProtocolStats& s) {
    out.sample("tinyfaas_calls_in_flight", {{"function", name}, {"protocol", protocol}}, s.inFlight);
  });

  out.family("tinyfaas_async_calls_total", "counter",
             "Asynchronous calls accepted (X-tinyFaaS-Async, CoAP No-Response): stored, answered 202.");
  each([&](std::string_view name, std::string_view protocol, const metrics::ProtocolStats& s) {
    out.sample("tinyfaas_async_calls_total", {{"function", name}, {"protocol", protocol}}, s.asyncAccepted);
  });
}

// Every deployed function gets its series, zeros included; the queue's
// counts of functions deleted meanwhile are left out.
// Only with --mqtt; the counters of functions with triggers.
void writeMqttFamilies(metrics::PrometheusText& out, const std::vector<FunctionStatus>& functions,
                       const MqttState& mqtt) {
  out.family("tinyfaas_mqtt_connected", "gauge", "1 while the node's session with the MQTT broker (--mqtt) is up.");
  out.sample("tinyfaas_mqtt_connected", {}, std::uint64_t{mqtt.connected});
  out.family("tinyfaas_mqtt_subscriptions", "gauge", "Topic filters the broker acknowledged in this session.");
  out.sample("tinyfaas_mqtt_subscriptions", {}, static_cast<std::uint64_t>(mqtt.subscribed.size()));
  const std::array<std::tuple<const char*, const char*, std::uint64_t MqttFunctionCounters::*>, 4> families = {{
      {"tinyfaas_mqtt_messages_total", "MQTT messages that called the function.", &MqttFunctionCounters::messages},
      {"tinyfaas_mqtt_published_total", "Replies to MQTT messages published (reply_topic, MQTT 5 response topic).",
       &MqttFunctionCounters::published},
      {"tinyfaas_mqtt_failed_total", "MQTT messages whose call failed (nothing published), or whose reply was not.",
       &MqttFunctionCounters::failed},
      {"tinyfaas_mqtt_dropped_total",
       "MQTT messages not run: QoS 0 beyond the in-flight limit, above --max-body-bytes, or a topic with control "
       "characters.",
       &MqttFunctionCounters::dropped},
  }};
  for (const auto& family : families) {
    out.family(std::get<0>(family), "counter", std::get<1>(family));
    for (const auto& f : functions) {
      if (f.triggers.empty()) continue;
      auto it = mqtt.functions.find(f.name);
      const MqttFunctionCounters counters = it == mqtt.functions.end() ? MqttFunctionCounters{} : it->second;
      out.sample(std::get<0>(family), {{"function", f.name}}, counters.*std::get<2>(family));
    }
  }
}

// Each trigger with what the node's session does with it: subscribed,
// subscribing, disconnected (with the broker's last error), or inactive
// on a node without --mqtt.
nlohmann::json triggerStatesJson(const FunctionStatus& function, const MqttState& mqtt) {
  nlohmann::json out = triggersJson(function.triggers);
  for (auto& trigger : out) {
    const std::string topic = trigger["topic"];
    if (!mqtt.enabled) {
      trigger["state"] = "inactive";
      trigger["reason"] = "this node runs without --mqtt";
    } else if (!mqtt.connected) {
      trigger["state"] = "disconnected";
      trigger["reason"] = mqtt.lastError.empty() ? nlohmann::json(nullptr) : nlohmann::json(mqtt.lastError);
    } else {
      trigger["state"] = mqtt.subscribed.contains(topic) ? "subscribed" : "subscribing";
      trigger["reason"] = nullptr;
    }
  }
  return out;
}

void writeAsyncFamilies(metrics::PrometheusText& out, const std::vector<FunctionStatus>& functions,
                        const async_calls::StatsByFunction& async) {
  static const async_calls::FunctionCallStats kNone;
  auto of = [&async](const std::string& name) -> const async_calls::FunctionCallStats& {
    auto it = async.find(name);
    return it == async.end() ? kNone : it->second;
  };
  out.family("tinyfaas_async_calls_queued", "gauge", "Asynchronous calls stored and not finished (queued or running).");
  for (const auto& f : functions) out.sample("tinyfaas_async_calls_queued", {{"function", f.name}}, of(f.name).queued);
  out.family("tinyfaas_async_calls_dead_lettered_total", "counter",
             "Asynchronous calls that failed after their last retry, since the daemon started.");
  for (const auto& f : functions)
    out.sample("tinyfaas_async_calls_dead_lettered_total", {{"function", f.name}}, of(f.name).deadLettered);
  out.family("tinyfaas_async_calls_dead_letters", "gauge",
             "Asynchronous calls that failed for good and are still listed (GET /calls?state=failed).");
  for (const auto& f : functions)
    out.sample("tinyfaas_async_calls_dead_letters", {{"function", f.name}}, of(f.name).deadLetters);
}

void writeFunctionFamilies(metrics::PrometheusText& out, const std::vector<FunctionStatus>& functions) {
  out.family("tinyfaas_functions", "gauge", "Deployed functions.");
  out.sample("tinyfaas_functions", {}, static_cast<std::uint64_t>(functions.size()));
  out.family("tinyfaas_function_instances_desired", "gauge",
             "Handler instances a function should run now: its threads, or what scaling wants.");
  for (const auto& f : functions)
    out.sample("tinyfaas_function_instances_desired", {{"function", f.name}}, static_cast<std::uint64_t>(f.desired));
  out.family("tinyfaas_function_instances_up", "gauge", "Handler instances that are healthy and get calls.");
  for (const auto& f : functions)
    out.sample("tinyfaas_function_instances_up", {{"function", f.name}}, static_cast<std::uint64_t>(f.healthy));
  out.family("tinyfaas_function_restarts_total", "counter",
             "Restart attempts of instances that died, since the function's first deploy.");
  for (const auto& f : functions) out.sample("tinyfaas_function_restarts_total", {{"function", f.name}}, f.restarts);
  out.family("tinyfaas_function_crash_loop", "gauge",
             "1 while an instance of the function keeps failing to stay up and waits in restart backoff.");
  for (const auto& f : functions)
    out.sample("tinyfaas_function_crash_loop", {{"function", f.name}}, static_cast<std::uint64_t>(f.crashLoop));
  out.family("tinyfaas_function_memory_bytes", "gauge",
             "Memory the function's healthy instances use (PSS of their processes, sandbox helpers included), "
             "measured every few seconds.");
  for (const auto& f : functions) {
    if (f.memoryBytes) out.sample("tinyfaas_function_memory_bytes", {{"function", f.name}}, *f.memoryBytes);
  }
}

void writeProcessFamilies(metrics::PrometheusText& out, const metrics::ProcessStats& process,
                          const metrics::StartTime& started) {
  out.family("process_resident_memory_bytes", "gauge", "Resident memory of the daemon (not of its handlers).");
  out.sample("process_resident_memory_bytes", {}, process.residentBytes);
  out.family("process_open_fds", "gauge", "Open file descriptors of the daemon.");
  out.sample("process_open_fds", {}, process.openFds);
  out.family("process_start_time_seconds", "gauge", "When the daemon started, in seconds since the Unix epoch.");
  out.sample("process_start_time_seconds", {}, std::floor(seconds(started.wall)));
  out.family("tinyfaas_open_connections", "gauge",
             "Established TCP connections of the daemon: HTTP, gRPC and management clients.");
  out.sample("tinyfaas_open_connections", {}, process.tcpConnections);
  out.family("tinyfaas_uptime_seconds", "gauge", "Seconds since the daemon started.");
  out.sample("tinyfaas_uptime_seconds", {},
             std::chrono::duration<double>(std::chrono::steady_clock::now() - started.steady).count());
}

nlohmann::json millisOrNull(double quantileSeconds) {
  if (quantileSeconds < 0) return nullptr;
  return std::round(quantileSeconds * 1e6) / 1e3;
}

nlohmann::json scalingJson(const ScalingPolicy& policy) {
  if (!policy.dynamic) return nullptr;
  return {{"min_instances", policy.minInstances},
          {"max_instances", policy.maxInstances},
          {"target_in_flight", policy.targetInFlight},
          {"idle_seconds", static_cast<double>(policy.idleTime.count()) / 1000}};
}

}  // namespace

std::string isoTime(std::chrono::system_clock::time_point t) {
  const std::time_t time = std::chrono::system_clock::to_time_t(t);
  std::tm utc{};
  gmtime_r(&time, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

std::string renderMetricsPage(const std::vector<FunctionStatus>& functions, const metrics::CallSnapshot& calls,
                              const metrics::ProcessStats& process, const metrics::StartTime& started,
                              const async_calls::StatsByFunction& async, const std::map<Runtime, std::size_t>& standbys,
                              const MqttState& mqtt) {
  metrics::PrometheusText out;
  writeCallFamilies(out, functions, calls);
  writeAsyncFamilies(out, functions, async);
  if (mqtt.enabled) writeMqttFamilies(out, functions, mqtt);
  writeFunctionFamilies(out, functions);
  out.family("tinyfaas_standby_handlers", "gauge",
             "Process backend: handlers up with no function yet, waiting to take over a new instance (binary's "
             "also start go functions).");
  for (const auto& [runtime, count] : standbys)
    out.sample("tinyfaas_standby_handlers", {{"runtime", std::string(toString(runtime))}},
               static_cast<std::uint64_t>(count));
  writeProcessFamilies(out, process, started);
  return out.text();
}

namespace {

constexpr std::array<std::string_view, 4> kCallStates = {"queued", "running", "done", "failed"};

nlohmann::json millisTime(async_calls::Millis millis) {
  return isoTime(std::chrono::system_clock::time_point(std::chrono::milliseconds(millis)));
}

}  // namespace

std::optional<AsyncCallRecord::State> parseCallState(std::string_view text) {
  for (std::size_t i = 0; i < kCallStates.size(); ++i) {
    if (kCallStates[i] == text) return static_cast<AsyncCallRecord::State>(i);
  }
  return std::nullopt;
}

nlohmann::json listedCallJson(const async_calls::ListedCall& call) {
  return {{"id", call.id},
          {"state", kCallStates[static_cast<std::size_t>(call.state)]},
          {"failures", call.failures},
          {"accepted", millisTime(call.accepted)},
          {"finished", call.finished ? millisTime(*call.finished) : nlohmann::json(nullptr)},
          {"code", call.code == 0 ? nlohmann::json(nullptr) : nlohmann::json(call.code)},
          {"reason", call.reason.empty() ? nlohmann::json(nullptr) : nlohmann::json(call.reason)}};
}

nlohmann::json functionJson(const FunctionStatus& function, const metrics::FunctionStats* calls,
                            const MqttState& mqtt) {
  static const FunctionStats kNoCalls;
  const FunctionStats& stats = calls ? *calls : kNoCalls;
  const LatencyHistogram latency = stats.latency();
  nlohmann::json protocols = nlohmann::json::object();
  for (Protocol protocol : metrics::kProtocols) {
    const auto& p = stats.of(protocol);
    protocols[std::string(metrics::toString(protocol))] = {
        {"calls", p.calls}, {"errors", p.errors()}, {"in_flight", p.inFlight}};
  }
  return {
      {"name", function.name},
      {"runtime", toString(function.runtime)},
      {"instances",
       {{"desired", function.desired},
        {"healthy", function.healthy},
        {"reason", toString(function.reason)},
        // Measured (PSS of the healthy instances' processes, summed), where
        // limits.memory_mb is what each instance may take.
        {"memory_bytes", function.memoryBytes ? nlohmann::json(*function.memoryBytes) : nlohmann::json(nullptr)},
        {"pids", function.pids}}},
      {"scaling", scalingJson(function.scaling)},
      {"async", asyncJson(function.calls.async)},
      {"limits",
       {{"memory_mb", function.limits.memoryMb},
        {"cpus", function.limits.cpus},
        {"egress", function.limits.egress},
        {"timeout", static_cast<double>(function.calls.timeout.count()) / 1000},
        {"concurrency", function.calls.concurrency},
        {"queue", function.calls.queue},
        // Whether memory_mb, cpus and the pids limit hold, and why not.
        {"enforced", function.limitsUnenforced.empty()},
        {"reason",
         function.limitsUnenforced.empty() ? nlohmann::json(nullptr) : nlohmann::json(function.limitsUnenforced)}}},
      {"env", function.envNames},
      {"created", isoTime(function.created)},
      {"updated", isoTime(function.updated)},
      {"restarts", function.restarts},
      {"crash_loop", function.crashLoop},
      {"calls", stats.calls()},
      {"errors", stats.errors()},
      // From the latency histogram's buckets (interpolated), null before the first call.
      {"latency_ms",
       {{"p50", millisOrNull(latency.quantileSeconds(0.5))}, {"p99", millisOrNull(latency.quantileSeconds(0.99))}}},
      {"protocols", protocols},
      {"triggers", triggerStatesJson(function, mqtt)},
  };
}

nlohmann::json quarantinedJson(const QuarantinedFunction& function) {
  return {{"name", function.name},
          {"state", "quarantined"},
          {"reason", function.reason},
          {"owner", function.owner.empty() ? nlohmann::json() : nlohmann::json(function.owner)}};
}

}  // namespace tinyfaas
