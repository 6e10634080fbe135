#include "async_calls/call_queue.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "async_calls/call_id.hpp"
#include "fake_invoker.hpp"
#include "test_support.hpp"

namespace tinyfaas::async_calls {
namespace {

namespace asio = boost::asio;
using State = AsyncCallRecord::State;
using namespace std::chrono_literals;

struct Lines final : LogSink {
  void append(std::string_view function, std::string_view, std::string_view line) override {
    lines.push_back(std::string(function) + ": " + std::string(line));
  }
  std::vector<std::string> lines;
};

class CallQueueTest : public ::testing::Test {
 protected:
  CallQueue& make(QueueOptions options = {}) {
    options.database = dir / "calls.db";
    queue = test::must(CallQueue::create(io.get_executor(), io.get_executor(), fake, logs, std::move(options)));
    queue->start();
    return *queue;
  }
  DetachedCall enqueue(const std::string& function, std::string payload = "") {
    return test::run(io, queue->enqueue(Invocation{function, std::move(payload), {}}));
  }
  std::optional<AsyncCallRecord> find(const std::string& id) { return test::run(io, queue->find(id)); }
  void stop() {
    queue->stopAccepting();
    test::run(io, queue->join());
  }

  test::TempDir dir;
  asio::io_context io;
  test::FakeInvoker fake;
  Lines logs;
  std::unique_ptr<CallQueue> queue;
};

TEST_F(CallQueueTest, RunsAcceptedCallsAndKeepsTheirResults) {
  fake.set("echo", test::echoes());
  make();
  DetachedCall accepted = enqueue("echo", "hello");
  ASSERT_EQ(accepted.status, CallStatus::ok);
  EXPECT_TRUE(isCallId(accepted.id));
  ASSERT_TRUE(test::runUntil(io, [&] { return fake.completed("echo") == 1; }));
  std::optional<AsyncCallRecord> record;
  ASSERT_TRUE(test::runUntil(io, [&] {
    record = find(accepted.id);
    return record && record->state == State::done;
  }));
  EXPECT_EQ(record->result.body, "hello");
  EXPECT_FALSE(find(std::string(32, '0')));
  EXPECT_FALSE(find("not-an-id"));
  stop();
}

TEST_F(CallQueueTest, RetriesThenDeadLettersAndLogsEachAttempt) {
  fake.set("flaky", test::answers(CallStatus::functionError, "boom"));
  make();
  test::run(io, queue->setPolicy("flaky", RetryPolicy{2, 10ms}));
  DetachedCall accepted = enqueue("flaky");
  ASSERT_EQ(accepted.status, CallStatus::ok);
  ASSERT_TRUE(test::runUntil(io, [&] {
    auto record = find(accepted.id);
    return record && record->state == State::failed;
  }));
  EXPECT_EQ(fake.calls("flaky"), 3u);
  ASSERT_TRUE(test::runUntil(io, [&] { return logs.lines.size() == 3; }));
  EXPECT_EQ(logs.lines[0], "flaky: asynchronous call " + accepted.id +
                               ": attempt 1 of 3 failed (function error): boom; retrying in 10 ms");
  EXPECT_EQ(logs.lines[1], "flaky: asynchronous call " + accepted.id +
                               ": attempt 2 of 3 failed (function error): boom; retrying in 20 ms");
  EXPECT_EQ(logs.lines[2], "flaky: asynchronous call " + accepted.id +
                               ": attempt 3 of 3 failed (function error): boom; no retries left: dead-lettered "
                               "(GET /calls?name=flaky&state=failed)");
  auto failed = test::run(io, queue->list("flaky", State::failed, 10));
  ASSERT_TRUE(failed);
  ASSERT_EQ(failed->size(), 1u);
  EXPECT_EQ((*failed)[0].id, accepted.id);
  EXPECT_EQ(test::run(io, queue->stats())["flaky"].deadLettered, 1u);
  stop();
}

TEST_F(CallQueueTest, KeepsToTheInFlightLimit) {
  fake.set("slow", test::gated("done"));
  QueueOptions options;
  options.maxInFlight = 2;
  make(options);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(enqueue("slow").status, CallStatus::ok);
  ASSERT_TRUE(test::runUntil(io, [&] { return fake.waiting() == 2; }));
  test::runFor(io, 50ms);
  EXPECT_EQ(fake.calls("slow"), 2u);
  EXPECT_EQ(queue->callsInFlight(), 2u);
  // Each finished call makes room for the next.
  ASSERT_TRUE(test::runUntil(io, [&] {
    fake.openGates();
    return fake.completed("slow") == 5;
  }));
  stop();
}

TEST_F(CallQueueTest, ABurstOfCallsIsStoredTogetherAndEveryOneRuns) {
  test::Behaviour held = test::echoes();
  held.gated = true;  // none finishes (and frees its place) before all were answered
  fake.set("echo", held);
  QueueOptions options;
  options.limits.queuePerFunction = 150;
  make(options);
  // 200 enqueues at once: many share a commit, the 50 beyond the queue limit
  // are refused, and refusals in a batch do not touch the others.
  std::vector<DetachedCall> answers(200);
  std::size_t answered = 0;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    auto one = [this, i, &answers, &answered]() -> asio::awaitable<void> {
      // Named, not a temporary in the co_await expression (GCC 12).
      Invocation call{"echo", std::to_string(i), {}};
      answers[i] = co_await queue->enqueue(std::move(call));
      ++answered;
    };
    asio::co_spawn(io, one, asio::detached);
  }
  ASSERT_TRUE(test::runUntil(io, [&] { return answered == answers.size(); }));
  std::size_t accepted = 0;
  for (const auto& answer : answers) accepted += answer.status == CallStatus::ok ? 1 : 0;
  EXPECT_EQ(accepted, 150u);
  ASSERT_TRUE(test::runUntil(io, [&] {
    fake.openGates();
    return fake.completed("echo") == 150;
  }));
  for (std::size_t i = 0; i < answers.size(); ++i) {
    if (answers[i].status != CallStatus::ok) continue;
    std::optional<AsyncCallRecord> record;
    ASSERT_TRUE(test::runUntil(io, [&] {
      record = find(answers[i].id);
      return record && record->state == State::done;
    }));
    EXPECT_EQ(record->result.body, std::to_string(i));
  }
  stop();
}

TEST_F(CallQueueTest, QueueLimitRefusesWithAReason) {
  fake.set("slow", test::gated("done"));
  QueueOptions options;
  options.limits.queuePerFunction = 1;
  make(options);
  ASSERT_EQ(enqueue("slow").status, CallStatus::ok);
  DetachedCall refused = enqueue("slow");
  EXPECT_EQ(refused.status, CallStatus::overloaded);
  EXPECT_EQ(refused.reason, "the asynchronous queue of slow is full (1 calls waiting); try again later");
  fake.openGates();
  ASSERT_TRUE(test::runUntil(io, [&] {
    fake.openGates();
    return fake.completed("slow") == 1;
  }));
  stop();
}

TEST_F(CallQueueTest, CallsRunningAtACrashRunAgainAfterTheRestart) {
  DetachedCall first;
  DetachedCall second;
  {
    // A daemon that dies with both calls running: its loop and queue go
    // without any call finishing.
    asio::io_context crashed;
    test::FakeInvoker stuck;
    stuck.set("echo", test::gated("never"));
    QueueOptions options;
    options.database = dir / "calls.db";
    auto dying = test::must(CallQueue::create(crashed.get_executor(), crashed.get_executor(), stuck, logs, options));
    dying->start();
    first = test::run(crashed, dying->enqueue(Invocation{"echo", "1", {}}));
    second = test::run(crashed, dying->enqueue(Invocation{"echo", "2", {}}));
    ASSERT_TRUE(test::runUntil(crashed, [&] { return stuck.waiting() == 2; }));
  }
  fake.set("echo", test::echoes());
  make();
  ASSERT_TRUE(test::runUntil(io, [&] {
    auto a = find(first.id);
    auto b = find(second.id);
    return a && b && a->state == State::done && b->state == State::done;
  }));
  EXPECT_EQ(find(first.id)->result.body, "1");
  EXPECT_EQ(find(second.id)->result.body, "2");
  stop();
  EXPECT_EQ(test::run(io, queue->enqueue(Invocation{"echo", "", {}})).status, CallStatus::unavailable);
}

}  // namespace
}  // namespace tinyfaas::async_calls
