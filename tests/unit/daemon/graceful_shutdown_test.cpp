#include "daemon/graceful_shutdown.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "test_support.hpp"

namespace tinyfaas {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// An endpoint whose calls end when the test says so.
struct FakeEndpoint final : Drainable {
  std::size_t calls = 0;
  bool accepting = true;
  bool unacknowledged = false;  // an answer its client never acknowledges
  std::vector<std::string> cuts;
  void stopAccepting() override { accepting = false; }
  std::size_t callsInFlight() const override { return calls; }
  bool delivering() const override { return unacknowledged; }
  void cutShort(std::string_view reason) override {
    cuts.emplace_back(reason);
    calls = 0;
  }
};

class GracefulShutdownTest : public ::testing::Test {
 protected:
  GracefulShutdown make(std::chrono::seconds timeout) {
    return GracefulShutdown({{"one", &one, io.get_executor()}, {"two", &two, io.get_executor()}}, timeout);
  }

  // Ends the calls of `endpoint` after `delay`.
  void finishLater(FakeEndpoint& endpoint, std::chrono::milliseconds delay) {
    auto timer = std::make_shared<asio::steady_timer>(io, delay);
    timer->async_wait([timer, &endpoint](boost::system::error_code) { endpoint.calls = 0; });
  }

  asio::io_context io;
  FakeEndpoint one;
  FakeEndpoint two;
};

TEST_F(GracefulShutdownTest, StopsAcceptingEverywhereAndWaitsForCallsInFlight) {
  one.calls = 2;
  two.calls = 1;
  finishLater(one, 100ms);
  finishLater(two, 200ms);
  auto shutdown = make(30s);
  const auto start = std::chrono::steady_clock::now();
  test::run(io, shutdown.drain());
  EXPECT_FALSE(one.accepting);
  EXPECT_FALSE(two.accepting);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
  EXPECT_TRUE(one.cuts.empty());
  EXPECT_TRUE(two.cuts.empty());
}

TEST_F(GracefulShutdownTest, CutsCallsStillRunningAtTheDeadline) {
  one.calls = 1;
  auto shutdown = make(1s);
  const auto start = std::chrono::steady_clock::now();
  test::run(io, shutdown.drain());
  EXPECT_GE(std::chrono::steady_clock::now() - start, 1s);
  ASSERT_EQ(one.cuts.size(), 1u);
  EXPECT_NE(one.cuts[0].find("shutdown timeout (1 s)"), std::string::npos) << one.cuts[0];
  EXPECT_EQ(two.cuts.size(), 1u);  // every endpoint is told; it had nothing to cut
}

TEST_F(GracefulShutdownTest, HurryCutsTheWaitShort) {
  one.calls = 1;
  auto shutdown = make(3600s);
  asio::post(io, [&] { shutdown.hurry(); });
  test::run(io, shutdown.drain());
  ASSERT_EQ(one.cuts.size(), 1u);
  EXPECT_NE(one.cuts[0].find("second signal"), std::string::npos) << one.cuts[0];
}

TEST_F(GracefulShutdownTest, NothingInFlightEndsAtOnce) {
  auto shutdown = make(3600s);
  test::run(io, shutdown.drain(), 5s);
  EXPECT_FALSE(one.accepting);
  EXPECT_TRUE(one.cuts.empty());
}

// A CoAP client that gave up before its answer never acknowledges it: the
// drain stops waiting a few seconds after the last call, not at the timeout.
TEST_F(GracefulShutdownTest, AnswersNobodyAcknowledgesDoNotHoldTheDrain) {
  one.calls = 1;
  two.unacknowledged = true;
  finishLater(one, 100ms);
  auto shutdown = make(3600s);
  const auto start = std::chrono::steady_clock::now();
  test::run(io, shutdown.drain(), 10s);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 3s);
  EXPECT_LT(took, 6s);
  EXPECT_TRUE(one.cuts.empty());
  EXPECT_TRUE(two.cuts.empty());
}

}  // namespace
}  // namespace tinyfaas
