#include "stats.hpp"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace tinyfaas::bench {
namespace {

TEST(Percentile, EmptyIsZero) { EXPECT_EQ(percentile({}, 50), 0); }

TEST(Percentile, SingleValueIsEveryPercentile) {
  const std::vector<std::int64_t> one = {7};
  for (double p : {0.0, 1.0, 50.0, 99.0, 100.0}) EXPECT_EQ(percentile(one, p), 7) << p;
}

TEST(Percentile, NearestRankOverOneToHundred) {
  std::vector<std::int64_t> v(100);
  std::iota(v.begin(), v.end(), 1);
  EXPECT_EQ(percentile(v, 0), 1);
  EXPECT_EQ(percentile(v, 1), 1);
  EXPECT_EQ(percentile(v, 50), 50);
  EXPECT_EQ(percentile(v, 90), 90);
  EXPECT_EQ(percentile(v, 99), 99);
  EXPECT_EQ(percentile(v, 99.5), 100);
  EXPECT_EQ(percentile(v, 100), 100);
}

TEST(Percentile, NoInterpolationBetweenSamples) {
  // Nearest rank: ceil(0.5 * 4) = 2nd value, never an average of two.
  const std::vector<std::int64_t> v = {10, 20, 30, 40};
  EXPECT_EQ(percentile(v, 50), 20);
  EXPECT_EQ(percentile(v, 51), 30);
  EXPECT_EQ(percentile(v, 75), 30);
  EXPECT_EQ(percentile(v, 76), 40);
}

TEST(Percentile, OutOfRangeIsClamped) {
  const std::vector<std::int64_t> v = {1, 2, 3};
  EXPECT_EQ(percentile(v, -5), 1);
  EXPECT_EQ(percentile(v, 500), 3);
}

TEST(Summary, OnlySuccessfulCallsCountForLatency) {
  std::vector<Sample> samples;
  for (int i = 1; i <= 10; ++i) samples.push_back(Sample{0, static_cast<std::uint32_t>(i), 0, i * 100, true});
  samples.push_back(Sample{1, 0, 0, 1'000'000, false});  // a timeout
  const auto s = summarizeSuccesses(samples);
  EXPECT_EQ(s.minUs, 100);
  EXPECT_EQ(s.p50Us, 500);
  EXPECT_EQ(s.p90Us, 900);
  EXPECT_EQ(s.p99Us, 1000);
  EXPECT_EQ(s.maxUs, 1000);
  EXPECT_DOUBLE_EQ(s.meanUs, 550);
  const auto c = countCalls(samples);
  EXPECT_EQ(c.calls, 11u);
  EXPECT_EQ(c.successes, 10u);
}

TEST(Summary, TellsErrorRepliesFromCallsWithoutReply) {
  const std::vector<Sample> samples = {Sample{0, 0, 0, 5, true, true}, Sample{0, 1, 0, 5, false, true},
                                       Sample{0, 2, 0, 1'000'000, false, false}};
  const auto c = countCalls(samples);
  EXPECT_EQ(c.successes, 1u);
  EXPECT_EQ(c.errorReplies, 1u);
  EXPECT_EQ(c.noReply(), 1u);
}

TEST(Summary, NoSuccessesGivesZeros) {
  const std::vector<Sample> samples = {Sample{0, 0, 0, 5, false}};
  const auto s = summarizeSuccesses(samples);
  EXPECT_EQ(s.p50Us, 0);
  EXPECT_EQ(s.maxUs, 0);
}

}  // namespace
}  // namespace tinyfaas::bench
