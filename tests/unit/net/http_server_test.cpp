#include "net/http_server.hpp"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>

#include "raw_http_client.hpp"
#include "test_support.hpp"
#include "util/child_process.hpp"

namespace tinyfaas {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using namespace std::chrono_literals;
using test::RawHttpClient;
using test::rawRequest;

class HttpServerTest : public ::testing::Test {
 protected:
  void start(HttpServerOptions options = {}, HttpHeaderCheck check = {}) {
    options.address = "127.0.0.1";
    options.port = 0;
    auto created = HttpServer::create(
        io.get_executor(), options, [this](HttpRequest& request) { return handle(request); }, {}, std::move(check));
    ASSERT_TRUE(created) << created.error();
    server = std::move(*created);
    ASSERT_NE(server->port(), 0);
  }

  asio::awaitable<HttpResponse> handle(HttpRequest& request) {
    if (request.target() == "/slow") {
      // Held until the test releases it (or a minute passes).
      asio::steady_timer hold(io, 60s);
      held.push_back(&hold);
      co_await hold.async_wait(asio::as_tuple(asio::use_awaitable));
      std::erase(held, &hold);
    }
    ++handled;
    targets.emplace_back(request.target());
    bodies.push_back(request.body());
    co_return textResponse(request, http::status::ok, "seen " + std::string(request.target()));
  }

  void TearDown() override {
    if (server) server->stopAccepting();
    server.reset();
    // Let sessions see their sockets close and end.
    test::runFor(io, 20ms);
  }

  asio::io_context io;
  std::unique_ptr<HttpServer> server;
  int handled = 0;
  std::vector<asio::steady_timer*> held;  // handlers of /slow waiting
  std::vector<std::string> targets;
  std::vector<std::string> bodies;
};

TEST_F(HttpServerTest, AnswersARequest) {
  start();
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  auto response = client.roundTrip(rawRequest("GET", "/hello"));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result(), http::status::ok);
  EXPECT_EQ(response->body(), "seen /hello\n");
  EXPECT_EQ((*response)[http::field::content_type], "text/plain; charset=utf-8");
  EXPECT_EQ(handled, 1);
}

TEST_F(HttpServerTest, KeepsTheConnectionAliveAcrossRequests) {
  start();
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  auto first = client.roundTrip(rawRequest("GET", "/one"));
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->keep_alive());
  auto second = client.roundTrip(rawRequest("POST", "/two", "payload"));
  ASSERT_TRUE(second);
  EXPECT_EQ(second->body(), "seen /two\n");
  EXPECT_EQ(targets, (std::vector<std::string>{"/one", "/two"}));
  EXPECT_EQ(bodies.back(), "payload");
}

TEST_F(HttpServerTest, AnswersPipelinedRequestsInOrder) {
  start();
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  ASSERT_FALSE(client.send(rawRequest("GET", "/a") + rawRequest("POST", "/b", "xyz") + rawRequest("GET", "/c")));
  for (const char* expected : {"seen /a\n", "seen /b\n", "seen /c\n"}) {
    auto response = client.read();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->body(), expected);
  }
}

TEST_F(HttpServerTest, ClosesAfterConnectionClose) {
  start();
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  auto response = client.roundTrip(rawRequest("GET", "/x", "", "Connection: close\r\n"));
  ASSERT_TRUE(response);
  EXPECT_FALSE(response->keep_alive());
  EXPECT_TRUE(client.closedByServer());
}

TEST_F(HttpServerTest, ClosesAfterHttp10Request) {
  start();
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  auto response = client.roundTrip("GET /old HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->version(), 10);
  EXPECT_TRUE(client.closedByServer());
}

TEST_F(HttpServerTest, RejectsBodiesAboveTheLimitWith413AndCloses) {
  HttpServerOptions options;
  options.maxBodyBytes = 100;
  start(options);
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  // Only the headers: the server decides from Content-Length alone, and a
  // body it never reads would turn its close into a reset.
  ASSERT_FALSE(client.send("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n"));
  auto response = client.read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result(), http::status::payload_too_large);
  EXPECT_EQ(response->body(), "request larger than 100 bytes\n");
  EXPECT_FALSE(response->keep_alive());
  EXPECT_TRUE(client.closedByServer());
  EXPECT_EQ(handled, 0);
}

TEST_F(HttpServerTest, ClientSendingTheWholeOversizedBodyStillReads413) {
  // What curl does: the body follows the headers at once.
  HttpServerOptions options;
  options.maxBodyBytes = 100;
  start(options);
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  ASSERT_FALSE(client.send(rawRequest("POST", "/big", std::string(1000, 'b'))));
  auto response = client.read();
  ASSERT_TRUE(response) << "connection reset before the 413 could be read";
  EXPECT_EQ(response->result(), http::status::payload_too_large);
}

TEST_F(HttpServerTest, RejectsChunkedBodiesAboveTheLimit) {
  HttpServerOptions options;
  options.maxBodyBytes = 100;
  start(options);
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  const std::string chunk(80, 'x');
  ASSERT_FALSE(client.send("POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n50\r\n" + chunk +
                           "\r\n50\r\n" + chunk + "\r\n"));
  auto response = client.read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result(), http::status::payload_too_large);
  EXPECT_EQ(handled, 0);
}

TEST_F(HttpServerTest, AcceptsABodyOfExactlyTheLimit) {
  HttpServerOptions options;
  options.maxBodyBytes = 100;
  start(options);
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  auto response = client.roundTrip(rawRequest("POST", "/fits", std::string(100, 'b')));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result(), http::status::ok);
  EXPECT_EQ(bodies.at(0).size(), 100u);
}

TEST_F(HttpServerTest, AnswersGarbageWith400AndCloses) {
  start();
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  ASSERT_FALSE(client.send(std::string("\x01\x02\x03 garbage \xff\r\n\r\n")));
  auto response = client.read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result(), http::status::bad_request);
  EXPECT_EQ(response->body().rfind("malformed HTTP request: ", 0), 0u) << response->body();
  EXPECT_EQ(response->body().find('\n'), response->body().size() - 1);  // one line
  EXPECT_TRUE(client.closedByServer());
  EXPECT_EQ(handled, 0);
}

TEST_F(HttpServerTest, AnswersABadContentLengthWith400) {
  start();
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  auto response = client.roundTrip("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result(), http::status::bad_request);
  EXPECT_EQ(handled, 0);
}

TEST_F(HttpServerTest, GarbageAfterAGoodRequestStillGetsTheFirstAnswer) {
  start();
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  ASSERT_FALSE(client.send(rawRequest("GET", "/fine") + "NOT HTTP AT ALL\r\n\r\n"));
  auto first = client.read();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->result(), http::status::ok);
  auto second = client.read();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->result(), http::status::bad_request);
  EXPECT_TRUE(client.closedByServer());
}

TEST_F(HttpServerTest, OversizedHeadersGetAReasonAboutHeaders) {
  HttpServerOptions options;
  options.maxHeaderBytes = 1024;
  start(options);
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  auto response = client.roundTrip(rawRequest("GET", "/x", "", "X-Big: " + std::string(4096, 'h') + "\r\n"));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result(), http::status::request_header_fields_too_large);
  EXPECT_NE(response->body().find("header"), std::string::npos) << response->body();
}

TEST_F(HttpServerTest, OversizedHeadersAreRejectedAndClosed) {
  HttpServerOptions options;
  options.maxHeaderBytes = 1024;
  start(options);
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  auto response = client.roundTrip(rawRequest("GET", "/x", "", "X-Big: " + std::string(4096, 'h') + "\r\n"));
  ASSERT_TRUE(response);
  EXPECT_GE(response->result_int(), 400u);
  EXPECT_LT(response->result_int(), 500u);
  EXPECT_TRUE(client.closedByServer());
  EXPECT_EQ(handled, 0);
}

TEST_F(HttpServerTest, ClosesIdleConnectionsAfterTheIdleTimeout) {
  HttpServerOptions options;
  options.idleTimeout = 1s;
  start(options);
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  ASSERT_TRUE(client.roundTrip(rawRequest("GET", "/x")));
  EXPECT_TRUE(client.closedByServer());
}

TEST_F(HttpServerTest, ClosesAConnectionWhoseBodyStallsPastTheReadTimeout) {
  HttpServerOptions options;
  options.readTimeout = 1s;
  start(options);
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  ASSERT_TRUE(client.roundTrip(rawRequest("GET", "/x")));
  // Half a body: the read timeout, not the 120 s idle one, applies.
  ASSERT_FALSE(client.send("POST /y HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhalf"));
  EXPECT_TRUE(client.closedByServer());
  EXPECT_EQ(handled, 1);
}

TEST_F(HttpServerTest, CutsOffAHeaderThatTakesLongerThanTheHeaderTimeout) {
  // A slowloris client: each byte comes before the read timeout would
  // strike, but the header as a whole takes too long.
  HttpServerOptions options;
  options.headerTimeout = 1s;
  options.readTimeout = 60s;
  start(options);
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  ASSERT_FALSE(client.send("GET /y HTTP/1.1\r\n"));
  const auto started = std::chrono::steady_clock::now();
  bool closed = false;
  for (int i = 0; i < 20 && !closed; ++i) {
    test::runFor(io, 200ms);
    closed = static_cast<bool>(client.send("X"));
  }
  EXPECT_TRUE(closed || client.closedByServer());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
  EXPECT_EQ(handled, 0);
}

// A check that refuses /secret without "Authorization: yes".
std::optional<HttpResponse> requireAuthorization(const HttpRequest& header) {
  if (header.target() != "/secret" || header[http::field::authorization] == "yes") return std::nullopt;
  EXPECT_TRUE(header.body().empty());
  return textResponse(header, http::status::unauthorized, "no");
}

TEST_F(HttpServerTest, AHeaderCheckRefusesBeforeTheBodyIsRead) {
  start({}, requireAuthorization);
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  // A body far larger than will ever be sent: the answer comes anyway.
  ASSERT_FALSE(client.send("POST /secret HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nsome"));
  auto response = client.read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result(), http::status::unauthorized);
  EXPECT_FALSE(response->keep_alive());
  EXPECT_TRUE(client.closedByServer());
  EXPECT_EQ(handled, 0);
}

TEST_F(HttpServerTest, AHeaderCheckLetsOtherRequestsThrough) {
  start({}, requireAuthorization);
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  auto open = client.roundTrip(rawRequest("POST", "/open", "body"));
  ASSERT_TRUE(open);
  EXPECT_EQ(open->result(), http::status::ok);
  auto allowed = client.roundTrip(rawRequest("POST", "/secret", "body", "Authorization: yes\r\n"));
  ASSERT_TRUE(allowed);
  EXPECT_EQ(allowed->result(), http::status::ok);
  EXPECT_EQ(bodies, (std::vector<std::string>{"body", "body"}));
}

TEST_F(HttpServerTest, Expect100ContinueIsAnsweredOnlyOnceTheHeaderIsAccepted) {
  start({}, requireAuthorization);
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  ASSERT_FALSE(client.send("POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = client.read();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->result(), http::status::continue_);
  ASSERT_FALSE(client.send("body"));
  auto response = client.read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result(), http::status::ok);

  RawHttpClient refused(io);
  ASSERT_FALSE(refused.connect(server->port()));
  auto final =
      refused.roundTrip("POST /secret HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  ASSERT_TRUE(final);
  EXPECT_EQ(final->result(), http::status::unauthorized);
}

TEST_F(HttpServerTest, ANewConnectionBeyondTheCapClosesTheLongestIdleOne) {
  HttpServerOptions options;
  options.maxConnections = 2;
  start(options);
  RawHttpClient first(io), second(io), third(io);
  for (auto* client : {&first, &second}) {
    ASSERT_FALSE(client->connect(server->port()));
    ASSERT_TRUE(client->roundTrip(rawRequest("GET", "/warm")));
  }
  ASSERT_FALSE(third.connect(server->port()));
  auto response = third.roundTrip(rawRequest("GET", "/third"));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result(), http::status::ok);
  EXPECT_TRUE(first.closedByServer());
  auto still = second.roundTrip(rawRequest("GET", "/second"));
  ASSERT_TRUE(still);
  EXPECT_EQ(still->result(), http::status::ok);
}

TEST_F(HttpServerTest, ANewConnectionWhenAllAreBusyGets503) {
  HttpServerOptions options;
  options.maxConnections = 1;
  start(options);
  RawHttpClient busy(io);
  ASSERT_FALSE(busy.connect(server->port()));
  ASSERT_FALSE(busy.send(rawRequest("GET", "/slow")));
  ASSERT_TRUE(test::runUntil(io, [&] { return held.size() == 1; }));
  RawHttpClient late(io);
  ASSERT_FALSE(late.connect(server->port()));
  auto response = late.read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result(), http::status::service_unavailable);
  EXPECT_EQ(response->body(), "too many connections (at most 1 at once); try again\n");
  EXPECT_FALSE(response->keep_alive());
  // The busy one is served as usual.
  for (auto* hold : held) hold->cancel();
  auto served = busy.read();
  ASSERT_TRUE(served);
  EXPECT_EQ(served->result(), http::status::ok);
}

TEST_F(HttpServerTest, BodiesBeyondTheBytesInFlightGet503) {
  HttpServerOptions options;
  options.maxBodyBytes = 100;
  options.maxBodyBytesInFlight = 100;
  start(options);
  RawHttpClient holder(io);
  ASSERT_FALSE(holder.connect(server->port()));
  ASSERT_FALSE(holder.send(rawRequest("POST", "/slow", std::string(80, 'a'))));
  ASSERT_TRUE(test::runUntil(io, [&] { return held.size() == 1; }));

  RawHttpClient declared(io);
  ASSERT_FALSE(declared.connect(server->port()));
  auto refused = declared.roundTrip("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->result(), http::status::service_unavailable);
  EXPECT_NE(refused->body().find("request bodies in flight"), std::string::npos) << refused->body();
  EXPECT_TRUE(declared.closedByServer());

  RawHttpClient chunked(io);
  ASSERT_FALSE(chunked.connect(server->port()));
  auto alsoRefused = chunked.roundTrip("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1e\r\n" +
                                       std::string(30, 'c') + "\r\n0\r\n\r\n");
  ASSERT_TRUE(alsoRefused);
  EXPECT_EQ(alsoRefused->result(), http::status::service_unavailable);

  RawHttpClient small(io);
  ASSERT_FALSE(small.connect(server->port()));
  auto fits = small.roundTrip(rawRequest("POST", "/fits", std::string(20, 'b')));
  ASSERT_TRUE(fits);
  EXPECT_EQ(fits->result(), http::status::ok);

  // Once the held request is answered its bytes are free again.
  for (auto* hold : held) hold->cancel();
  ASSERT_TRUE(holder.read());
  RawHttpClient after(io);
  ASSERT_FALSE(after.connect(server->port()));
  auto now = after.roundTrip(rawRequest("POST", "/after", std::string(100, 'd')));
  ASSERT_TRUE(now);
  EXPECT_EQ(now->result(), http::status::ok);
}

TEST_F(HttpServerTest, StopClosesTheAcceptor) {
  start();
  const auto port = server->port();
  RawHttpClient before(io);
  ASSERT_FALSE(before.connect(port));
  server->stopAccepting();
  test::runFor(io, 20ms);
  EXPECT_EQ(server->port(), 0);
  RawHttpClient after(io);
  EXPECT_EQ(after.connect(port), asio::error::connection_refused);
}

TEST_F(HttpServerTest, StopLetsTheCurrentRequestFinish) {
  start();
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  ASSERT_FALSE(client.send(rawRequest("GET", "/during")));
  server->stopAccepting();
  auto response = client.read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->body(), "seen /during\n");
}

TEST_F(HttpServerTest, StopEndsKeepAliveConnectionsAfterTheirCurrentRequest) {
  start();
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  ASSERT_TRUE(client.roundTrip(rawRequest("GET", "/before")));
  server->stopAccepting();
  test::runFor(io, 20ms);
  // Either closed at once, or one more answer marked Connection: close.
  auto response = client.roundTrip(rawRequest("GET", "/after"));
  if (response) {
    EXPECT_FALSE(response->keep_alive()) << "served " << response->body();
  }
}

TEST_F(HttpServerTest, CountsTheCallsInFlightAndLetsThemFinishAfterStopAccepting) {
  start();
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  ASSERT_FALSE(client.send(rawRequest("GET", "/slow")));
  ASSERT_TRUE(test::runUntil(io, [&] { return held.size() == 1; }));
  EXPECT_EQ(server->callsInFlight(), 1u);
  server->stopAccepting();
  for (auto* hold : held) hold->cancel();
  auto response = client.read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->body(), "seen /slow\n");
  EXPECT_FALSE(response->keep_alive());
  EXPECT_EQ(server->callsInFlight(), 0u);
}

TEST_F(HttpServerTest, CutShortAnswers503ToRequestsStillInTheirHandler) {
  start();
  RawHttpClient client(io);
  ASSERT_FALSE(client.connect(server->port()));
  ASSERT_FALSE(client.send(rawRequest("GET", "/slow")));
  ASSERT_TRUE(test::runUntil(io, [&] { return held.size() == 1; }));
  server->stopAccepting();
  server->cutShort("shutting down");
  EXPECT_EQ(server->callsInFlight(), 0u);
  auto response = client.read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result(), http::status::service_unavailable);
  EXPECT_EQ(response->body(), "shutting down\n");
  EXPECT_FALSE(response->keep_alive());
  EXPECT_TRUE(client.closedByServer());
  // The handler's late answer goes nowhere.
  for (auto* hold : held) hold->cancel();
  test::runFor(io, 20ms);
  EXPECT_EQ(handled, 1);
  EXPECT_EQ(server->callsInFlight(), 0u);
}

// close() closes every connection, idle or busy, and returns only once
// every session has ended: one whose handler still runs ends when it returns.
TEST_F(HttpServerTest, CloseReturnsOnceEverySessionHasEnded) {
  start();
  RawHttpClient idle(io);
  ASSERT_FALSE(idle.connect(server->port()));
  ASSERT_TRUE(idle.roundTrip(rawRequest("GET", "/before")));
  RawHttpClient busy(io);
  ASSERT_FALSE(busy.connect(server->port()));
  ASSERT_FALSE(busy.send(rawRequest("GET", "/slow")));
  ASSERT_TRUE(test::runUntil(io, [&] { return held.size() == 1; }));
  bool closed = false;
  // Named: the closure must outlive the coroutine it starts.
  auto closing = [&]() -> asio::awaitable<void> {
    co_await server->close();
    closed = true;
  };
  asio::co_spawn(io, closing(), asio::detached);
  EXPECT_TRUE(idle.closedByServer());
  EXPECT_TRUE(busy.closedByServer());
  test::runFor(io, 50ms);
  EXPECT_FALSE(closed) << "close() returned while a handler still ran";
  for (auto* hold : held) hold->cancel();
  ASSERT_TRUE(test::runUntil(io, [&] { return closed; }));
  EXPECT_EQ(handled, 2);
}

TEST_F(HttpServerTest, CloseWithoutConnectionsReturnsAtOnceAndRefusesNewOnes) {
  start();
  const auto port = server->port();
  test::run(io, server->close(), 1s);
  RawHttpClient after(io);
  EXPECT_EQ(after.connect(port), asio::error::connection_refused);
}

TEST_F(HttpServerTest, DestroyingTheHandleStopsTheServer) {
  start();
  const auto port = server->port();
  server.reset();
  test::runFor(io, 20ms);
  RawHttpClient after(io);
  EXPECT_EQ(after.connect(port), asio::error::connection_refused);
}

TEST_F(HttpServerTest, CreateFailsOnAPortInUse) {
  start();
  HttpServerOptions options;
  options.address = "127.0.0.1";
  options.port = server->port();
  auto second = HttpServer::create(io.get_executor(), options, [](HttpRequest& r) -> asio::awaitable<HttpResponse> {
    co_return textResponse(r, http::status::ok, "");
  });
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().find("cannot listen on 127.0.0.1:" + std::to_string(server->port())), std::string::npos)
      << second.error();
}

TEST_F(HttpServerTest, CreateFailsOnABadAddress) {
  HttpServerOptions options;
  options.address = "not-an-address";
  auto created = HttpServer::create(io.get_executor(), options, [](HttpRequest& r) -> asio::awaitable<HttpResponse> {
    co_return textResponse(r, http::status::ok, "");
  });
  ASSERT_FALSE(created);
  EXPECT_NE(created.error().find("not-an-address"), std::string::npos);
}

TEST_F(HttpServerTest, CurlReusesOneConnectionForTwoRequests) {
  const std::string curl = findExecutable("curl");
  if (curl.empty()) GTEST_SKIP() << "curl is not installed";
  start();
  const std::string base = "http://127.0.0.1:" + std::to_string(server->port());
  std::vector<std::string> output;
  SpawnOptions command{
      {curl, "-sS", "--noproxy", "*", "-w", "|%{num_connects}\\n", base + "/first", base + "/second"}, {}, {}};
  auto result = test::run(
      io, runCommand(io.get_executor(), command, 20s, [&](std::string_view line) { output.emplace_back(line); }));
  ASSERT_TRUE(result) << result.error();
  EXPECT_EQ(result->exitCode, 0) << result->description;
  // Each body ends in a newline, then curl's write-out: 1 new connection, then 0.
  EXPECT_EQ(output, (std::vector<std::string>{"seen /first", "|1", "seen /second", "|0"}));
}

TEST(TextResponse, EndsTheReasonWithOneNewlineAndMirrorsKeepAlive) {
  HttpRequest request{http::verb::get, "/", 10};
  auto response = textResponse(request, http::status::not_found, "gone");
  EXPECT_EQ(response.body(), "gone\n");
  EXPECT_EQ(response.version(), 10);
  EXPECT_FALSE(response.keep_alive());
  EXPECT_EQ(response[http::field::content_length], "5");
  EXPECT_EQ(textResponse(request, http::status::ok, "line\n").body(), "line\n");
  EXPECT_EQ(textResponse(request, http::status::ok, "").body(), "");
}

}  // namespace
}  // namespace tinyfaas
