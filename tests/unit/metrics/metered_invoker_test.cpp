#include "metrics/metered_invoker.hpp"

#include <gtest/gtest.h>

#include <map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/async.hpp"
#include "proxy/router.hpp"
#include "test_support.hpp"

namespace tinyfaas::metrics {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Answers each function with a fixed status; calls to "slow" wait for the
// gate to open, so a test can look at them in flight.
class FakeInvoker final : public Invoker {
 public:
  explicit FakeInvoker(asio::io_context& io) : gate(io, asio::steady_timer::time_point::max()) {}

  asio::awaitable<CallResult> invoke(Invocation invocation) override {
    if (invocation.function == "slow") co_await gate.async_wait(useTuple);
    auto it = statuses.find(invocation.function);
    co_return CallResult{it == statuses.end() ? CallStatus::notFound : it->second, "", false};
  }
  CallStatus invokeDetached(Invocation invocation) override {
    auto it = statuses.find(invocation.function);
    return it == statuses.end() ? CallStatus::notFound : detachedAnswer;
  }

  std::map<std::string, CallStatus> statuses;
  CallStatus detachedAnswer = CallStatus::ok;
  asio::steady_timer gate;
};

class MeteredInvokerTest : public ::testing::Test {
 protected:
  void deploy(const std::string& name, CallStatus status) {
    router.publish(name, {});
    fake.statuses[name] = status;
  }
  CallResult call(MeteredInvoker& invoker, const std::string& name) {
    return test::run(io, invoker.invoke(Invocation{name, "", {}}));
  }
  CallSnapshot snapshot() { return test::run(io, metrics.snapshot()); }

  asio::io_context io;
  Router router;
  FakeInvoker fake{io};
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
  fake.gate.cancel();
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
  fake.gate.cancel();
  ASSERT_TRUE(test::runUntil(io, [&] { return done; }));
  EXPECT_EQ(snapshot().functions.count("slow"), 1u);  // counted its end
  EXPECT_EQ(snapshot().functions.count("slow"), 0u);
}

TEST_F(MeteredInvokerTest, DetachedCalls) {
  deploy("echo", CallStatus::ok);
  EXPECT_EQ(http.invokeDetached(Invocation{"echo", "", {}}), CallStatus::ok);
  fake.detachedAnswer = CallStatus::overloaded;
  EXPECT_EQ(http.invokeDetached(Invocation{"echo", "", {}}), CallStatus::overloaded);
  EXPECT_EQ(http.invokeDetached(Invocation{"ghost", "", {}}), CallStatus::notFound);
  auto s = snapshot();
  const auto& echo = s.functions.at("echo").of(Protocol::http);
  EXPECT_EQ(echo.asyncAccepted, 1u);
  EXPECT_EQ(echo.calls, 1u);
  EXPECT_EQ(echo.outcomes[static_cast<std::size_t>(CallStatus::overloaded)], 1u);
  EXPECT_EQ(s.unknownFunctionCalls[static_cast<std::size_t>(Protocol::http)], 1u);
}

}  // namespace
}  // namespace tinyfaas::metrics
