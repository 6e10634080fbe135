#include "mqtt_triggers/trigger_table.hpp"

#include <algorithm>

#include <mosquitto.h>

namespace tinyfaas::mqtt_triggers {

TriggerTable::TriggerTable(std::vector<Route> routes) : routes_(std::move(routes)) {}

std::vector<const Route*> TriggerTable::match(const std::string& topic) const {
  std::vector<const Route*> matched;
  for (const Route& route : routes_) {
    bool result = false;
    if (mosquitto_topic_matches_sub(route.trigger.topic.c_str(), topic.c_str(), &result) == MOSQ_ERR_SUCCESS && result)
      matched.push_back(&route);
  }
  return matched;
}

std::map<std::string, int> TriggerTable::filters() const {
  std::map<std::string, int> out;
  for (const Route& route : routes_) {
    int& qos = out.try_emplace(route.trigger.topic, 0).first->second;
    qos = std::max(qos, route.trigger.qos);
  }
  return out;
}

bool isHeaderSafe(std::string_view topic) {
  return std::none_of(topic.begin(), topic.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

}  // namespace tinyfaas::mqtt_triggers
