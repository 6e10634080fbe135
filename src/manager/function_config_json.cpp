#include "manager/function_config_json.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/function_name.hpp"
#include "util/edit_distance.hpp"

namespace tinyfaas {

using nlohmann::json;

namespace {

constexpr std::array kConfigFields = {
    "name",        "env",   "threads",       "envs",          "memory_mb",        "cpus",         "egress", "timeout",
    "concurrency", "queue", "min_instances", "max_instances", "target_in_flight", "idle_seconds", "async",  "triggers"};

// An environment variable name as POSIX shells accept it.
bool isValidEnvName(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

// An optional integer field in [low, high]; `value` keeps its default when absent.
boost::system::result<bool, Failure> optionalInt(const json& document, const char* field, int low, int high,
                                                 int& value) {
  auto it = document.find(field);
  if (it == document.end() || it->is_null()) return false;
  const std::string range = " must be an integer between " + std::to_string(low) + " and " + std::to_string(high);
  if (!it->is_number_integer()) return Failure{"field \"" + std::string(field) + "\"" + range};
  if ((it->is_number_unsigned() && it->get<unsigned long long>() > static_cast<unsigned long long>(high)) ||
      it->get<long long>() < low || it->get<long long>() > high)
    return Failure{std::string(field) + range + ", got " + it->dump()};
  value = static_cast<int>(it->get<long long>());
  return true;
}

// min_instances, max_instances, target_in_flight, idle_seconds: any of them
// makes the instance count follow load; `threads` is then the default maximum.
boost::system::result<void, Failure> parseScaling(const json& document, FunctionConfig& config) {
  ScalingPolicy& policy = config.scaling;
  policy.maxInstances = config.threads;
  bool any = false;
  for (auto [field, low, high, value] :
       {std::tuple{"min_instances", 0, kMaxThreads, &policy.minInstances},
        std::tuple{"max_instances", 1, kMaxThreads, &policy.maxInstances},
        std::tuple{"target_in_flight", 1, kMaxTargetInFlight, &policy.targetInFlight}}) {
    auto given = optionalInt(document, field, low, high, *value);
    if (!given) return given.error();
    any = any || *given;
  }
  if (auto idle = document.find("idle_seconds"); idle != document.end() && !idle->is_null()) {
    if (!idle->is_number()) return Failure{"field \"idle_seconds\" must be a number of seconds"};
    const double seconds = idle->get<double>();
    if (!(seconds >= 0.1 && seconds <= 86400)) return Failure{"idle_seconds must be between 0.1 and 86400"};
    policy.idleTime = std::chrono::milliseconds(std::llround(seconds * 1000));
    any = true;
  }
  if (!any) {
    config.scaling = ScalingPolicy{};
    return {};
  }
  const bool maxGiven = document.contains("max_instances") && !document["max_instances"].is_null();
  // With scaling fields `threads` is only the default maximum: a lower
  // explicit maximum or a higher minimum leaves no way to tell which number
  // the author meant (threads 1 is the scripts' default and says nothing).
  if (maxGiven && config.threads > policy.maxInstances)
    return Failure{"threads (" + std::to_string(config.threads) + ") exceeds max_instances (" +
                   std::to_string(policy.maxInstances) +
                   "): with scaling fields threads is only the default of max_instances, so send one of them"};
  if (!maxGiven && config.threads > 1 && policy.minInstances > config.threads)
    return Failure{"min_instances (" + std::to_string(policy.minInstances) + ") exceeds threads (" +
                   std::to_string(config.threads) + "), which is max_instances when that is not given"};
  if (!maxGiven) policy.maxInstances = std::max(policy.maxInstances, policy.minInstances);
  if (policy.minInstances > policy.maxInstances)
    return Failure{"min_instances (" + std::to_string(policy.minInstances) + ") must not exceed max_instances (" +
                   std::to_string(policy.maxInstances) + ")"};
  policy.dynamic = true;
  return {};
}

// "timeout": seconds, fractions allowed; absent or null keeps the daemon's.
std::optional<Failure> parseTimeout(const json& document, std::chrono::milliseconds& out) {
  auto it = document.find("timeout");
  if (it == document.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) return Failure{"field \"timeout\" must be a number of seconds"};
  const double seconds = it->get<double>();
  if (!(seconds >= 0.001 && seconds <= kMaxTimeoutSeconds))
    return Failure{"timeout must be between 0.001 and " + std::to_string(kMaxTimeoutSeconds) + " seconds, got " +
                   it->dump()};
  out = std::chrono::milliseconds(std::llround(seconds * 1000));
  return std::nullopt;
}

// "async": {"retries": N, "backoff_ms": M}, either may be absent.
std::optional<Failure> parseAsync(const json& document, RetryPolicy& out) {
  auto it = document.find("async");
  if (it == document.end() || it->is_null()) return std::nullopt;
  if (!it->is_object()) return Failure{"field \"async\" must be an object like {\"retries\": 2, \"backoff_ms\": 500}"};
  for (const auto& [field, value] : it->items()) {
    if (field != "retries" && field != "backoff_ms")
      return Failure{"unknown field " + json(field).dump() + " in \"async\" (use retries and backoff_ms)"};
  }
  if (auto given = optionalInt(*it, "retries", 0, kMaxRetries, out.retries); !given) return given.error();
  int backoff = static_cast<int>(out.backoff.count());
  if (auto given = optionalInt(*it, "backoff_ms", kMinBackoffMs, kMaxBackoffMs, backoff); !given) return given.error();
  out.backoff = std::chrono::milliseconds(backoff);
  return std::nullopt;
}

// "triggers": [{"type": "mqtt", "topic", "reply_topic", "qos"}]; a topic
// is subscribed at a broker, so a bad one is refused here, not there.
std::optional<Failure> parseTriggers(const json& document, std::vector<MqttTrigger>& out) {
  auto it = document.find("triggers");
  if (it == document.end() || it->is_null()) return std::nullopt;
  if (!it->is_array())
    return Failure{"field \"triggers\" must be a list like [{\"type\": \"mqtt\", \"topic\": \"sensors/+/temp\"}]"};
  if (it->size() > kMaxTriggers) return Failure{"at most " + std::to_string(kMaxTriggers) + " triggers per function"};
  for (const auto& entry : *it) {
    const std::string where = "triggers[" + std::to_string(out.size()) + "]";
    if (!entry.is_object()) return Failure{where + " must be an object"};
    for (const auto& [field, value] : entry.items()) {
      if (field != "type" && field != "topic" && field != "reply_topic" && field != "qos")
        return Failure{"unknown field " + json(field).dump().substr(0, 80) + " in " + where +
                       " (use type, topic, reply_topic and qos)"};
    }
    auto type = requiredStringField(entry, "type");
    if (!type) return Failure{where + ": " + type.error().message};
    if (*type != "mqtt") return Failure{where + ": unknown type " + json(*type).dump().substr(0, 80) + " (use mqtt)"};
    MqttTrigger trigger;
    auto topic = requiredStringField(entry, "topic");
    if (!topic) return Failure{where + ": " + topic.error().message};
    if (auto problem = topicFilterProblem(*topic)) return Failure{where + ": topic filter " + *problem};
    trigger.topic = std::move(*topic);
    if (auto reply = entry.find("reply_topic"); reply != entry.end() && !reply->is_null()) {
      if (!reply->is_string()) return Failure{where + ": field \"reply_topic\" must be a string"};
      if (auto problem = topicNameProblem(reply->get_ref<const std::string&>()))
        return Failure{where + ": reply_topic " + *problem};
      trigger.replyTopic = reply->get<std::string>();
    }
    if (auto given = optionalInt(entry, "qos", 0, 1, trigger.qos); !given)
      return Failure{where + ": " + given.error().message};
    out.push_back(std::move(trigger));
  }
  return std::nullopt;
}

// Seconds, null when the daemon's applies (so that changing --call-timeout
// reaches the functions stored without one).
json timeoutJson(const CallLimits& calls) {
  if (calls.timeout.count() == 0) return nullptr;
  return static_cast<double>(calls.timeout.count()) / 1000;
}

}  // namespace

json triggersJson(const std::vector<MqttTrigger>& triggers) {
  json out = json::array();
  for (const auto& trigger : triggers) {
    out.push_back({{"type", "mqtt"},
                   {"topic", trigger.topic},
                   {"reply_topic", trigger.replyTopic.empty() ? json(nullptr) : json(trigger.replyTopic)},
                   {"qos", trigger.qos}});
  }
  return out;
}

json asyncJson(const RetryPolicy& policy) {
  return {{"retries", policy.retries}, {"backoff_ms", policy.backoff.count()}};
}

boost::system::result<std::string, Failure> requiredStringField(const json& document, const char* field) {
  auto it = document.find(field);
  if (it == document.end()) return Failure{"missing field \"" + std::string(field) + "\""};
  if (!it->is_string()) return Failure{"field \"" + std::string(field) + "\" must be a string"};
  return {boost::system::in_place_value, it->get<std::string>()};
}

boost::system::result<std::string, Failure> functionNameField(const json& document) {
  auto name = requiredStringField(document, "name");
  if (!name) return name;
  if (!isValidFunctionName(*name))
    return Failure{"function name \"" + *name + "\" must be " + std::string(kFunctionNameRule)};
  return name;
}

// A field the request does not know is a typo more often than not: silently
// ignoring "memroy_mb" would deploy without the limit the author asked for.
std::optional<Failure> unknownConfigField(const json& document, std::initializer_list<const char*> extra) {
  std::vector<std::string_view> known(kConfigFields.begin(), kConfigFields.end());
  known.insert(known.end(), extra.begin(), extra.end());
  for (const auto& [field, value] : document.items()) {
    if (std::find(known.begin(), known.end(), field) != known.end()) continue;
    std::string_view closest;
    std::size_t best = 3;  // at most two edits away
    for (std::string_view candidate : known) {
      // A cut-off name ("subfolder") means the field it starts.
      const std::size_t distance =
          field.size() >= 4 && candidate.starts_with(field) ? 1 : editDistance(field, candidate);
      if (distance < best) {
        best = distance;
        closest = candidate;
      }
    }
    std::string shown = json(field).dump();
    if (shown.size() > 80) shown = shown.substr(0, 77) + "...";
    std::string message = "unknown field " + shown;
    if (!closest.empty()) message += " (did you mean \"" + std::string(closest) + "\"?)";
    return Failure{message};
  }
  return std::nullopt;
}

boost::system::result<FunctionConfig, Failure> parseFunctionConfig(const json& document) {
  FunctionConfig config;
  auto name = functionNameField(document);
  if (!name) return name.error();
  config.name = *name;

  auto env = requiredStringField(document, "env");
  if (!env) return env.error();
  auto runtime = parseRuntime(*env);
  if (!runtime) return Failure{"unknown env \"" + *env + "\" (use " + std::string(kRuntimeNames) + ")"};
  config.runtime = *runtime;

  auto threads = document.find("threads");
  if (threads == document.end()) return Failure{"missing field \"threads\""};
  if (!threads->is_number_integer()) return Failure{"field \"threads\" must be an integer"};
  if (threads->is_number_unsigned() &&
      threads->get<unsigned long long>() > static_cast<unsigned long long>(kMaxThreads))
    return Failure{"threads must be between 1 and " + std::to_string(kMaxThreads) + ", got " +
                   std::to_string(threads->get<unsigned long long>())};
  const auto count = threads->get<long long>();
  if (count < 1 || count > kMaxThreads)
    return Failure{"threads must be between 1 and " + std::to_string(kMaxThreads) + ", got " + std::to_string(count)};
  config.threads = static_cast<int>(count);

  if (auto envs = document.find("envs"); envs != document.end() && !envs->is_null()) {
    if (!envs->is_array()) return Failure{"field \"envs\" must be a list of \"KEY=VALUE\" strings"};
    for (const auto& entry : *envs) {
      if (!entry.is_string()) return Failure{"field \"envs\" must be a list of \"KEY=VALUE\" strings"};
      const auto& kv = entry.get_ref<const std::string&>();
      const auto eq = kv.find('=');
      if (eq == std::string::npos || !isValidEnvName(std::string_view(kv).substr(0, eq)))
        return Failure{"bad envs entry \"" + kv + "\": expected KEY=VALUE with KEY of letters, digits and _"};
      if (kv.find('\0') != std::string::npos) return Failure{"bad envs entry: contains a NUL byte"};
      config.env.push_back(kv);
    }
  }
  if (auto memory = document.find("memory_mb"); memory != document.end() && !memory->is_null()) {
    if (!memory->is_number_integer()) return Failure{"field \"memory_mb\" must be an integer"};
    const auto mb = memory->get<long long>();
    if (mb < kMinMemoryMb || mb > kMaxMemoryMb)
      return Failure{"memory_mb must be between " + std::to_string(kMinMemoryMb) + " and " +
                     std::to_string(kMaxMemoryMb) + ", got " + std::to_string(mb)};
    config.limits.memoryMb = static_cast<int>(mb);
  }
  if (auto cpus = document.find("cpus"); cpus != document.end() && !cpus->is_null()) {
    if (!cpus->is_number()) return Failure{"field \"cpus\" must be a number"};
    const double share = cpus->get<double>();
    if (!(share >= 0.01 && share <= 64)) return Failure{"cpus must be between 0.01 and 64"};
    config.limits.cpus = share;
  }
  if (auto egress = document.find("egress"); egress != document.end() && !egress->is_null()) {
    if (!egress->is_boolean()) return Failure{"field \"egress\" must be true or false"};
    config.limits.egress = egress->get<bool>();
  }
  if (auto scaling = parseScaling(document, config); !scaling) return scaling.error();
  if (auto bad = parseTimeout(document, config.calls.timeout)) return *bad;
  if (auto given = optionalInt(document, "concurrency", 1, kMaxConcurrency, config.calls.concurrency); !given)
    return given.error();
  if (auto given = optionalInt(document, "queue", 0, kMaxQueue, config.calls.queue); !given) return given.error();
  if (auto bad = parseAsync(document, config.calls.async)) return *bad;
  if (auto bad = parseTriggers(document, config.triggers)) return *bad;
  return config;
}

json functionConfigJson(const FunctionConfig& config) {
  json out{{"name", config.name},
           {"env", toString(config.runtime)},
           {"threads", config.threads},
           {"envs", config.env},
           {"memory_mb", config.limits.memoryMb},
           {"cpus", config.limits.cpus},
           {"egress", config.limits.egress},
           {"timeout", timeoutJson(config.calls)},
           {"concurrency", config.calls.concurrency},
           {"queue", config.calls.queue},
           {"async", asyncJson(config.calls.async)}};
  if (!config.triggers.empty()) out["triggers"] = triggersJson(config.triggers);
  if (config.scaling.dynamic) {
    out["min_instances"] = config.scaling.minInstances;
    out["max_instances"] = config.scaling.maxInstances;
    out["target_in_flight"] = config.scaling.targetInFlight;
    out["idle_seconds"] = static_cast<double>(config.scaling.idleTime.count()) / 1000;
  }
  return out;
}

}  // namespace tinyfaas
