#pragma once
// An MQTT trigger of a function (upload field "triggers"), shared by the
// manager that keeps it and src/mqtt_triggers that subscribes for it.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace tinyfaas {

struct MqttTrigger {
  std::string topic;       // a topic filter: + and # allowed
  std::string replyTopic;  // empty: no reply is published there
  int qos = 1;             // 0 or 1

  bool operator==(const MqttTrigger&) const = default;
};

inline constexpr std::size_t kMaxTriggers = 16;
// Far below MQTT's 65535: a topic is a routing key, not a payload.
inline constexpr std::size_t kMaxTopicBytes = 1024;

// What the node's MQTT session does, for /functions and /metrics.
struct MqttFunctionCounters {
  std::uint64_t messages = 0;   // messages that called the function
  std::uint64_t published = 0;  // replies published (reply_topic, MQTT 5 response topic)
  std::uint64_t failed = 0;     // calls that did not succeed: nothing was published
  std::uint64_t dropped = 0;    // QoS 0 messages beyond the in-flight limit, too large, or a bad topic
};
struct MqttState {
  bool enabled = false;  // --mqtt given
  bool connected = false;
  std::string lastError;             // why the last connection failed or ended; empty when none
  std::set<std::string> subscribed;  // filters the broker acknowledged in this connection
  std::map<std::string, MqttFunctionCounters, std::less<>> functions;
};

// Why `filter` is not a topic filter this node subscribes to (MQTT 5 4.7:
// `#` only as the last level, `+` and `#` only as whole levels; not empty,
// no NUL, at most kMaxTopicBytes), nullopt when it is one. `$`-topics are
// refused too: they are the broker's, not devices'.
std::optional<std::string> topicFilterProblem(std::string_view filter);
// The same for a topic name to publish to: no wildcards at all.
std::optional<std::string> topicNameProblem(std::string_view topic);

}  // namespace tinyfaas
