#include "proxy/router.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <optional>

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
      asio::co_spawn(io, [upstream, this]() -> asio::awaitable<void> {
        const Invocation invocation{"f", "", {}};
        co_await upstream->call(invocation);
        ++finished;
      }, asio::detached);
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
  asio::co_spawn(io, [&router, name, limit, &out]() -> asio::awaitable<void> {
    auto pick = co_await router.pickOrWait(name, limit);
    out = pick.upstream ? pick.upstream->instanceId() : "<none>";
  }, asio::detached);
}

TEST_F(RouterTest, HeldCallWaitsForTheFirstInstanceAndIsCounted) {
  auto held = std::make_shared<std::atomic<std::size_t>>(0);
  router.publish("f", {}, held);
  std::optional<std::string> got;
  waitForPick(io, router, "f", 10s, got);
  ASSERT_TRUE(test::runUntil(io, [&] { return held->load() == 1; }));
  EXPECT_FALSE(got);
  router.publish("f", {instance("f.1")}, held);
  ASSERT_TRUE(test::runUntil(io, [&] { return got.has_value(); }));
  EXPECT_EQ(*got, "f.1");
  EXPECT_EQ(held->load(), 0u);
}

TEST_F(RouterTest, HeldCallGivesUpAfterItsLimit) {
  auto held = std::make_shared<std::atomic<std::size_t>>(0);
  router.publish("f", {}, held);
  std::optional<std::string> got;
  waitForPick(io, router, "f", 30ms, got);
  ASSERT_TRUE(test::runUntil(io, [&] { return got.has_value(); }));
  EXPECT_EQ(*got, "<none>");
  EXPECT_EQ(held->load(), 0u);
}

TEST_F(RouterTest, WithoutAHoldCounterNoCallWaits) {
  router.publish("f", {});
  std::optional<std::string> got;
  waitForPick(io, router, "f", 10s, got);
  ASSERT_TRUE(test::runUntil(io, [&] { return got.has_value(); }, 1s));
  EXPECT_EQ(*got, "<none>");
}

TEST_F(RouterTest, RemovingAFunctionReleasesItsHeldCalls) {
  router.publish("f", {}, std::make_shared<std::atomic<std::size_t>>(0));
  std::optional<std::string> got;
  waitForPick(io, router, "f", 10s, got);
  test::runFor(io, 10ms);
  router.remove("f");
  ASSERT_TRUE(test::runUntil(io, [&] { return got.has_value(); }, 1s));
  EXPECT_EQ(*got, "<none>");
}

}  // namespace
}  // namespace tinyfaas
