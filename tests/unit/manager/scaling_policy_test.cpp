#include "manager/scaling_policy.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/upload_request.hpp"

namespace tinyfaas {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using Input = ScalingPlanner::Input;

ScalingPolicy policy(int min, int max, int target = 4, std::chrono::milliseconds idle = 10s) {
  return {true, min, max, target, idle};
}

Input function(std::string name, ScalingPolicy p, int current, std::size_t inFlight, int memoryMb = 100) {
  Input in;
  in.name = std::move(name);
  in.policy = p;
  in.current = current;
  in.inFlight = inFlight;
  in.memoryMb = memoryMb;
  return in;
}

// A fake clock: each round is a sample taken `step` after the last.
struct Rounds {
  ScalingPlanner planner;
  ScalingPlanner::Clock::time_point now{};
  explicit Rounds(int budgetMb = 0) : planner(budgetMb) {}
  std::vector<ScalingPlanner::Decision> next(const std::vector<Input>& in, std::chrono::milliseconds step = 50ms) {
    now += step;
    return planner.decide(in, now);
  }
};

TEST(ScalingPlanner, FixedFunctionsKeepTheirThreads) {
  Rounds rounds;
  Input fixed;
  fixed.name = "f";
  fixed.fixedInstances = 3;
  fixed.current = 3;
  fixed.inFlight = 500;
  auto d = rounds.next({fixed});
  EXPECT_EQ(d[0].desired, 3);
  EXPECT_EQ(d[0].reason, ScaleReason::fixed);
}

TEST(ScalingPlanner, ScalesUpOnlyWhenLoadStaysAboveTarget) {
  Rounds rounds;
  // 4 per instance: 10 calls on 1 instance need 3.
  EXPECT_EQ(rounds.next({function("f", policy(1, 8), 1, 10)})[0].desired, 1);  // one busy sample is not load
  EXPECT_EQ(rounds.next({function("f", policy(1, 8), 1, 2)})[0].desired, 1);   // and the streak broke
  EXPECT_EQ(rounds.next({function("f", policy(1, 8), 1, 10)})[0].desired, 1);
  auto d = rounds.next({function("f", policy(1, 8), 1, 10)});
  EXPECT_EQ(d[0].desired, 3);
  EXPECT_EQ(d[0].reason, ScaleReason::load);
}

TEST(ScalingPlanner, NeverExceedsMaxInstances) {
  Rounds rounds;
  rounds.next({function("f", policy(1, 3), 1, 1000)});
  EXPECT_EQ(rounds.next({function("f", policy(1, 3), 1, 1000)})[0].desired, 3);
}

TEST(ScalingPlanner, HeldCallsStartTheFirstInstanceAtOnce) {
  Rounds rounds;
  EXPECT_EQ(rounds.next({function("f", policy(0, 4), 0, 0)})[0].desired, 0);
  EXPECT_EQ(rounds.next({function("f", policy(0, 4), 0, 1)})[0].desired, 1);
}

TEST(ScalingPlanner, ScalesDownToMinimumOnlyAfterTheIdleTime) {
  Rounds rounds;
  const auto p = policy(1, 8, 4, 1s);
  rounds.next({function("f", p, 4, 16)});
  EXPECT_EQ(rounds.next({function("f", p, 4, 0)}, 500ms)[0].desired, 4);
  EXPECT_EQ(rounds.next({function("f", p, 4, 0)}, 400ms)[0].desired, 4);
  auto d = rounds.next({function("f", p, 4, 0)}, 200ms);
  EXPECT_EQ(d[0].desired, 1);
  EXPECT_EQ(d[0].reason, ScaleReason::idle);
}

TEST(ScalingPlanner, IdleStepDownKeepsWhatTheLoadStillNeeds) {
  Rounds rounds;
  const auto p = policy(0, 8, 4, 1s);
  rounds.next({function("f", p, 4, 16)});
  // 6 calls need 2 of the 4 instances.
  EXPECT_EQ(rounds.next({function("f", p, 4, 6)}, 600ms)[0].desired, 4);
  EXPECT_EQ(rounds.next({function("f", p, 4, 6)}, 600ms)[0].desired, 2);
}

TEST(ScalingPlanner, ScalesToZeroWhenTheMinimumIsZero) {
  Rounds rounds;
  const auto p = policy(0, 2, 4, 1s);
  rounds.next({function("f", p, 1, 0)});
  EXPECT_EQ(rounds.next({function("f", p, 1, 0)}, 1100ms)[0].desired, 0);
}

TEST(ScalingPlanner, BringsAFunctionBackToItsMinimum) {
  Rounds rounds;
  auto d = rounds.next({function("f", policy(2, 4), 0, 0)});
  EXPECT_EQ(d[0].desired, 2);
  EXPECT_EQ(d[0].reason, ScaleReason::min);
}

TEST(ScalingPlanner, GrowthWithinTheBudgetTakesIdleInstancesOfOthersFirst) {
  Rounds rounds(400);  // four instances of 100 MB
  const auto p = policy(0, 4, 1, 60s);
  std::vector<Input> in{function("busy", p, 1, 3), function("idle", p, 3, 0)};
  rounds.next(in);
  auto d = rounds.next(in);
  EXPECT_EQ(d[0].desired, 3);
  EXPECT_EQ(d[0].reason, ScaleReason::load);
  EXPECT_EQ(d[1].desired, 1);  // two of its three went to "busy", before its idle time
  EXPECT_EQ(d[1].reason, ScaleReason::budget);
}

TEST(ScalingPlanner, BudgetCapsGrowthButKeepsWhatOthersNeed) {
  Rounds rounds(400);
  const auto p = policy(0, 4, 1, 60s);
  std::vector<Input> in{function("a", p, 2, 4), function("b", p, 2, 2)};
  rounds.next(in);
  auto d = rounds.next(in);
  EXPECT_EQ(d[0].desired, 2);
  EXPECT_EQ(d[0].reason, ScaleReason::budget);
  EXPECT_EQ(d[1].desired, 2);
}

TEST(ScalingPlanner, AFunctionAtZeroGetsAnInstanceFromOneHoldingTheWholeBudget) {
  Rounds rounds(300);
  const auto p = policy(0, 3, 1, 60s);
  // "hog" needs all three of its instances; "starved" has calls held and none.
  std::vector<Input> in{function("hog", p, 3, 10), function("starved", p, 0, 4)};
  auto d = rounds.next(in);
  EXPECT_EQ(d[0].desired, 2);
  EXPECT_EQ(d[0].reason, ScaleReason::budget);
  EXPECT_EQ(d[1].desired, 1);
  EXPECT_EQ(d[1].reason, ScaleReason::budget);
}

TEST(ScalingPlanner, GrowthIsCutBeforeAFirstInstance) {
  Rounds rounds(300);
  const auto p = policy(0, 3, 1, 60s);
  std::vector<Input> in{function("growing", p, 1, 10), function("starved", p, 0, 1), function("idle", p, 1, 0)};
  rounds.next(in);
  auto d = rounds.next(in);
  EXPECT_EQ(d[1].desired, 1);  // its first instance
  EXPECT_EQ(d[0].desired + d[1].desired + d[2].desired, 3);
  EXPECT_EQ(d[2].desired, 0);  // gave its idle instance
}

TEST(ScalingPlanner, DesiredCountsNeverExceedTheBudget) {
  Rounds rounds(500);
  const auto p = policy(0, 8, 2, 1s);
  std::vector<Input> in{function("a", p, 0, 0), function("b", p, 0, 0), function("c", p, 0, 0, 50)};
  for (int round = 0; round < 200; ++round) {
    // Loads that come and go; the current counts follow the last decision.
    in[0].inFlight = (round / 10) % 2 ? 20 : 0;
    in[1].inFlight = (round / 7) % 3 ? 9 : 1;
    in[2].inFlight = round % 5 ? 3 : 30;
    auto d = rounds.next(in, 100ms);
    int total = 0;
    for (std::size_t i = 0; i < in.size(); ++i) {
      total += d[i].desired * in[i].memoryMb;
      in[i].current = d[i].desired;
    }
    ASSERT_LE(total, 500) << "round " << round;
  }
}

TEST(ScalingPlanner, ForgetsDeletedFunctions) {
  Rounds rounds;
  rounds.next({function("f", policy(1, 8), 1, 100)});
  rounds.next({});
  // The streak began anew: one sample is not enough.
  EXPECT_EQ(rounds.next({function("f", policy(1, 8), 1, 100)})[0].desired, 1);
}

json upload(json extra) {
  json body{{"name", "f"}, {"env", "python3"}, {"threads", 2}, {"zip", "UEsDBA=="}};
  if (!extra.is_null()) body.update(extra);
  return body;
}

std::string error(json extra) {
  auto parsed = parseUpload(upload(std::move(extra)).dump());
  return parsed ? "<accepted>" : parsed.error().message;
}

TEST(ScalingFields, AbsentMeansFixedThreads) {
  auto parsed = parseUpload(upload({}).dump());
  ASSERT_TRUE(parsed);
  EXPECT_FALSE(parsed->config.scaling.dynamic);
  EXPECT_FALSE(functionConfigJson(parsed->config).contains("min_instances"));
}

TEST(ScalingFields, AnyFieldMakesItDynamicWithThreadsAsDefaultMaximum) {
  auto parsed = parseUpload(upload({{"min_instances", 0}}).dump());
  ASSERT_TRUE(parsed);
  const ScalingPolicy& p = parsed->config.scaling;
  EXPECT_TRUE(p.dynamic);
  EXPECT_EQ(p.minInstances, 0);
  EXPECT_EQ(p.maxInstances, 2);
  EXPECT_EQ(p.targetInFlight, ScalingPolicy{}.targetInFlight);
  EXPECT_EQ(p.idleTime, ScalingPolicy{}.idleTime);
}

TEST(ScalingFields, RoundTripThroughTheStoredShape) {
  auto parsed = parseUpload(
      upload({{"min_instances", 1}, {"max_instances", 6}, {"target_in_flight", 3}, {"idle_seconds", 0.5}}).dump());
  ASSERT_TRUE(parsed);
  auto again = parseFunctionConfig(functionConfigJson(parsed->config));
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->scaling.dynamic);
  EXPECT_EQ(again->scaling.minInstances, 1);
  EXPECT_EQ(again->scaling.maxInstances, 6);
  EXPECT_EQ(again->scaling.targetInFlight, 3);
  EXPECT_EQ(again->scaling.idleTime, 500ms);
}

TEST(ScalingFields, BadValuesAreRefusedWithTheReason) {
  EXPECT_EQ(error({{"min_instances", -1}}), "min_instances must be an integer between 0 and 64, got -1");
  EXPECT_EQ(error({{"max_instances", 0}}), "max_instances must be an integer between 1 and 64, got 0");
  EXPECT_EQ(error({{"max_instances", 65}}), "max_instances must be an integer between 1 and 64, got 65");
  EXPECT_EQ(error({{"max_instances", 18446744073709551615ull}}),
            "max_instances must be an integer between 1 and 64, got 18446744073709551615");
  EXPECT_EQ(error({{"target_in_flight", "8"}}), "field \"target_in_flight\" must be an integer between 1 and 1024");
  EXPECT_EQ(error({{"idle_seconds", 0}}), "idle_seconds must be between 0.1 and 86400");
  EXPECT_EQ(error({{"idle_seconds", "soon"}}), "field \"idle_seconds\" must be a number of seconds");
  EXPECT_EQ(error({{"min_instances", 5}, {"max_instances", 3}}), "min_instances (5) must not exceed max_instances (3)");
  // threads is the maximum when none is given: a minimum above it contradicts it.
  EXPECT_EQ(error({{"min_instances", 5}}),
            "min_instances (5) exceeds threads (2), which is max_instances when that is not given");
  EXPECT_EQ(error({{"max_instances", 1}}),
            "threads (2) exceeds max_instances (1): with scaling fields threads is only the default of max_instances, "
            "so send one of them");
}

}  // namespace
}  // namespace tinyfaas
