#include "proxy/upstream.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "fake_handler.hpp"
#include "test_support.hpp"
#include "util/unique_fd.hpp"

namespace tinyfaas {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::FakeHandler;

class UpstreamTest : public ::testing::Test {
 protected:
  void SetUp() override { handler = FakeHandler::start(io.get_executor(), dir / "handler.sock"); }

  void TearDown() override {
    upstream.reset();
    handler->stop();
    test::runFor(io, 20ms);
  }

  Upstream& make(UpstreamOptions options = {}) {
    upstream = std::make_shared<Upstream>(io.get_executor(), "echo.1", dir / "handler.sock", options,
                                          [this] { ++stuckReports; });
    return *upstream;
  }

  CallResult call(Invocation invocation) {
    return test::run(io, [this, invocation = std::move(invocation)]() -> asio::awaitable<CallResult> {
      co_return co_await upstream->call(invocation);
    }());
  }
  CallResult call(std::string payload = "hello") { return call(Invocation{"echo", std::move(payload), {}}); }

  // Starts a call without waiting for it; its result lands in `results`.
  void startCall(std::string payload = "in flight") {
    asio::co_spawn(
        io,
        [this, payload]() -> asio::awaitable<void> {
          const Invocation invocation{"echo", payload, {}};
          results.push_back(co_await upstream->call(invocation));
        },
        asio::detached);
  }

  asio::io_context io;
  test::TempDir dir;
  std::shared_ptr<FakeHandler> handler;
  std::shared_ptr<Upstream> upstream;
  std::vector<CallResult> results;
  int stuckReports = 0;
};

TEST_F(UpstreamTest, OkAnswerCarriesTheBody) {
  make();
  auto result = call("hello");
  EXPECT_EQ(result.status, CallStatus::ok);
  EXPECT_EQ(result.body, "hello");
  EXPECT_EQ(upstream->instanceId(), "echo.1");
}

TEST_F(UpstreamTest, SendsPostFnWithHostBodyAndTheInvocationsHeaders) {
  make();
  call(Invocation{"echo", "payload", {{"Lab", "x"}, {"User-Agent", "curl/8"}, {"X-Multi", "1"}, {"X-Multi", "2"}}});
  ASSERT_EQ(handler->requests().size(), 1u);
  const auto& request = handler->requests()[0];
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.target, "/fn");
  EXPECT_EQ(request.body, "payload");
  std::vector<std::pair<std::string, std::string>> expected = {
      {"Host", "localhost"},  {"Lab", "x"},     {"User-Agent", "curl/8"},
      {"X-Multi", "1"},       {"X-Multi", "2"}, {"X-Tinyfaas-Timeout-Ms", "60000"},
      {"Content-Length", "7"}};
  ASSERT_EQ(request.headers.size(), expected.size());
  // The time left is a little under the 60 s timeout by the time it is sent.
  const int left = std::stoi(request.headers[5].second);
  EXPECT_GT(left, 50000);
  EXPECT_LE(left, 60000);
  expected[5].second = request.headers[5].second;
  EXPECT_EQ(request.headers, expected);
}

TEST_F(UpstreamTest, AClientsOwnTimeLeftHeaderIsReplacedByTheProxys) {
  UpstreamOptions options;
  options.callTimeout = 2s;
  make(options);
  call(Invocation{"echo", "", {{"X-Tinyfaas-Timeout-Ms", "99999999"}}});
  ASSERT_EQ(handler->requests().size(), 1u);
  int seen = 0;
  for (const auto& [name, value] : handler->requests()[0].headers) {
    if (name != "X-Tinyfaas-Timeout-Ms") continue;
    ++seen;
    EXPECT_LE(std::stoi(value), 2000);
  }
  EXPECT_EQ(seen, 1);
}

TEST_F(UpstreamTest, EmptyPayloadIsSentWithContentLengthZero) {
  make();
  auto result = call("");
  EXPECT_EQ(result.status, CallStatus::ok);
  ASSERT_EQ(handler->requests().size(), 1u);
  EXPECT_EQ(handler->requests()[0].headers.back(), (std::pair<std::string, std::string>{"Content-Length", "0"}));
}

TEST_F(UpstreamTest, Status500IsAFunctionErrorWithTheBodyAsReason) {
  make();
  handler->status = 500;
  handler->body = "ZeroDivisionError: division by zero";
  auto result = call();
  EXPECT_EQ(result.status, CallStatus::functionError);
  EXPECT_EQ(result.body, "ZeroDivisionError: division by zero");
}

TEST_F(UpstreamTest, Status5xxWithoutBodyNamesTheStatus) {
  make();
  handler->echo = false;
  for (unsigned status : {500u, 502u, 503u}) {
    handler->status = status;
    auto result = call();
    EXPECT_EQ(result.status, CallStatus::functionError) << status;
    EXPECT_EQ(result.code, status);
    EXPECT_EQ(result.body, "function failed with status " + std::to_string(status));
  }
}

// A 201 or a 404 is the function's answer, not its failure.
TEST_F(UpstreamTest, StatusBelow500IsTheFunctionsAnswerWithItsStatusAndHeaders) {
  make();
  handler->body = "made";
  handler->responseHeaders = {{"Content-Type", "application/json"}, {"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}};
  for (unsigned status : {201u, 404u, 302u}) {
    handler->status = status;
    auto result = call();
    EXPECT_EQ(result.status, CallStatus::ok) << status;
    EXPECT_EQ(result.code, status);
    EXPECT_EQ(result.body, "made");
    const HeaderList expected{{"Content-Type", "application/json"}, {"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}};
    EXPECT_EQ(result.headers, expected);
  }
}

TEST_F(UpstreamTest, AHandlersFramingHeadersDoNotReachTheCaller) {
  make();
  handler->responseHeaders = {{"Connection", "upgrade"}, {"Upgrade", "websocket"}, {"X-Kept", "1"}};
  auto result = call();
  ASSERT_EQ(result.status, CallStatus::ok);
  EXPECT_EQ(result.headers, (HeaderList{{"X-Kept", "1"}}));
}

TEST_F(UpstreamTest, HeadersAboveTheLimitAreAFunctionErrorThatSaysSo) {
  make();
  handler->responseHeaders = {{"X-Big", std::string(40000, 'a')}};
  auto result = call();
  EXPECT_EQ(result.status, CallStatus::functionError);
  EXPECT_EQ(result.body, "function response headers exceed the limit (64 headers, 16 KiB)");
  handler->responseHeaders.clear();
  EXPECT_EQ(call().status, CallStatus::ok);
}

TEST_F(UpstreamTest, ReusesOneConnectionForSequentialCalls) {
  make();
  for (int i = 0; i < 10; ++i) {
    auto result = call("call " + std::to_string(i));
    ASSERT_EQ(result.status, CallStatus::ok) << result.body;
    EXPECT_EQ(result.body, "call " + std::to_string(i));
  }
  EXPECT_EQ(handler->acceptedConnections(), 1u);
  EXPECT_EQ(handler->fnCalls(), 10u);
}

TEST_F(UpstreamTest, RetriesOnceWhenThePooledConnectionWasClosedWhileIdle) {
  make();
  ASSERT_EQ(call().status, CallStatus::ok);
  handler->closeIdleConnections();
  test::runFor(io, 20ms);
  auto result = call("again");
  EXPECT_EQ(result.status, CallStatus::ok) << result.body;
  EXPECT_EQ(result.body, "again");
  EXPECT_EQ(handler->acceptedConnections(), 2u);
  EXPECT_EQ(handler->fnCalls(), 2u);
}

TEST_F(UpstreamTest, SucceedsWhenEveryPooledConnectionWasClosedWhileIdle) {
  make();
  handler->mode = FakeHandler::Mode::gated;
  startCall();
  startCall();
  ASSERT_TRUE(test::runUntil(io, [&] { return handler->inFlight() == 2; }));
  handler->openGate();
  ASSERT_TRUE(test::runUntil(io, [&] { return results.size() == 2; }));
  ASSERT_EQ(handler->acceptedConnections(), 2u);  // both now idle in the pool
  // A handler restart or keep-alive timeout closes them all at once.
  handler->closeIdleConnections();
  test::runFor(io, 20ms);
  auto result = call("after idle close");
  EXPECT_EQ(result.status, CallStatus::ok) << result.body;
}

TEST_F(UpstreamTest, NothingListeningIsUnavailable) {
  handler->stop();
  make();
  auto result = call();
  EXPECT_EQ(result.status, CallStatus::unavailable);
  EXPECT_EQ(result.body.rfind("cannot connect to function instance: ", 0), 0u) << result.body;
  EXPECT_EQ(upstream->outstanding(), 0u);
}

TEST_F(UpstreamTest, HandlerDroppingAFreshConnectionIsUnavailable) {
  make();
  handler->mode = FakeHandler::Mode::hangUp;
  auto result = call();
  EXPECT_EQ(result.status, CallStatus::unavailable);
  EXPECT_EQ(result.body.rfind("function instance failed during the call: ", 0), 0u) << result.body;
  // A fresh connection is never retried: the handler may have run the call.
  EXPECT_EQ(handler->fnCalls(), 1u);
}

TEST_F(UpstreamTest, ARequestWrittenOnAPooledConnectionIsNotSentAgain) {
  make();
  ASSERT_EQ(call().status, CallStatus::ok);
  // The handler takes the request, then dies without an answer: it may have
  // run the function, so a second run elsewhere could repeat its effects.
  handler->mode = FakeHandler::Mode::hangUp;
  auto result = call();
  EXPECT_EQ(result.status, CallStatus::unavailable);
  EXPECT_FALSE(result.retryable);
  EXPECT_EQ(handler->fnCalls(), 2u);
}

TEST_F(UpstreamTest, HandlerThatNeverAnswersTimesOut) {
  UpstreamOptions options;
  options.callTimeout = 200ms;
  options.timeoutGrace = 100ms;
  make(options);
  handler->mode = FakeHandler::Mode::never;
  const auto started = std::chrono::steady_clock::now();
  auto result = call();
  EXPECT_EQ(result.status, CallStatus::timeout);
  EXPECT_EQ(result.body, "function call timed out");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  // Its turn is given back once the grace is over.
  EXPECT_TRUE(test::runUntil(io, [&] { return upstream->outstanding() == 0; }));
  // The timed-out connection is not reused for the next call.
  handler->mode = FakeHandler::Mode::answer;
  auto next = call("next");
  EXPECT_EQ(next.status, CallStatus::ok) << next.body;
  EXPECT_EQ(handler->acceptedConnections(), 2u);
}

TEST_F(UpstreamTest, ATimedOutCallKeepsItsTurnUntilTheLateAnswerWhichIsDropped) {
  UpstreamOptions options;
  options.callTimeout = 300ms;
  options.maxConcurrentCalls = 1;
  options.maxQueuedCalls = 0;
  make(options);
  handler->mode = FakeHandler::Mode::gated;
  auto result = call("late");
  EXPECT_EQ(result.status, CallStatus::timeout);
  // The function still runs: its turn is taken, so the next call is refused.
  EXPECT_EQ(upstream->outstanding(), 1u);
  EXPECT_EQ(call("refused").status, CallStatus::overloaded);
  // The late answer frees the turn and the connection, and is nobody's result.
  handler->mode = FakeHandler::Mode::answer;
  handler->openGate();
  ASSERT_TRUE(test::runUntil(io, [&] { return upstream->outstanding() == 0; }));
  auto next = call("next");
  EXPECT_EQ(next.status, CallStatus::ok) << next.body;
  EXPECT_EQ(next.body, "next");
  EXPECT_EQ(handler->acceptedConnections(), 1u);
  EXPECT_FALSE(upstream->stuck());
  EXPECT_EQ(stuckReports, 0);
}

// The router forgets an instance's Upstream while a timed-out call still
// waits for its late answer: the exchange keeps it until the answer came,
// and drained() waits for that.
TEST_F(UpstreamTest, ATimedOutCallsExchangeKeepsItsForgottenUpstreamUntilTheLateAnswer) {
  UpstreamOptions options;
  options.callTimeout = 300ms;
  make(options);
  handler->mode = FakeHandler::Mode::gated;
  EXPECT_EQ(call("late").status, CallStatus::timeout);
  std::weak_ptr<Upstream> forgotten = upstream;
  bool drained = false;
  std::shared_ptr<Upstream> drainer = upstream;  // as the router holds it while it drains
  // Named: the closure must outlive the coroutine it starts.
  auto drain = [&drained, &drainer]() -> asio::awaitable<void> {
    co_await drainer->drained(std::chrono::steady_clock::now() + 1h);
    drained = true;
    drainer.reset();
  };
  asio::co_spawn(io, drain(), asio::detached);
  upstream.reset();
  test::runFor(io, 20ms);
  EXPECT_FALSE(drained);
  handler->mode = FakeHandler::Mode::answer;
  handler->openGate();
  ASSERT_TRUE(test::runUntil(io, [&] { return drained; }));
  EXPECT_TRUE(test::runUntil(io, [&] { return forgotten.expired(); }));
}

// The binary handler stops fn.sh at X-Tinyfaas-Timeout-Ms and answers 500.
// When that answer is read in the same round as the deadline passes (the
// loop was busy), the caller still hears of a timeout (seen on the docker
// backend). A handler thread answers while the loop is held up.
TEST_F(UpstreamTest, AnErrorAnswerReadAfterTheDeadlineIsATimeout) {
  const auto socketPath = dir / "late.sock";
  UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socketPath.c_str(), sizeof address.sun_path - 1);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  std::atomic<bool> requestRead = false;
  std::atomic<bool> answered = false;
  std::thread lateHandler([&] {
    UniqueFd connection(::accept(listener.get(), nullptr, nullptr));
    char request[4096];
    if (::read(connection.get(), request, sizeof request) <= 0) return;
    requestRead = true;
    std::this_thread::sleep_for(250ms);  // past the 200 ms deadline
    const std::string answer =
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 44\r\n\r\n"
        "fn.sh was stopped: the call's timeout passed";
    EXPECT_EQ(::write(connection.get(), answer.data(), answer.size()), static_cast<ssize_t>(answer.size()));
    answered = true;
    std::this_thread::sleep_for(500ms);
  });
  UpstreamOptions options;
  options.callTimeout = 200ms;
  upstream = std::make_shared<Upstream>(io.get_executor(), "late.1", socketPath, options, [] {});
  startCall();
  ASSERT_TRUE(test::runUntil(io, [&] { return requestRead.load(); }));
  // The loop is held up until the answer is there and the deadline past.
  while (!answered) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(test::runUntil(io, [&] { return results.size() == 1; }));
  lateHandler.join();
  EXPECT_EQ(results[0].status, CallStatus::timeout) << results[0].body;
  EXPECT_EQ(results[0].body, "function call timed out");
}

TEST_F(UpstreamTest, ACallUnansweredAfterItsGraceMarksTheInstanceStuckOnce) {
  UpstreamOptions options;
  options.callTimeout = 100ms;
  options.timeoutGrace = 200ms;
  make(options);
  handler->mode = FakeHandler::Mode::never;
  EXPECT_EQ(call().status, CallStatus::timeout);
  EXPECT_FALSE(upstream->stuck());
  ASSERT_TRUE(test::runUntil(io, [&] { return stuckReports == 1; }));
  EXPECT_TRUE(upstream->stuck());
  EXPECT_EQ(upstream->outstanding(), 0u);
  EXPECT_EQ(call().status, CallStatus::timeout);
  ASSERT_TRUE(test::runUntil(io, [&] { return upstream->outstanding() == 0; }));
  EXPECT_EQ(stuckReports, 1);
}

TEST_F(UpstreamTest, AnInstanceThatCannotBeReachedIsNotStuck) {
  handler->stop();
  UpstreamOptions options;
  options.callTimeout = 100ms;
  options.timeoutGrace = 0ms;
  make(options);
  EXPECT_EQ(call().status, CallStatus::unavailable);
  test::runFor(io, 50ms);
  EXPECT_EQ(stuckReports, 0);
}

TEST_F(UpstreamTest, ResponseAboveTheLimitIsPayloadTooLarge) {
  UpstreamOptions options;
  options.maxResponseBytes = 1000;
  make(options);
  handler->responseBytes = 1001;
  auto result = call();
  EXPECT_EQ(result.status, CallStatus::payloadTooLarge);
  EXPECT_EQ(result.body, "function response larger than the limit");
  handler->responseBytes = 1000;
  auto fits = call();
  EXPECT_EQ(fits.status, CallStatus::ok);
  EXPECT_EQ(fits.body.size(), 1000u);
}

TEST_F(UpstreamTest, OutstandingCountsCallsInFlight) {
  make();
  handler->mode = FakeHandler::Mode::gated;
  EXPECT_EQ(upstream->outstanding(), 0u);
  startCall("a");
  startCall("b");
  startCall("c");
  ASSERT_TRUE(test::runUntil(io, [&] { return handler->inFlight() == 3; }));
  EXPECT_EQ(upstream->outstanding(), 3u);
  handler->openGate();
  ASSERT_TRUE(test::runUntil(io, [&] { return results.size() == 3; }));
  EXPECT_EQ(upstream->outstanding(), 0u);
  for (const auto& r : results) EXPECT_EQ(r.status, CallStatus::ok);
}

TEST_F(UpstreamTest, ConcurrentCallsOpenConnectionsThatArePooledAfterwards) {
  make();
  handler->mode = FakeHandler::Mode::gated;
  for (int i = 0; i < 4; ++i) startCall();
  ASSERT_TRUE(test::runUntil(io, [&] { return handler->inFlight() == 4; }));
  EXPECT_EQ(handler->acceptedConnections(), 4u);
  handler->openGate();
  ASSERT_TRUE(test::runUntil(io, [&] { return results.size() == 4; }));
  handler->mode = FakeHandler::Mode::answer;
  for (int i = 0; i < 4; ++i) startCall();
  ASSERT_TRUE(test::runUntil(io, [&] { return results.size() == 8; }));
  EXPECT_EQ(handler->acceptedConnections(), 4u);
}

TEST_F(UpstreamTest, CallsBeyondTheConcurrencyLimitWaitTheirTurnInOrder) {
  UpstreamOptions options;
  options.maxConcurrentCalls = 2;
  make(options);
  handler->mode = FakeHandler::Mode::gated;
  for (const char* payload : {"a", "b", "c", "d"}) startCall(payload);
  ASSERT_TRUE(test::runUntil(io, [&] { return handler->inFlight() == 2; }));
  test::runFor(io, 20ms);
  EXPECT_EQ(handler->inFlight(), 2u);  // c and d wait in the proxy
  EXPECT_EQ(upstream->outstanding(), 4u);
  handler->mode = FakeHandler::Mode::answer;
  handler->openGate();
  ASSERT_TRUE(test::runUntil(io, [&] { return results.size() == 4; }));
  EXPECT_EQ(handler->acceptedConnections(), 2u);
  EXPECT_EQ(results[2].body, "c");
  EXPECT_EQ(results[3].body, "d");
  for (const auto& r : results) EXPECT_EQ(r.status, CallStatus::ok) << r.body;
}

TEST_F(UpstreamTest, AWaitingCallTimesOutIfNoTurnComes) {
  UpstreamOptions options;
  options.maxConcurrentCalls = 1;
  options.callTimeout = 200ms;
  options.timeoutGrace = 100ms;
  make(options);
  handler->mode = FakeHandler::Mode::never;
  startCall("stuck");
  startCall("waiting");
  ASSERT_TRUE(test::runUntil(io, [&] { return results.size() == 2; }));
  for (const auto& r : results) EXPECT_EQ(r.status, CallStatus::timeout);
  // The turns were given back (the stuck call's after its grace).
  ASSERT_TRUE(test::runUntil(io, [&] { return upstream->outstanding() == 0; }));
  handler->mode = FakeHandler::Mode::answer;
  EXPECT_EQ(call("next").status, CallStatus::ok);
}

TEST_F(UpstreamTest, ACallBeyondAFullQueueIsRefusedAtOnce) {
  UpstreamOptions options;
  options.maxConcurrentCalls = 1;
  options.maxQueuedCalls = 2;
  make(options);
  handler->mode = FakeHandler::Mode::gated;
  for (const char* payload : {"a", "b", "c", "d"}) startCall(payload);
  // d found a and its two followers ahead: refused without waiting.
  ASSERT_TRUE(test::runUntil(io, [&] { return results.size() == 1; }));
  EXPECT_EQ(results[0].status, CallStatus::overloaded);
  EXPECT_EQ(results[0].body, "function overloaded: 1 calls running and 2 waiting on its instance");
  EXPECT_FALSE(results[0].retryable);
  EXPECT_TRUE(test::runUntil(io, [&] { return handler->inFlight() == 1; }));
  EXPECT_EQ(upstream->outstanding(), 3u);
  // The queued ones still run, in order, and the queue takes calls again.
  handler->mode = FakeHandler::Mode::answer;
  handler->openGate();
  ASSERT_TRUE(test::runUntil(io, [&] { return results.size() == 4; }));
  EXPECT_EQ(results[1].body, "a");
  EXPECT_EQ(results[2].body, "b");
  EXPECT_EQ(results[3].body, "c");
  EXPECT_EQ(call("next").status, CallStatus::ok);
}

TEST_F(UpstreamTest, AZeroQueueRefusesEveryCallBeyondTheConcurrencyLimit) {
  UpstreamOptions options;
  options.maxConcurrentCalls = 2;
  options.maxQueuedCalls = 0;
  make(options);
  handler->mode = FakeHandler::Mode::gated;
  for (const char* payload : {"a", "b", "c"}) startCall(payload);
  ASSERT_TRUE(test::runUntil(io, [&] { return results.size() == 1; }));
  EXPECT_EQ(results[0].status, CallStatus::overloaded);
  EXPECT_TRUE(test::runUntil(io, [&] { return handler->inFlight() == 2; }));
  handler->openGate();
  ASSERT_TRUE(test::runUntil(io, [&] { return results.size() == 3; }));
  EXPECT_EQ(results[1].status, CallStatus::ok);
  EXPECT_EQ(results[2].status, CallStatus::ok);
}

TEST_F(UpstreamTest, TimeWaitingInTheQueueCountsAgainstTheTimeout) {
  UpstreamOptions options;
  options.maxConcurrentCalls = 1;
  options.callTimeout = 1s;
  make(options);
  handler->mode = FakeHandler::Mode::gated;
  startCall("first");
  ASSERT_TRUE(test::runUntil(io, [&] { return handler->inFlight() == 1; }));
  const auto queued = std::chrono::steady_clock::now();
  startCall("second");
  test::runFor(io, 800ms);
  // The first answers; the second gets its turn 0.8 s into its timeout and
  // meets a handler that never answers.
  handler->mode = FakeHandler::Mode::never;
  handler->openGate();
  ASSERT_TRUE(test::runUntil(io, [&] { return results.size() == 2; }));
  const auto took = std::chrono::steady_clock::now() - queued;
  EXPECT_EQ(results[0].status, CallStatus::ok);
  EXPECT_EQ(results[1].status, CallStatus::timeout);
  // 1 s from arrival, not 1 s from its turn (1.8 s).
  EXPECT_LT(took, 1500ms);
}

TEST_F(UpstreamTest, KeepsAtMostMaxIdleConnections) {
  UpstreamOptions options;
  options.maxIdleConnections = 1;
  make(options);
  handler->mode = FakeHandler::Mode::gated;
  for (int i = 0; i < 3; ++i) startCall();
  ASSERT_TRUE(test::runUntil(io, [&] { return handler->inFlight() == 3; }));
  handler->openGate();
  ASSERT_TRUE(test::runUntil(io, [&] { return results.size() == 3; }));
  // The two connections beyond the pool are closed by the client.
  EXPECT_TRUE(test::runUntil(io, [&] { return handler->openConnections() == 1; }));
}

TEST_F(UpstreamTest, ConnectionCloseAnswersAreNotPooled) {
  make();
  handler->closeAfterAnswer = true;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(call().status, CallStatus::ok);
  EXPECT_EQ(handler->acceptedConnections(), 3u);
}

TEST_F(UpstreamTest, RecoversAfterTheHandlerRestarts) {
  make();
  ASSERT_EQ(call().status, CallStatus::ok);
  handler->stop();
  test::runFor(io, 20ms);
  EXPECT_EQ(call().status, CallStatus::unavailable);
  handler = FakeHandler::start(io.get_executor(), dir / "handler.sock");
  auto result = call("back");
  EXPECT_EQ(result.status, CallStatus::ok) << result.body;
}

}  // namespace
}  // namespace tinyfaas
