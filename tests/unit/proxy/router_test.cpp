#include "proxy/router.hpp"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "fake_handler.hpp"
#include "test_support.hpp"

namespace tinyfaas {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::FakeHandler;

class RouterTest : public ::testing::Test {
 protected:
  // Instances whose sockets lead nowhere: enough for everything but load.
  std::shared_ptr<Upstream> instance(const std::string& id) {
    return std::make_shared<Upstream>(io.get_executor(), id, dir / (id + ".sock"), UpstreamOptions{});
  }

  // An instance with `calls` calls held open by a gated fake handler.
  std::shared_ptr<Upstream> busyInstance(const std::string& id, int calls) {
    auto handler = FakeHandler::start(io.get_executor(), dir / (id + ".sock"), id);
    handler->mode = FakeHandler::Mode::gated;
    handlers.push_back(handler);
    auto upstream = instance(id);
    for (int i = 0; i < calls; ++i) {
      asio::co_spawn(
          io,
          [upstream, this]() -> asio::awaitable<void> {
            const Invocation invocation{"f", "", {}};
            co_await upstream->call(invocation);
            ++finished;
          },
          asio::detached);
    }
    EXPECT_TRUE(test::runUntil(io, [&] { return upstream->outstanding() == static_cast<std::size_t>(calls); }));
    return upstream;
  }

  void TearDown() override {
    for (auto& handler : handlers) handler->openGate();
    test::runUntil(io, [&] { return finished == expectedFinished(); });
    for (auto& handler : handlers) handler->stop();
    test::runFor(io, 10ms);
  }
  int expectedFinished() const {
    int total = 0;
    for (const auto& handler : handlers) total += static_cast<int>(handler->fnCalls());
    return total;
  }

  std::size_t held(const std::string& name) {
    const RouterLoad load = router.load();
    auto it = load.held.find(name);
    return it == load.held.end() ? 0 : it->second;
  }

  std::string pickId(const std::string& name) {
    auto pick = router.pick(name);
    return pick.upstream ? pick.upstream->instanceId() : "<none>";
  }

  asio::io_context io;
  test::TempDir dir;
  Router router;
  std::vector<std::shared_ptr<FakeHandler>> handlers;
  int finished = 0;
};

TEST_F(RouterTest, UnknownFunctionIsNotKnown) {
  auto pick = router.pick("nope");
  EXPECT_FALSE(pick.known);
  EXPECT_EQ(pick.upstream, nullptr);
  EXPECT_FALSE(router.contains("nope"));
}

TEST_F(RouterTest, PublishedEmptySetIsKnownWithoutInstance) {
  router.publish("f", {});
  auto pick = router.pick("f");
  EXPECT_TRUE(pick.known);
  EXPECT_EQ(pick.upstream, nullptr);
  EXPECT_TRUE(router.contains("f"));
}

TEST_F(RouterTest, SingleInstanceIsAlwaysPicked) {
  auto a = instance("f.1");
  router.publish("f", {a});
  for (int i = 0; i < 5; ++i) {
    auto pick = router.pick("f");
    EXPECT_TRUE(pick.known);
    EXPECT_EQ(pick.upstream, a);
  }
}

TEST_F(RouterTest, IdleInstancesTakeTurns) {
  router.publish("f", {instance("f.1"), instance("f.2"), instance("f.3")});
  std::map<std::string, int> counts;
  std::string previous;
  for (int i = 0; i < 30; ++i) {
    const std::string id = pickId("f");
    EXPECT_NE(id, previous);
    previous = id;
    ++counts[id];
  }
  EXPECT_EQ(counts, (std::map<std::string, int>{{"f.1", 10}, {"f.2", 10}, {"f.3", 10}}));
}

TEST_F(RouterTest, PicksTheInstanceWithFewestOutstandingCalls) {
  auto busy = busyInstance("f.1", 2);
  auto lessBusy = busyInstance("f.2", 1);
  auto idle = instance("f.3");
  router.publish("f", {busy, lessBusy, idle});
  for (int i = 0; i < 6; ++i) EXPECT_EQ(pickId("f"), "f.3");
}

TEST_F(RouterTest, EveryLeastBusyInstanceGetsPicked) {
  auto busy = busyInstance("f.1", 1);
  router.publish("f", {busy, instance("f.2"), instance("f.3")});
  std::map<std::string, int> counts;
  for (int i = 0; i < 12; ++i) ++counts[pickId("f")];
  EXPECT_EQ(counts.count("f.1"), 0u);
  EXPECT_GT(counts["f.2"], 0);
  EXPECT_GT(counts["f.3"], 0);
}

TEST_F(RouterTest, TiesAmongTheLeastBusyShareEvenly) {
  auto busy = busyInstance("f.1", 1);
  router.publish("f", {busy, instance("f.2"), instance("f.3")});
  std::map<std::string, int> counts;
  for (int i = 0; i < 12; ++i) ++counts[pickId("f")];
  EXPECT_EQ(counts["f.2"], 6);
  EXPECT_EQ(counts["f.3"], 6);
}

TEST_F(RouterTest, AStuckInstanceIsPickedOnlyWhenEveryInstanceIsStuck) {
  // A call there outlived its timeout and grace: the instance is about to be
  // replaced, so even a busy instance is the better choice.
  auto handler = FakeHandler::start(io.get_executor(), dir / "f.1.sock", "f.1");
  handler->mode = FakeHandler::Mode::never;
  UpstreamOptions options;
  options.callTimeout = 50ms;
  options.timeoutGrace = 0ms;
  auto stuck = std::make_shared<Upstream>(io.get_executor(), "f.1", dir / "f.1.sock", options);
  test::run(io, [stuck]() -> asio::awaitable<CallResult> {
    const Invocation invocation{"f", "", {}};
    co_return co_await stuck->call(invocation);
  }());
  ASSERT_TRUE(test::runUntil(io, [&] { return stuck->stuck() && stuck->outstanding() == 0; }));
  auto busy = busyInstance("f.2", 3);
  router.publish("f", {stuck, busy});
  for (int i = 0; i < 4; ++i) EXPECT_EQ(pickId("f"), "f.2");
  router.publish("f", {stuck});
  EXPECT_EQ(pickId("f"), "f.1");
  handler->stop();
}

TEST_F(RouterTest, PublishReplacesTheWholeSet) {
  auto oldInstance = instance("f.1");
  router.publish("f", {oldInstance});
  auto held = router.pick("f").upstream;  // a call in progress keeps its instance
  router.publish("f", {instance("f.2"), instance("f.3")});
  for (int i = 0; i < 10; ++i) EXPECT_NE(pickId("f"), "f.1");
  EXPECT_EQ(held, oldInstance);
  EXPECT_EQ(held->instanceId(), "f.1");
  EXPECT_EQ(oldInstance.use_count(), 2);  // the router let go of it
}

TEST_F(RouterTest, PublishingAnEmptySetKeepsTheFunctionKnown) {
  router.publish("f", {instance("f.1")});
  router.publish("f", {});
  auto pick = router.pick("f");
  EXPECT_TRUE(pick.known);
  EXPECT_EQ(pick.upstream, nullptr);
}

TEST_F(RouterTest, RemoveForgetsTheFunction) {
  router.publish("f", {instance("f.1")});
  router.publish("g", {instance("g.1")});
  router.remove("f");
  EXPECT_FALSE(router.pick("f").known);
  EXPECT_FALSE(router.contains("f"));
  EXPECT_EQ(pickId("g"), "g.1");
  router.remove("never");  // no-op
  EXPECT_TRUE(router.contains("g"));
}

TEST_F(RouterTest, ClearForgetsEveryFunction) {
  router.publish("f", {instance("f.1")});
  router.publish("g", {});
  router.clear();
  EXPECT_FALSE(router.pick("f").known);
  EXPECT_FALSE(router.contains("g"));
  router.publish("f", {instance("f.2")});
  EXPECT_EQ(pickId("f"), "f.2");
}

TEST_F(RouterTest, FunctionsAreIndependent) {
  router.publish("f", {instance("f.1")});
  router.publish("g", {instance("g.1"), instance("g.2")});
  EXPECT_EQ(pickId("f"), "f.1");
  EXPECT_EQ(pickId("f"), "f.1");
  EXPECT_NE(pickId("g"), "f.1");
  EXPECT_FALSE(router.contains("F"));  // names are case-sensitive
}

// Starts pickOrWait on `name`; `out` gets the instance it found, or "<none>".
void waitForPick(asio::io_context& io, Router& router, const std::string& name, std::chrono::milliseconds limit,
                 std::optional<std::string>& out) {
  asio::co_spawn(
      io,
      [&router, name, limit, &out]() -> asio::awaitable<void> {
        auto pick = co_await router.pickOrWait(name, limit);
        out = pick.upstream ? pick.upstream->instanceId() : "<none>";
      },
      asio::detached);
}

TEST_F(RouterTest, HeldCallWaitsForTheFirstInstanceAndIsCounted) {
  router.publish("f", {}, true);
  std::optional<std::string> got;
  waitForPick(io, router, "f", 10s, got);
  ASSERT_TRUE(test::runUntil(io, [&] { return held("f") == 1; }));
  EXPECT_FALSE(got);
  router.publish("f", {instance("f.1")}, true);
  ASSERT_TRUE(test::runUntil(io, [&] { return got.has_value(); }));
  EXPECT_EQ(*got, "f.1");
  EXPECT_EQ(held("f"), 0u);
}

TEST_F(RouterTest, TheFirstCallHeldForAFunctionWithoutInstancesIsAnnounced) {
  int announced = 0;
  router.onHeld([&] { ++announced; });
  router.publish("f", {}, true);
  std::optional<std::string> first, second;
  waitForPick(io, router, "f", 10s, first);
  waitForPick(io, router, "f", 10s, second);
  ASSERT_TRUE(test::runUntil(io, [&] { return held("f") == 2; }));
  // Once per wait for an instance, not per call: the scaler needs one nudge.
  EXPECT_EQ(announced, 1);
  router.publish("f", {instance("f.1")}, true);
  ASSERT_TRUE(test::runUntil(io, [&] { return first && second; }));
  EXPECT_EQ(announced, 1) << "a call that finds an instance is not held";
  std::optional<std::string> third;
  waitForPick(io, router, "f", 10s, third);
  ASSERT_TRUE(test::runUntil(io, [&] { return third.has_value(); }));
  EXPECT_EQ(announced, 1);
}

TEST_F(RouterTest, HeldCallGivesUpAfterItsLimit) {
  router.publish("f", {}, true);
  std::optional<std::string> got;
  waitForPick(io, router, "f", 30ms, got);
  ASSERT_TRUE(test::runUntil(io, [&] { return got.has_value(); }));
  EXPECT_EQ(*got, "<none>");
  EXPECT_EQ(held("f"), 0u);
}

TEST_F(RouterTest, WithoutAHoldCounterNoCallWaits) {
  router.publish("f", {});
  std::optional<std::string> got;
  waitForPick(io, router, "f", 10s, got);
  ASSERT_TRUE(test::runUntil(
      io, [&] { return got.has_value(); }, 1s));
  EXPECT_EQ(*got, "<none>");
}

TEST_F(RouterTest, RemovingAFunctionReleasesItsHeldCalls) {
  router.publish("f", {}, true);
  std::optional<std::string> got;
  waitForPick(io, router, "f", 10s, got);
  test::runFor(io, 10ms);
  router.remove("f");
  ASSERT_TRUE(test::runUntil(
      io, [&] { return got.has_value(); }, 1s));
  EXPECT_EQ(*got, "<none>");
}

// The manager publishes plain values; the router makes and keeps the upstreams.
class RouterInstancesTest : public RouterTest {
 protected:
  InstanceEndpoint endpoint(const std::string& id) { return {id, dir / (id + ".sock"), UpstreamOptions{}}; }

  // Starts `calls` calls on the upstream the router made for `id`, held open
  // by a gated fake handler.
  std::shared_ptr<FakeHandler> holdCalls(const std::string& id, int calls) {
    auto handler = FakeHandler::start(io.get_executor(), dir / (id + ".sock"), id);
    handler->mode = FakeHandler::Mode::gated;
    handlers.push_back(handler);
    for (int i = 0; i < calls; ++i) {
      asio::co_spawn(
          io,
          [this]() -> asio::awaitable<void> {
            auto pick = router.pick("f");
            const Invocation invocation{"f", "", {}};
            co_await pick.upstream->call(invocation);
            ++finished;
          },
          asio::detached);
    }
    EXPECT_TRUE(test::runUntil(io, [&] { return callsOn(id) == static_cast<std::size_t>(calls); }));
    return handler;
  }

  std::size_t callsOn(const std::string& id) {
    const RouterLoad load = router.load();
    auto it = load.calls.find(id);
    return it == load.calls.end() ? 0 : it->second;
  }

  // Starts drain(); `done` turns true when it returns.
  void startDrain(std::vector<std::string> ids, std::chrono::milliseconds limit, bool& done) {
    asio::co_spawn(io, router.drain(std::move(ids), std::chrono::steady_clock::now() + limit),
                   [&done](std::exception_ptr) { done = true; });
  }
};

TEST_F(RouterInstancesTest, AnInstanceKeepsItsUpstreamAcrossPublishes) {
  router.publishInstances(io.get_executor(), "f", {endpoint("f.1")});
  auto first = router.pick("f").upstream;
  ASSERT_TRUE(first);
  EXPECT_EQ(first->instanceId(), "f.1");
  router.publishInstances(io.get_executor(), "f", {endpoint("f.1"), endpoint("f.2")});
  std::set<std::shared_ptr<Upstream>> seen;
  for (int i = 0; i < 4; ++i) seen.insert(router.pick("f").upstream);
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen.contains(first));  // its pool of connections and its count stay
}

TEST_F(RouterInstancesTest, ReleaseLetsGoOfTheUpstreamAndItsCount) {
  router.publishInstances(io.get_executor(), "f", {endpoint("f.1")});
  std::weak_ptr<Upstream> upstream = router.pick("f").upstream;
  EXPECT_TRUE(router.load().calls.contains("f.1"));
  router.publishInstances(io.get_executor(), "f", {});
  EXPECT_FALSE(upstream.expired());  // unpublished, it may still be draining
  router.release("f.1");
  EXPECT_TRUE(upstream.expired());
  EXPECT_FALSE(router.load().calls.contains("f.1"));
}

TEST_F(RouterInstancesTest, LoadCountsTheCallsOnEachInstance) {
  router.publishInstances(io.get_executor(), "f", {endpoint("f.1")});
  holdCalls("f.1", 3);
  EXPECT_EQ(callsOn("f.1"), 3u);
}

TEST_F(RouterInstancesTest, DrainReturnsWhenTheLastCallEnds) {
  router.publishInstances(io.get_executor(), "f", {endpoint("f.1")});
  auto handler = holdCalls("f.1", 2);
  router.publishInstances(io.get_executor(), "f", {});
  bool drained = false;
  startDrain({"f.1"}, 10s, drained);
  test::runFor(io, 20ms);
  EXPECT_FALSE(drained);  // two calls still running there
  const auto opened = std::chrono::steady_clock::now();
  handler->openGate();
  ASSERT_TRUE(test::runUntil(io, [&] { return drained; }));
  EXPECT_EQ(callsOn("f.1"), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - opened, 5s);  // woken, not timed out
}

TEST_F(RouterInstancesTest, DrainGivesUpAtItsDeadline) {
  router.publishInstances(io.get_executor(), "f", {endpoint("f.1")});
  holdCalls("f.1", 1);
  bool drained = false;
  startDrain({"f.1"}, 30ms, drained);
  ASSERT_TRUE(test::runUntil(
      io, [&] { return drained; }, 2s));
  EXPECT_EQ(callsOn("f.1"), 1u);
}

TEST_F(RouterInstancesTest, DrainOfAnIdleOrUnknownInstanceReturnsAtOnce) {
  router.publishInstances(io.get_executor(), "f", {endpoint("f.1")});
  bool drained = false;
  startDrain({"f.1", "gone.7"}, 10s, drained);
  ASSERT_TRUE(test::runUntil(
      io, [&] { return drained; }, 1s));
}

TEST_F(RouterInstancesTest, AStuckInstanceIsReportedByItsId) {
  auto handler = FakeHandler::start(io.get_executor(), dir / "f.1.sock", "f.1");
  handler->mode = FakeHandler::Mode::never;
  std::vector<std::string> stuck;
  router.onStuck([&stuck](const std::string& id) { stuck.push_back(id); });
  InstanceEndpoint instance = endpoint("f.1");
  instance.options.callTimeout = 30ms;
  instance.options.timeoutGrace = 0ms;
  router.publishInstances(io.get_executor(), "f", {instance});
  auto result = test::run(io, [this]() -> asio::awaitable<CallResult> {
    auto pick = router.pick("f");
    const Invocation invocation{"f", "", {}};
    co_return co_await pick.upstream->call(invocation);
  }());
  EXPECT_EQ(result.status, CallStatus::timeout);
  ASSERT_TRUE(test::runUntil(io, [&] { return !stuck.empty(); }));
  EXPECT_EQ(stuck, std::vector<std::string>{"f.1"});
  handler->stop();
}

}  // namespace
}  // namespace tinyfaas
