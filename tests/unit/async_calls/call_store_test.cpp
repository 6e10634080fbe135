#include "async_calls/call_store.hpp"

#include <gtest/gtest.h>

#include "test_support.hpp"

namespace tinyfaas::async_calls {
namespace {

using State = AsyncCallRecord::State;
using namespace std::chrono_literals;

constexpr Millis kStart = 1'700'000'000'000;

std::string id(int n) {
  std::string digits = std::to_string(n);
  return std::string(32 - digits.size(), '0') + digits;
}

class CallStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<CallStore> open(StoreLimits limits = {}) { return test::must(CallStore::open(file(), limits)); }
  std::filesystem::path file() const { return dir / "calls.db"; }

  test::TempDir dir;
};

TEST_F(CallStoreTest, InsertClaimFinishAndFind) {
  auto store = open();
  ASSERT_TRUE(store->insert(id(1), Invocation{"echo", "input", {{"Lab", "x"}}}, kStart));
  EXPECT_EQ(test::must(store->find(id(1), kStart))->state, State::queued);

  Claimed claimed = test::must(store->claim(kStart, 10, 1 << 20, true));
  ASSERT_EQ(claimed.calls.size(), 1u);
  EXPECT_EQ(claimed.calls[0].id, id(1));
  EXPECT_EQ(claimed.calls[0].invocation.function, "echo");
  EXPECT_EQ(claimed.calls[0].invocation.payload, "input");
  ASSERT_EQ(claimed.calls[0].invocation.headers.size(), 1u);
  EXPECT_EQ(claimed.calls[0].invocation.headers[0].second, "x");
  EXPECT_FALSE(claimed.nextDue);
  EXPECT_EQ(test::must(store->find(id(1), kStart))->state, State::running);
  // Running calls are not claimed twice.
  EXPECT_TRUE(test::must(store->claim(kStart, 10, 1 << 20, true)).calls.empty());

  CallResult result{CallStatus::ok, "output", false, 201, {{"X-Out", "y"}}};
  auto finished = test::must(store->finish(id(1), Attempt::succeeded, result, kStart + 5));
  ASSERT_TRUE(finished);
  EXPECT_EQ(finished->state, State::done);
  auto record = test::must(store->find(id(1), kStart + 6));
  ASSERT_TRUE(record);
  EXPECT_EQ(record->state, State::done);
  EXPECT_EQ(record->result.body, "output");
  EXPECT_EQ(record->result.code, 201u);
  ASSERT_EQ(record->result.headers.size(), 1u);
  EXPECT_EQ(record->result.headers[0].first, "X-Out");
  EXPECT_FALSE(test::must(store->find(id(2), kStart)));
}

TEST_F(CallStoreTest, TheDatabaseIsTheDaemonsAlone) {
  dir.writeFile("calls.db", "", std::filesystem::perms(0644));  // as an earlier version may have left it
  auto store = open();
  ASSERT_TRUE(store->insert(id(1), Invocation{"echo", "secret", {}}, kStart));
  for (const char* name : {"calls.db", "calls.db-wal"}) {
    EXPECT_EQ(std::filesystem::status(dir / name).permissions() & std::filesystem::perms::mask,
              std::filesystem::perms(0600))
        << name;
  }
}

TEST_F(CallStoreTest, BinaryPayloadsSurviveAsTheyAre) {
  auto store = open();
  const std::string payload("a\0b\xff\xfe", 5);
  ASSERT_TRUE(store->insert(id(1), Invocation{"echo", payload, {{"Bin", "\xff"}}}, kStart));
  Claimed claimed = test::must(store->claim(kStart, 1, 1 << 20, true));
  ASSERT_EQ(claimed.calls.size(), 1u);
  EXPECT_EQ(claimed.calls[0].invocation.payload, payload);
}

TEST_F(CallStoreTest, FailuresAreRetriedWithDoublingBackoffThenDeadLettered) {
  auto store = open();
  store->setPolicy("flaky", RetryPolicy{2, 100ms});
  ASSERT_TRUE(store->insert(id(1), Invocation{"flaky", "", {}}, kStart));
  const CallResult boom{CallStatus::functionError, "boom", false, 500, {}};

  Millis now = kStart;
  for (int attempt = 1; attempt <= 2; ++attempt) {
    ASSERT_EQ(test::must(store->claim(now, 10, 1 << 20, true)).calls.size(), 1u) << attempt;
    auto finished = test::must(store->finish(id(1), Attempt::failed, boom, now));
    ASSERT_TRUE(finished);
    EXPECT_EQ(finished->state, State::queued);
    EXPECT_EQ(finished->failures, attempt);
    EXPECT_EQ(finished->attempts, 3);
    const Millis delay = attempt == 1 ? 100 : 200;
    EXPECT_EQ(finished->retryIn, std::chrono::milliseconds(delay));
    // Not due before its backoff.
    Claimed early = test::must(store->claim(now + delay - 1, 10, 1 << 20, true));
    EXPECT_TRUE(early.calls.empty());
    ASSERT_TRUE(early.nextDue);
    EXPECT_EQ(*early.nextDue, now + delay);
    now += delay;
  }
  ASSERT_EQ(test::must(store->claim(now, 10, 1 << 20, true)).calls.size(), 1u);
  auto last = test::must(store->finish(id(1), Attempt::failed, boom, now));
  ASSERT_TRUE(last);
  EXPECT_EQ(last->state, State::failed);
  EXPECT_EQ(last->failures, 3);

  auto record = test::must(store->find(id(1), now));
  ASSERT_TRUE(record);
  EXPECT_EQ(record->state, State::failed);
  EXPECT_EQ(record->result.status, CallStatus::functionError);
  EXPECT_EQ(record->result.code, 500u);
  auto failed = test::must(store->list("flaky", State::failed, 10, now));
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].id, id(1));
  EXPECT_EQ(failed[0].failures, 3);
  EXPECT_EQ(failed[0].reason, "boom");
  EXPECT_TRUE(test::must(store->list("flaky", State::queued, 10, now)).empty());
  auto stats = test::must(store->stats(now));
  EXPECT_EQ(stats["flaky"].deadLettered, 1u);
  EXPECT_EQ(stats["flaky"].deadLetters, 1u);
  EXPECT_EQ(stats["flaky"].queued, 0u);
}

TEST_F(CallStoreTest, InterruptedAttemptsDoNotCount) {
  auto store = open();
  store->setPolicy("f", RetryPolicy{0, 10ms});
  ASSERT_TRUE(store->insert(id(1), Invocation{"f", "", {}}, kStart));
  for (int i = 0; i < 5; ++i) {
    const Millis now = kStart + i * 1000;
    ASSERT_EQ(test::must(store->claim(now, 10, 1 << 20, true)).calls.size(), 1u);
    auto finished =
        test::must(store->finish(id(1), Attempt::interrupted, CallResult{CallStatus::unavailable, "no instance"}, now));
    ASSERT_TRUE(finished);
    EXPECT_EQ(finished->state, State::queued);
    EXPECT_EQ(finished->failures, 0);
  }
}

TEST_F(CallStoreTest, CallsLeftRunningByACrashAreQueuedAgain) {
  {
    auto store = open();
    ASSERT_TRUE(store->insert(id(1), Invocation{"echo", "a", {}}, kStart));
    ASSERT_TRUE(store->insert(id(2), Invocation{"echo", "b", {}}, kStart + 1));
    ASSERT_EQ(test::must(store->claim(kStart + 1, 1, 1 << 20, true)).calls.size(), 1u);
    // Gone without finish(): the daemon died.
  }
  auto store = open();
  EXPECT_EQ(test::must(store->find(id(1), kStart + 2))->state, State::queued);
  Claimed claimed = test::must(store->claim(kStart + 2, 10, 1 << 20, true));
  ASSERT_EQ(claimed.calls.size(), 2u);
  EXPECT_EQ(claimed.calls[0].invocation.payload, "a");  // oldest due first
  EXPECT_EQ(claimed.calls[1].invocation.payload, "b");
}

TEST_F(CallStoreTest, ResultsExpireAfterTheRetention) {
  StoreLimits limits;
  limits.retention = 1000ms;
  auto store = open(limits);
  ASSERT_TRUE(store->insert(id(1), Invocation{"echo", "", {}}, kStart));
  ASSERT_EQ(test::must(store->claim(kStart, 1, 1 << 20, true)).calls.size(), 1u);
  ASSERT_TRUE(test::must(store->finish(id(1), Attempt::succeeded, CallResult{CallStatus::ok, "out"}, kStart)));
  EXPECT_TRUE(test::must(store->find(id(1), kStart + 999)));
  EXPECT_FALSE(test::must(store->find(id(1), kStart + 1000)));  // expired, even before the sweep
  EXPECT_EQ(test::must(store->expire(kStart + 999)), 0u);
  EXPECT_EQ(test::must(store->expire(kStart + 1000)), 1u);
  EXPECT_EQ(store->results(), 0u);
  EXPECT_EQ(store->bytes(), 0u);
}

TEST_F(CallStoreTest, PerFunctionQueueLimit) {
  StoreLimits limits;
  limits.queuePerFunction = 2;
  auto store = open(limits);
  ASSERT_TRUE(store->insert(id(1), Invocation{"a", "", {}}, kStart));
  ASSERT_TRUE(store->insert(id(2), Invocation{"a", "", {}}, kStart));
  auto refused = store->insert(id(3), Invocation{"a", "", {}}, kStart);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), "the asynchronous queue of a is full (2 calls waiting); try again later");
  // Another function has its own queue; a finished call frees its place.
  EXPECT_TRUE(store->insert(id(4), Invocation{"b", "", {}}, kStart));
  ASSERT_EQ(test::must(store->claim(kStart, 1, 1 << 20, true)).calls.size(), 1u);
  EXPECT_FALSE(store->insert(id(5), Invocation{"a", "", {}}, kStart));  // running still counts
  ASSERT_TRUE(test::must(store->finish(id(1), Attempt::succeeded, CallResult{}, kStart)));
  EXPECT_TRUE(store->insert(id(5), Invocation{"a", "", {}}, kStart));
}

TEST_F(CallStoreTest, ByteCapRefusesNewCallsAfterOldResultsGo) {
  StoreLimits limits;
  limits.maxBytes = 100;
  auto store = open(limits);
  ASSERT_TRUE(store->insert(id(1), Invocation{"f", std::string(40, 'x'), {}}, kStart));
  ASSERT_EQ(test::must(store->claim(kStart, 1, 1 << 20, true)).calls.size(), 1u);
  ASSERT_TRUE(
      test::must(store->finish(id(1), Attempt::succeeded, CallResult{CallStatus::ok, std::string(50, 'r')}, kStart)));
  EXPECT_EQ(store->bytes(), 52u);  // the result and its "[]" headers
  // 52 + 60 > 100: the old result makes room.
  ASSERT_TRUE(store->insert(id(2), Invocation{"f", std::string(58, 'y'), {}}, kStart + 1));
  EXPECT_FALSE(test::must(store->find(id(1), kStart + 1)));
  EXPECT_EQ(store->bytes(), 60u);
  // No result left to drop: refused.
  auto refused = store->insert(id(3), Invocation{"f", std::string(40, 'z'), {}}, kStart + 2);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), "the asynchronous call store is full (100 bytes); try again later");
}

TEST_F(CallStoreTest, ResultCountIsBounded) {
  StoreLimits limits;
  limits.maxResults = 2;
  auto store = open(limits);
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(store->insert(id(i), Invocation{"f", "", {}}, kStart + i));
    ASSERT_EQ(test::must(store->claim(kStart + i, 1, 1 << 20, true)).calls.size(), 1u);
    ASSERT_TRUE(test::must(store->finish(id(i), Attempt::succeeded, CallResult{}, kStart + i)));
  }
  EXPECT_EQ(store->results(), 2u);
  EXPECT_FALSE(test::must(store->find(id(1), kStart + 4)));  // the oldest went
  EXPECT_TRUE(test::must(store->find(id(3), kStart + 4)));
}

TEST_F(CallStoreTest, ClaimKeepsToTheByteBudgetInDueOrder) {
  auto store = open();
  ASSERT_TRUE(store->insert(id(1), Invocation{"f", std::string(6, 'a'), {}}, kStart));
  ASSERT_TRUE(store->insert(id(2), Invocation{"f", std::string(5, 'b'), {}}, kStart + 1));
  ASSERT_TRUE(store->insert(id(3), Invocation{"f", std::string(1, 'c'), {}}, kStart + 2));
  // 6 + 5 > 10: only the first, and the later small one does not overtake.
  EXPECT_EQ(test::must(store->claim(kStart + 3, 10, 10, false)).calls.size(), 1u);
  // Nothing fits 0 bytes, unless one call of any size may go.
  EXPECT_TRUE(test::must(store->claim(kStart + 3, 10, 0, false)).calls.empty());
  EXPECT_EQ(test::must(store->claim(kStart + 3, 10, 0, true)).calls.size(), 1u);
}

TEST_F(CallStoreTest, DroppingAFunctionForgetsItsCalls) {
  auto store = open();
  ASSERT_TRUE(store->insert(id(1), Invocation{"gone", "x", {}}, kStart));
  ASSERT_TRUE(store->insert(id(2), Invocation{"gone", "y", {}}, kStart));
  ASSERT_TRUE(store->insert(id(3), Invocation{"kept", "z", {}}, kStart));
  ASSERT_EQ(test::must(store->claim(kStart, 1, 1 << 20, true)).calls.size(), 1u);  // id(1) runs
  EXPECT_EQ(test::must(store->drop("gone")), 2u);
  EXPECT_FALSE(test::must(store->find(id(1), kStart)));
  EXPECT_FALSE(test::must(store->find(id(2), kStart)));
  EXPECT_TRUE(test::must(store->find(id(3), kStart)));
  EXPECT_EQ(store->bytes(), 1u + 2u);  // "z" and "[]"
  // The running call's end finds nothing to record.
  EXPECT_FALSE(test::must(store->finish(id(1), Attempt::succeeded, CallResult{}, kStart)));
}

TEST_F(CallStoreTest, PolicyIsTakenWhenTheCallIsAccepted) {
  auto store = open();
  store->setPolicy("f", RetryPolicy{0, 10ms});
  ASSERT_TRUE(store->insert(id(1), Invocation{"f", "", {}}, kStart));
  store->setPolicy("f", RetryPolicy{5, 10ms});
  ASSERT_EQ(test::must(store->claim(kStart, 1, 1 << 20, true)).calls.size(), 1u);
  auto finished = test::must(store->finish(id(1), Attempt::failed, CallResult{CallStatus::timeout, "slow"}, kStart));
  ASSERT_TRUE(finished);
  EXPECT_EQ(finished->state, State::failed);
}

}  // namespace
}  // namespace tinyfaas::async_calls
