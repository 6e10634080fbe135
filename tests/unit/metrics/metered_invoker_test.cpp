#include "metrics/metered_invoker.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "fake_invoker.hpp"
#include "proxy/router.hpp"
#include "test_support.hpp"

namespace tinyfaas::metrics {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

class MeteredInvokerTest : public ::testing::Test {
 protected:
  void deploy(const std::string& name, CallStatus status) {
    router.publish(name, {});
    // "slow" waits until the test opens the gates, so it can be seen in flight.
    test::Behaviour behaviour = test::answers(status, "");
    behaviour.gated = name == "slow";
    fake.set(name, behaviour);
  }
  CallResult call(MeteredInvoker& invoker, const std::string& name) {
    return test::run(io, invoker.invoke(Invocation{name, "", {}}));
  }
  CallStatus detach(MeteredInvoker& invoker, const std::string& name) {
    return test::run(io, invoker.invokeDetached(Invocation{name, "", {}})).status;
  }
  CallSnapshot snapshot() { return test::run(io, metrics.snapshot()); }

  asio::io_context io;
  Router router;
  test::FakeInvoker fake;
  CallMetrics metrics{io.get_executor(), router};
  MeteredInvoker http{fake, metrics, Protocol::http};
  MeteredInvoker coap{fake, metrics, Protocol::coap};
};

TEST_F(MeteredInvokerTest, CountsCallsAndErrorsPerProtocol) {
  deploy("echo", CallStatus::ok);
  deploy("fail", CallStatus::functionError);
  EXPECT_EQ(call(http, "echo").status, CallStatus::ok);
  call(http, "echo");
  call(coap, "echo");
  call(coap, "fail");

  auto s = snapshot();
  ASSERT_EQ(s.functions.count("echo"), 1u);
  const auto& echo = s.functions.at("echo");
  EXPECT_EQ(echo.of(Protocol::http).calls, 2u);
  EXPECT_EQ(echo.of(Protocol::coap).calls, 1u);
  EXPECT_EQ(echo.of(Protocol::grpc).calls, 0u);
  EXPECT_EQ(echo.errors(), 0u);
  EXPECT_EQ(echo.of(Protocol::http).latency.count(), 2u);
  const auto& fail = s.functions.at("fail");
  EXPECT_EQ(fail.of(Protocol::coap).outcomes[static_cast<std::size_t>(CallStatus::functionError)], 1u);
  EXPECT_EQ(fail.errors(), 1u);
}

TEST_F(MeteredInvokerTest, UnknownNamesAddNoSeries) {
  for (int i = 0; i < 50; ++i) EXPECT_EQ(call(http, "random" + std::to_string(i)).status, CallStatus::notFound);
  call(coap, "nope");
  auto s = snapshot();
  EXPECT_TRUE(s.functions.empty());
  EXPECT_EQ(s.unknownFunctionCalls[static_cast<std::size_t>(Protocol::http)], 50u);
  EXPECT_EQ(s.unknownFunctionCalls[static_cast<std::size_t>(Protocol::coap)], 1u);
}

TEST_F(MeteredInvokerTest, InFlightWhileTheCallRuns) {
  deploy("slow", CallStatus::ok);
  bool done = false;
  asio::co_spawn(io, http.invoke(Invocation{"slow", "", {}}), [&](std::exception_ptr, CallResult) { done = true; });
  test::runFor(io, 10ms);
  EXPECT_EQ(snapshot().functions.at("slow").of(Protocol::http).inFlight, 1u);
  fake.openGates();
  ASSERT_TRUE(test::runUntil(io, [&] { return done; }));
  auto after = snapshot().functions.at("slow").of(Protocol::http);
  EXPECT_EQ(after.inFlight, 0u);
  EXPECT_EQ(after.calls, 1u);
}

TEST_F(MeteredInvokerTest, RemovedFunctionsAreDroppedButNotWhileBusy) {
  deploy("echo", CallStatus::ok);
  deploy("slow", CallStatus::ok);
  call(http, "echo");
  bool done = false;
  asio::co_spawn(io, http.invoke(Invocation{"slow", "", {}}), [&](std::exception_ptr, CallResult) { done = true; });
  test::runFor(io, 10ms);
  router.remove("echo");
  router.remove("slow");
  auto s = snapshot();
  // This snapshot still has both; the next one only the busy one.
  EXPECT_EQ(s.functions.size(), 2u);
  EXPECT_EQ(snapshot().functions.count("echo"), 0u);
  EXPECT_EQ(snapshot().functions.count("slow"), 1u);
  fake.openGates();
  ASSERT_TRUE(test::runUntil(io, [&] { return done; }));
  EXPECT_EQ(snapshot().functions.count("slow"), 1u);  // counted its end
  EXPECT_EQ(snapshot().functions.count("slow"), 0u);
}

TEST_F(MeteredInvokerTest, DetachedCalls) {
  deploy("echo", CallStatus::ok);
  EXPECT_EQ(detach(http, "echo"), CallStatus::ok);
  test::Behaviour overloaded = test::answers(CallStatus::ok, "");
  overloaded.detached = CallStatus::overloaded;
  fake.set("echo", overloaded);
  EXPECT_EQ(detach(http, "echo"), CallStatus::overloaded);
  EXPECT_EQ(detach(http, "ghost"), CallStatus::notFound);
  auto s = snapshot();
  const auto& echo = s.functions.at("echo").of(Protocol::http);
  EXPECT_EQ(echo.asyncAccepted, 1u);
  EXPECT_EQ(echo.calls, 1u);
  EXPECT_EQ(echo.outcomes[static_cast<std::size_t>(CallStatus::overloaded)], 1u);
  EXPECT_EQ(s.unknownFunctionCalls[static_cast<std::size_t>(Protocol::http)], 1u);
}

}  // namespace
}  // namespace tinyfaas::metrics
