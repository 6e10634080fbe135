#include "mqtt_triggers/trigger_table.hpp"

#include <gtest/gtest.h>

namespace tinyfaas::mqtt_triggers {
namespace {

std::vector<std::string> matched(const TriggerTable& table, const std::string& topic) {
  std::vector<std::string> out;
  for (const Route* route : table.match(topic)) out.push_back(route->function + ":" + route->trigger.topic);
  return out;
}

TEST(TriggerTable, MatchesWildcardsAsTheBrokerDoes) {
  TriggerTable table({{"temp", {"sensors/+/temp", "", 1}},
                      {"all", {"sensors/#", "", 0}},
                      {"exact", {"sensors/kitchen/temp", "out", 1}}});
  EXPECT_EQ(matched(table, "sensors/kitchen/temp"),
            (std::vector<std::string>{"temp:sensors/+/temp", "all:sensors/#", "exact:sensors/kitchen/temp"}));
  EXPECT_EQ(matched(table, "sensors/kitchen/humidity"), (std::vector<std::string>{"all:sensors/#"}));
  EXPECT_EQ(matched(table, "sensors"), (std::vector<std::string>{"all:sensors/#"}));
  EXPECT_EQ(matched(table, "sensors/a/b/temp"), (std::vector<std::string>{"all:sensors/#"}));
  EXPECT_TRUE(matched(table, "other/kitchen/temp").empty());
  EXPECT_TRUE(matched(TriggerTable{}, "sensors").empty());
}

TEST(TriggerTable, OneSubscriptionPerFilterAtTheHighestQos) {
  TriggerTable table({{"a", {"x/+", "", 0}}, {"b", {"x/+", "", 1}}, {"c", {"y", "", 0}}});
  EXPECT_EQ(table.filters(), (std::map<std::string, int>{{"x/+", 1}, {"y", 0}}));
}

TEST(TriggerTable, TopicsWithControlCharactersAreNotHeaderSafe) {
  EXPECT_TRUE(isHeaderSafe("sensors/kitchen/temp"));
  EXPECT_TRUE(
      isHeaderSafe("k\xc3\xbc"
                   "che/temp"));
  EXPECT_FALSE(isHeaderSafe("a\r\nX-Injected: 1"));
  EXPECT_FALSE(isHeaderSafe(std::string("a\0b", 3)));
  EXPECT_FALSE(isHeaderSafe("a\x7f"));
}

}  // namespace
}  // namespace tinyfaas::mqtt_triggers
