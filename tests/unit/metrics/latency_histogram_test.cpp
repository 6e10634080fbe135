#include "metrics/latency_histogram.hpp"

#include <gtest/gtest.h>

namespace tinyfaas::metrics {
namespace {

using namespace std::chrono_literals;

TEST(LatencyHistogram, BoundsAreInclusiveUpperLimits) {
  LatencyHistogram h;
  h.observe(100us);  // le 0.0001
  h.observe(101us);  // le 0.00025
  h.observe(1s);     // le 1
  h.observe(61s);    // +Inf
  EXPECT_EQ(h.buckets()[0], 1u);
  EXPECT_EQ(h.buckets()[1], 1u);
  EXPECT_EQ(h.buckets()[12], 1u);
  EXPECT_EQ(h.buckets().back(), 1u);
  EXPECT_EQ(h.count(), 4u);
  EXPECT_EQ(h.sumMicros(), 100u + 101u + 1'000'000u + 61'000'000u);
}

TEST(LatencyHistogram, NegativeDurationsCountAsZero) {
  LatencyHistogram h;
  h.observe(-5ms);
  EXPECT_EQ(h.buckets()[0], 1u);
  EXPECT_EQ(h.sumMicros(), 0u);
}

TEST(LatencyHistogram, QuantileOfNothingIsNegative) { EXPECT_LT(LatencyHistogram{}.quantileSeconds(0.5), 0); }

TEST(LatencyHistogram, QuantilesInterpolateInsideTheBucket) {
  LatencyHistogram h;
  // 100 calls between 1 ms and 2.5 ms: the median lies halfway through.
  for (int i = 0; i < 100; ++i) h.observe(2ms);
  EXPECT_NEAR(h.quantileSeconds(0.5), 0.00175, 1e-9);
  EXPECT_NEAR(h.quantileSeconds(0.99), 0.001 + 0.0015 * 0.99, 1e-9);
}

TEST(LatencyHistogram, QuantileSeparatesFastAndSlowCalls) {
  LatencyHistogram h;
  for (int i = 0; i < 98; ++i) h.observe(200us);
  for (int i = 0; i < 2; ++i) h.observe(3s);
  EXPECT_LE(h.quantileSeconds(0.5), 0.00025);
  EXPECT_GT(h.quantileSeconds(0.99), 2.5);
  EXPECT_LE(h.quantileSeconds(0.99), 5.0);
}

TEST(LatencyHistogram, QuantileInInfBucketIsTheLargestBound) {
  LatencyHistogram h;
  h.observe(120s);
  EXPECT_EQ(h.quantileSeconds(0.5), 60.0);
}

TEST(LatencyHistogram, MergeAddsEverything) {
  LatencyHistogram a, b;
  a.observe(1ms);
  b.observe(1ms);
  b.observe(10s);
  a.merge(b);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(a.buckets()[3], 2u);
  EXPECT_EQ(a.sumMicros(), 10'002'000u);
}

}  // namespace
}  // namespace tinyfaas::metrics
