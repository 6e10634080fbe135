#pragma once
// A function's configuration as JSON: the fields uploads send and the state
// store keeps, so that a stored record is checked exactly like an upload.
// Pure functions: no I/O, so they are unit-tested and fuzzed directly.

#include <initializer_list>
#include <optional>
#include <string>

#include <boost/system/result.hpp>
#include <nlohmann/json_fwd.hpp>

#include "core/failure.hpp"
#include "manager/function_config.hpp"

namespace tinyfaas {

inline constexpr int kMaxThreads = 64;
inline constexpr int kMinMemoryMb = 16;
inline constexpr int kMaxMemoryMb = 65536;
inline constexpr int kMaxTargetInFlight = 1024;
inline constexpr int kMaxTimeoutSeconds = 3600;
inline constexpr int kMaxConcurrency = 4096;
inline constexpr int kMaxQueue = 65536;

// name, env, threads, envs, memory_mb, cpus, egress, timeout, concurrency,
// queue, async, triggers, and the scaling fields.
boost::system::result<FunctionConfig, Failure> parseFunctionConfig(const nlohmann::json& document);
nlohmann::json functionConfigJson(const FunctionConfig& config);
// {"retries", "backoff_ms"}, as the upload field "async" and /functions show it.
nlohmann::json asyncJson(const RetryPolicy& policy);

// [{"type": "mqtt", "topic", "reply_topic", "qos"}], as the upload field
// "triggers" and /functions show them (reply_topic null when not set).
nlohmann::json triggersJson(const std::vector<MqttTrigger>& triggers);

// A field of `document` that is neither a config field nor one of `extra`,
// as a Failure that suggests the field it probably meant.
std::optional<Failure> unknownConfigField(const nlohmann::json& document, std::initializer_list<const char*> extra);
boost::system::result<std::string, Failure> requiredStringField(const nlohmann::json& document, const char* field);
// "name", checked against the function name rule.
boost::system::result<std::string, Failure> functionNameField(const nlohmann::json& document);

}  // namespace tinyfaas
