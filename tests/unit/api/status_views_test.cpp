// The /metrics page and /functions JSON built from made-up status and
// counters: format rules a Prometheus scraper relies on, and what is left out.
#include "api/status_views.hpp"

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace tinyfaas {
namespace {

using namespace std::chrono_literals;
using metrics::Protocol;

FunctionStatus echoStatus() {
  FunctionStatus f;
  f.name = "echo";
  f.runtime = Runtime::python3;
  f.desired = 2;
  f.healthy = 1;
  f.envNames = {"GREETING", "TOKEN"};
  f.created = std::chrono::system_clock::from_time_t(1'700'000'000);
  f.updated = f.created + 60s;
  f.restarts = 3;
  f.calls = {std::chrono::milliseconds(2500), 8, 16, {3, std::chrono::milliseconds(250)}};
  return f;
}

metrics::CallSnapshot someCalls() {
  metrics::CallSnapshot calls;
  auto& http = calls.functions["echo"].of(Protocol::http);
  for (int i = 0; i < 10; ++i) {
    http.latency.observe(2ms);
    ++http.calls;
    ++http.outcomes[static_cast<std::size_t>(CallStatus::ok)];
  }
  http.latency.observe(3s);
  ++http.calls;
  ++http.outcomes[static_cast<std::size_t>(CallStatus::timeout)];
  // A function that was removed since: no series for it.
  ++calls.functions["gone"].of(Protocol::coap).calls;
  calls.unknownFunctionCalls[static_cast<std::size_t>(Protocol::coap)] = 4;
  return calls;
}

struct Sample {
  std::string name;
  std::string labels;
  std::string value;
};

// Checks the 0.0.4 rules per line and returns the samples.
std::vector<Sample> parse(const std::string& page) {
  static const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+)");
  static const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram))");
  static const std::regex sample(
      R"re(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (\S+))re");
  std::map<std::string, std::string> types;
  std::string helpFor;
  std::vector<Sample> samples;
  std::istringstream in(page);
  std::string line;
  std::smatch m;
  EXPECT_TRUE(page.ends_with('\n'));
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, help)) {
      EXPECT_EQ(types.count(m[1]), 0u) << "family declared twice: " << line;
      helpFor = m[1];
    } else if (std::regex_match(line, m, type)) {
      EXPECT_EQ(m[1], helpFor) << "TYPE without HELP just before: " << line;
      types[m[1]] = m[2];
    } else if (std::regex_match(line, m, sample)) {
      std::string family = m[1];
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        if (family.ends_with(suffix) && types.count(family.substr(0, family.size() - std::strlen(suffix))))
          family = family.substr(0, family.size() - std::strlen(suffix));
      }
      EXPECT_EQ(family, helpFor) << "sample outside its family: " << line;
      samples.push_back({m[1], m[2], m[3]});
    } else {
      ADD_FAILURE() << "not a valid line: " << line;
    }
  }
  return samples;
}

std::string valueOf(const std::vector<Sample>& samples, const std::string& name, const std::string& labels) {
  for (const auto& s : samples) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return "(missing)";
}

TEST(MetricsPage, EveryLineFollowsTheTextFormat) {
  auto samples = parse(renderMetricsPage({echoStatus()}, someCalls(), {1 << 20, 12, 3}, {}));
  EXPECT_EQ(valueOf(samples, "tinyfaas_calls_total", R"({function="echo",protocol="http"})"), "11");
  EXPECT_EQ(valueOf(samples, "tinyfaas_calls_total", R"({function="echo",protocol="grpc"})"), "0");
  EXPECT_EQ(valueOf(samples, "tinyfaas_call_errors_total", R"({function="echo",protocol="http",kind="timeout"})"), "1");
  EXPECT_EQ(valueOf(samples, "tinyfaas_unknown_function_calls_total", R"({protocol="coap"})"), "4");
  EXPECT_EQ(valueOf(samples, "tinyfaas_function_instances_desired", R"({function="echo"})"), "2");
  EXPECT_EQ(valueOf(samples, "tinyfaas_function_instances_up", R"({function="echo"})"), "1");
  EXPECT_EQ(valueOf(samples, "tinyfaas_function_restarts_total", R"({function="echo"})"), "3");
  EXPECT_EQ(valueOf(samples, "process_resident_memory_bytes", ""), "1048576");
  EXPECT_EQ(valueOf(samples, "tinyfaas_open_connections", ""), "3");
  for (const auto& s : samples) EXPECT_EQ(s.labels.find("gone"), std::string::npos) << s.name << s.labels;
}

TEST(MetricsPage, HistogramBucketsAreCumulativeUpToCount) {
  auto samples = parse(renderMetricsPage({echoStatus()}, someCalls(), {}, {}));
  std::uint64_t previous = 0;
  int buckets = 0;
  std::string last;
  for (const auto& s : samples) {
    if (s.name != "tinyfaas_call_duration_seconds_bucket" ||
        !s.labels.starts_with(R"({function="echo",protocol="http")"))
      continue;
    ++buckets;
    const auto value = std::stoull(s.value);
    EXPECT_GE(value, previous) << s.labels;
    previous = value;
    last = s.labels;
  }
  EXPECT_EQ(buckets, 19);
  EXPECT_NE(last.find(R"(le="+Inf")"), std::string::npos);
  EXPECT_EQ(previous, 11u);
  EXPECT_EQ(valueOf(samples, "tinyfaas_call_duration_seconds_count", R"({function="echo",protocol="http"})"), "11");
  EXPECT_EQ(
      valueOf(samples, "tinyfaas_call_duration_seconds_bucket", R"({function="echo",protocol="http",le="0.0025"})"),
      "10");
  EXPECT_EQ(valueOf(samples, "tinyfaas_call_duration_seconds_sum", R"({function="echo",protocol="http"})"), "3.02");
}

TEST(MetricsPage, NoFunctionsStillHasEveryFamily) {
  auto page = renderMetricsPage({}, {}, {}, {});
  parse(page);
  for (const char* family : {"tinyfaas_calls_total", "tinyfaas_call_errors_total", "tinyfaas_call_duration_seconds",
                             "tinyfaas_calls_in_flight", "tinyfaas_functions", "tinyfaas_uptime_seconds"}) {
    EXPECT_NE(page.find(std::string("# TYPE ") + family + " "), std::string::npos) << family;
  }
}

TEST(FunctionJson, ShowsEnvNamesOnlyAndLatency) {
  const auto calls = someCalls();
  auto json = functionJson(echoStatus(), &calls.functions.at("echo"));
  EXPECT_EQ(json["name"], "echo");
  EXPECT_EQ(json["runtime"], "python3");
  EXPECT_EQ(json["instances"]["desired"], 2);
  EXPECT_EQ(json["instances"]["healthy"], 1);
  EXPECT_EQ(json["env"], nlohmann::json::array({"GREETING", "TOKEN"}));
  EXPECT_EQ(json["created"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(json["updated"], "2023-11-14T22:14:20Z");
  EXPECT_EQ(json["calls"], 11);
  EXPECT_EQ(json["errors"], 1);
  EXPECT_EQ(json["restarts"], 3);
  EXPECT_EQ(json["crash_loop"], false);
  EXPECT_EQ(json["protocols"]["http"]["calls"], 11);
  EXPECT_EQ(json["limits"]["memory_mb"], 256);
  EXPECT_EQ(json["limits"]["timeout"], 2.5);  // seconds, as uploaded
  EXPECT_EQ(json["limits"]["concurrency"], 8);
  EXPECT_EQ(json["limits"]["queue"], 16);
  const double p50 = json["latency_ms"]["p50"];
  const double p99 = json["latency_ms"]["p99"];
  EXPECT_GT(p50, 1.0);
  EXPECT_LE(p50, 2.5);
  EXPECT_GT(p99, 2500.0);
}

TEST(FunctionJson, NoCallsYet) {
  auto json = functionJson(echoStatus(), nullptr);
  EXPECT_EQ(json["calls"], 0);
  EXPECT_TRUE(json["latency_ms"]["p50"].is_null());
  EXPECT_TRUE(json["latency_ms"]["p99"].is_null());
}

TEST(FunctionJson, TriggersWithTheirState) {
  FunctionStatus status = echoStatus();
  status.triggers = {{"sensors/+/temp", "out/temp", 1}, {"logs/#", "", 0}};
  auto inactive = functionJson(status, nullptr)["triggers"];
  ASSERT_EQ(inactive.size(), 2u);
  EXPECT_EQ(inactive[0], nlohmann::json::parse(R"({"type": "mqtt", "topic": "sensors/+/temp", "reply_topic":
      "out/temp", "qos": 1, "state": "inactive", "reason": "this node runs without --mqtt"})"));
  EXPECT_TRUE(inactive[1]["reply_topic"].is_null());

  MqttState mqtt;
  mqtt.enabled = true;
  mqtt.lastError = "connection lost";
  auto down = functionJson(status, nullptr, mqtt)["triggers"];
  EXPECT_EQ(down[0]["state"], "disconnected");
  EXPECT_EQ(down[0]["reason"], "connection lost");

  mqtt.connected = true;
  mqtt.subscribed = {"logs/#"};
  auto up = functionJson(status, nullptr, mqtt)["triggers"];
  EXPECT_EQ(up[0]["state"], "subscribing");
  EXPECT_EQ(up[1]["state"], "subscribed");
  EXPECT_TRUE(up[1]["reason"].is_null());
  EXPECT_EQ(functionJson(echoStatus(), nullptr)["triggers"], nlohmann::json::array());
}

TEST(MetricsPage, MqttSeriesOnlyWithMqtt) {
  FunctionStatus status = echoStatus();
  status.triggers = {{"a/+", "", 1}};
  EXPECT_EQ(renderMetricsPage({status}, {}, {}, {}).find("tinyfaas_mqtt_"), std::string::npos);
  MqttState mqtt;
  mqtt.enabled = true;
  mqtt.connected = true;
  mqtt.subscribed = {"a/+"};
  mqtt.functions["echo"] = {5, 4, 1, 2};  // messages, published, failed, dropped
  FunctionStatus plain;
  plain.name = "plain";
  auto samples = parse(renderMetricsPage({status, plain}, {}, {}, {}, {}, {}, mqtt));
  EXPECT_EQ(valueOf(samples, "tinyfaas_mqtt_connected", ""), "1");
  EXPECT_EQ(valueOf(samples, "tinyfaas_mqtt_subscriptions", ""), "1");
  EXPECT_EQ(valueOf(samples, "tinyfaas_mqtt_messages_total", R"({function="echo"})"), "5");
  EXPECT_EQ(valueOf(samples, "tinyfaas_mqtt_published_total", R"({function="echo"})"), "4");
  EXPECT_EQ(valueOf(samples, "tinyfaas_mqtt_failed_total", R"({function="echo"})"), "1");
  EXPECT_EQ(valueOf(samples, "tinyfaas_mqtt_dropped_total", R"({function="echo"})"), "2");
  // A function without triggers has no MQTT series.
  EXPECT_EQ(valueOf(samples, "tinyfaas_mqtt_messages_total", R"({function="plain"})"), "(missing)");
}

}  // namespace
}  // namespace tinyfaas
