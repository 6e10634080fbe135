#include "proxy/proxy.hpp"

#include <gtest/gtest.h>

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

class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override { handler = FakeHandler::start(io.get_executor(), dir / "echo.sock"); }
  void TearDown() override {
    handler->openGate();
    handler->stop();
    test::runFor(io, 20ms);
  }

  std::shared_ptr<Upstream> echoInstance() {
    return std::make_shared<Upstream>(io.get_executor(), "echo.1", dir / "echo.sock", UpstreamOptions{});
  }

  // A fixture member, not a local: detached calls still running when a test
  // body ends finish in TearDown and touch the Proxy then.
  Proxy& makeProxy(ProxyOptions options = {}) {
    proxy = std::make_unique<Proxy>(io.get_executor(), router, options);
    return *proxy;
  }

  CallResult invoke(Proxy& proxy, Invocation invocation) { return test::run(io, proxy.invoke(std::move(invocation))); }

  asio::io_context io;
  test::TempDir dir;
  std::shared_ptr<FakeHandler> handler;
  Router router;
  std::unique_ptr<Proxy> proxy;
};

TEST_F(ProxyTest, UnknownFunctionIsNotFound) {
  Proxy& proxy = makeProxy();
  auto result = invoke(proxy, {"nope", "x", {}});
  EXPECT_EQ(result.status, CallStatus::notFound);
  EXPECT_EQ(result.body, "function nope not found");
}

TEST_F(ProxyTest, FunctionWithoutInstancesIsUnavailable) {
  router.publish("echo", {});
  Proxy& proxy = makeProxy();
  auto result = invoke(proxy, {"echo", "x", {}});
  EXPECT_EQ(result.status, CallStatus::unavailable);
  EXPECT_EQ(result.body, "function echo has no running instance");
}

TEST_F(ProxyTest, RelaysTheCallToAnInstance) {
  router.publish("echo", {echoInstance()});
  Proxy& proxy = makeProxy();
  auto result = invoke(proxy, {"echo", "hello", {{"Lab", "1"}}});
  EXPECT_EQ(result.status, CallStatus::ok);
  EXPECT_EQ(result.body, "hello");
  ASSERT_EQ(handler->requests().size(), 1u);
  EXPECT_EQ(handler->requests()[0].headers.at(1), (std::pair<std::string, std::string>{"Lab", "1"}));
}

TEST_F(ProxyTest, CallInProgressFinishesOnItsInstanceAfterARouteSwap) {
  router.publish("echo", {echoInstance()});
  Proxy& proxy = makeProxy();
  handler->mode = FakeHandler::Mode::gated;
  std::optional<CallResult> result;
  // Named, not a temporary in the co_await expression: GCC 12 destroys
  // those twice.
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        Invocation invocation{"echo", "old", {}};
        result = co_await proxy.invoke(std::move(invocation));
      },
      asio::detached);
  ASSERT_TRUE(test::runUntil(io, [&] { return handler->inFlight() == 1; }));
  router.publish("echo", {});  // the old instance is gone from the routes
  handler->openGate();
  ASSERT_TRUE(test::runUntil(io, [&] { return result.has_value(); }));
  EXPECT_EQ(result->status, CallStatus::ok);
  EXPECT_EQ(result->body, "old");
}

TEST_F(ProxyTest, CallRefusedByADeadInstanceGoesToAnother) {
  // The manager has not yet taken the dead instance out of the routes.
  auto dead = std::make_shared<Upstream>(io.get_executor(), "echo.2", dir / "dead.sock", UpstreamOptions{});
  router.publish("echo", {dead, echoInstance()});
  Proxy& proxy = makeProxy();
  for (int i = 0; i < 6; ++i) {
    auto result = invoke(proxy, {"echo", "call " + std::to_string(i), {}});
    EXPECT_EQ(result.status, CallStatus::ok) << result.body;
  }
  EXPECT_EQ(handler->fnCalls(), 6u);
}

TEST_F(ProxyTest, OnlyInstanceRefusingIsUnavailable) {
  auto dead = std::make_shared<Upstream>(io.get_executor(), "echo.2", dir / "dead.sock", UpstreamOptions{});
  router.publish("echo", {dead});
  Proxy& proxy = makeProxy();
  auto result = invoke(proxy, {"echo", "x", {}});
  EXPECT_EQ(result.status, CallStatus::unavailable);
  EXPECT_EQ(result.body.rfind("cannot connect to function instance", 0), 0u) << result.body;
}

TEST_F(ProxyTest, FunctionErrorsAreNotRetriedElsewhere) {
  auto other = FakeHandler::start(io.get_executor(), dir / "other.sock", "other");
  router.publish("echo", {echoInstance(), std::make_shared<Upstream>(io.get_executor(), "echo.2", dir / "other.sock",
                                                                     UpstreamOptions{})});
  handler->status = other->status = 500;
  handler->body = other->body = "boom";
  Proxy& proxy = makeProxy();
  auto result = invoke(proxy, {"echo", "x", {}});
  EXPECT_EQ(result.status, CallStatus::functionError);
  EXPECT_EQ(handler->fnCalls() + other->fnCalls(), 1u);
  other->stop();
}

}  // namespace
}  // namespace tinyfaas
