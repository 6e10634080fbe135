#include "frontend/coap/exchange_table.hpp"

#include <gtest/gtest.h>

namespace tinyfaas::coap {
namespace {

using namespace std::chrono_literals;

ExchangeKey key(std::uint16_t mid, std::uint8_t lastByte = 1, std::uint16_t port = 5000) {
  ExchangeKey k;
  k.family = 4;
  k.address = {127, 0, 0, lastByte};
  k.port = port;
  k.messageId = mid;
  return k;
}

TEST(ExchangeTableTest, KeysDifferByPeerAndMessageId) {
  ExchangeTable table;
  const auto t0 = Clock::now();
  table.insert(key(1), t0);
  EXPECT_NE(table.find(key(1)), nullptr);
  EXPECT_EQ(table.find(key(2)), nullptr);
  EXPECT_EQ(table.find(key(1, 2)), nullptr);
  EXPECT_EQ(table.find(key(1, 1, 5001)), nullptr);
  EXPECT_EQ(table.inFlight(), 1u);
}

TEST(ExchangeTableTest, StaleRefsDoNotReachAReusedSlot) {
  ExchangeTable table;
  const auto t0 = Clock::now();
  const ExchangeRef first = table.insert(key(1), t0);
  table.erase(*table.get(first));
  EXPECT_EQ(table.get(first), nullptr);
  const ExchangeRef second = table.insert(key(2), t0);
  EXPECT_EQ(second.slot, first.slot);
  EXPECT_EQ(table.get(first), nullptr);
  EXPECT_NE(table.get(second), nullptr);
}

TEST(ExchangeTableTest, DoneExchangesExpireAfterTheLifetime) {
  ExchangeTable table(ExchangeLimits{100, 1 << 20, 10s});
  const auto t0 = Clock::now();
  const ExchangeRef ref = table.insert(key(1), t0);
  table.markDone(*table.get(ref), t0);
  EXPECT_EQ(table.done(), 1u);
  Clock::time_point when;
  ASSERT_TRUE(table.nextExpiry(when));
  EXPECT_EQ(when, t0 + 10s);
  table.evict(t0 + 9s);
  EXPECT_NE(table.find(key(1)), nullptr);
  table.evict(t0 + 10s);
  EXPECT_EQ(table.find(key(1)), nullptr);
  EXPECT_EQ(table.done(), 0u);
  EXPECT_FALSE(table.nextExpiry(when));
}

TEST(ExchangeTableTest, OldestDoneGoFirstBeyondTheCount) {
  ExchangeTable table(ExchangeLimits{2, 1 << 20, 100s});
  const auto t0 = Clock::now();
  for (std::uint16_t mid = 1; mid <= 3; ++mid) {
    const ExchangeRef ref = table.insert(key(mid), t0);
    table.markDone(*table.get(ref), t0 + std::chrono::seconds(mid));
  }
  EXPECT_EQ(table.find(key(1)), nullptr);
  EXPECT_NE(table.find(key(2)), nullptr);
  EXPECT_NE(table.find(key(3)), nullptr);
}

TEST(ExchangeTableTest, InFlightExchangesAreNeverEvicted) {
  ExchangeTable table(ExchangeLimits{0, 0, 0s});
  const auto t0 = Clock::now();
  table.insert(key(1), t0);
  table.evict(t0 + 1000s);
  EXPECT_NE(table.find(key(1)), nullptr);
}

TEST(ExchangeTableTest, OnlyPiggyBackedAnswersKeepTheirBodyAndCountAgainstTheByteLimit) {
  ExchangeTable table(ExchangeLimits{100, 10, 100s});
  const auto t0 = Clock::now();
  const ExchangeRef separate = table.insert(key(1), t0);
  table.get(separate)->body = std::string(50, 'x');
  table.markDone(*table.get(separate), t0);
  EXPECT_EQ(table.doneBytes(), 0u);
  EXPECT_TRUE(table.find(key(1))->body.empty());

  const ExchangeRef small = table.insert(key(2), t0);
  table.get(small)->piggybacked = true;
  table.get(small)->body = "12345678";
  table.markDone(*table.get(small), t0);
  EXPECT_EQ(table.doneBytes(), 8u);

  const ExchangeRef big = table.insert(key(3), t0);
  table.get(big)->piggybacked = true;
  table.get(big)->body = "123456";
  table.markDone(*table.get(big), t0);
  // 14 bytes > 10: the oldest goes.
  EXPECT_EQ(table.find(key(1)), nullptr);
  EXPECT_EQ(table.find(key(2)), nullptr);
  EXPECT_NE(table.find(key(3)), nullptr);
  EXPECT_EQ(table.doneBytes(), 6u);
}

}  // namespace
}  // namespace tinyfaas::coap
