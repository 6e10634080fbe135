#pragma once
// Which functions an MQTT message calls: every function's triggers, the
// filters to subscribe to, and the match of a topic against them.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/mqtt_trigger.hpp"

namespace tinyfaas::mqtt_triggers {

struct Route {
  std::string function;
  MqttTrigger trigger;
  bool operator==(const Route&) const = default;
};

class TriggerTable {
 public:
  TriggerTable() = default;
  explicit TriggerTable(std::vector<Route> routes);

  // The routes whose filter matches `topic` (a topic name, no wildcards),
  // by libmosquitto's matching, so `+` and `#` mean what the broker means.
  std::vector<const Route*> match(const std::string& topic) const;
  // Each filter once, with the highest QoS of its triggers: what to
  // subscribe to.
  std::map<std::string, int> filters() const;
  const std::vector<Route>& routes() const { return routes_; }
  bool operator==(const TriggerTable&) const = default;

 private:
  std::vector<Route> routes_;
};

// A topic that is safe to hand to a function as a header value: no control
// characters (a CR or LF would split the handler's request), no NUL.
bool isHeaderSafe(std::string_view topic);

}  // namespace tinyfaas::mqtt_triggers
