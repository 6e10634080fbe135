#include "frontend/coap/echo_challenge.hpp"

#include <gtest/gtest.h>

namespace tinyfaas::coap {
namespace {

using namespace std::chrono_literals;

ExchangeKey source(std::uint8_t last, std::uint16_t port) {
  ExchangeKey key;
  key.family = 4;
  key.address = {127, 0, 0, last};
  key.port = port;
  return key;
}

TEST(EchoChallengeTest, AValueProvesOnlyItsOwnSourceWithinItsValidity) {
  const EchoChallenge echo(60s);
  const auto now = Clock::now();
  const auto value = echo.make(source(1, 5683), now);
  EXPECT_TRUE(echo.check(value, source(1, 5683), now + 59s));
  // The Message ID is no part of the source.
  ExchangeKey sameSource = source(1, 5683);
  sameSource.messageId = 7;
  EXPECT_TRUE(echo.check(value, sameSource, now));
  EXPECT_FALSE(echo.check(value, source(2, 5683), now));        // another address
  EXPECT_FALSE(echo.check(value, source(1, 5684), now));        // another port
  EXPECT_FALSE(echo.check(value, source(1, 5683), now + 62s));  // stale
}

TEST(EchoChallengeTest, ForgedOrMangledValuesFail) {
  const EchoChallenge echo;
  const auto now = Clock::now();
  auto value = echo.make(source(1, 1), now);
  const std::array<std::uint8_t, 7> shorter{};
  EXPECT_FALSE(echo.check(shorter, source(1, 1), now));
  value[7] ^= 1;
  EXPECT_FALSE(echo.check(value, source(1, 1), now));
  // Another node (another key) made it.
  const EchoChallenge other;
  EXPECT_FALSE(other.check(echo.make(source(1, 1), now), source(1, 1), now));
}

}  // namespace
}  // namespace tinyfaas::coap
