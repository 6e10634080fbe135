// The bounded HTTP exchange under the management client and invoke.

#include "cli/http_client.hpp"

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <thread>

#include "fake_http_server.hpp"

namespace tinyfaas::cli {
namespace {

using test::FakeHttpServer;

HttpRequest requestTo(const FakeHttpServer& server) {
  HttpRequest request;
  request.host = "127.0.0.1";
  request.port = server.port();
  request.target = "/list";
  return request;
}

TEST(HttpClient, ReturnsStatusReasonAndBody) {
  FakeHttpServer server(429, "slow down");
  auto response = sendHttpRequest(requestTo(server));
  ASSERT_TRUE(response) << response.error().detail;
  EXPECT_EQ(response->status, 429u);
  EXPECT_EQ(response->reason, "Too Many Requests");
  EXPECT_EQ(response->body, "slow down");
}

TEST(HttpClient, SendsHostUserAgentAndExtraHeaders) {
  FakeHttpServer server;
  auto request = requestTo(server);
  request.method = HttpMethod::post;
  request.body = "{}";
  request.contentType = "application/json";
  request.headers.emplace_back("Lab", "edge");
  ASSERT_TRUE(sendHttpRequest(request));
  const auto recorded = server.requests().at(0);
  EXPECT_EQ(recorded.headers.at("host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(recorded.headers.at("user-agent"), "tinyfaas-cli");
  EXPECT_EQ(recorded.headers.at("content-type"), "application/json");
  EXPECT_EQ(recorded.headers.at("content-length"), "2");
  EXPECT_EQ(recorded.headers.at("lab"), "edge");
}

// A daemon refuses a body above its --max-body-bytes from the header alone:
// it answers 413 and closes without reading the body, so the client's write
// fails with a broken pipe or a reset. The answer must reach the user.
TEST(HttpClient, AnAnswerBeforeTheBodyWasReadIsShownNotTheBrokenWrite) {
  namespace asio = boost::asio;
  asio::io_context context;
  asio::ip::tcp::acceptor acceptor(context, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = acceptor.local_endpoint().port();
  std::thread server([&] {
    auto socket = acceptor.accept();
    asio::streambuf header;
    asio::read_until(socket, header, "\r\n\r\n");
    const std::string reply =
        "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 18\r\nConnection: close\r\n\r\nbody above 16 MiB\n";
    asio::write(socket, asio::buffer(reply));
    // Closing with the body unread sends a reset, as the real daemon's does.
    socket.close();
  });
  HttpRequest request;
  request.method = HttpMethod::post;
  request.host = "127.0.0.1";
  request.port = port;
  request.target = "/echo";
  request.body.assign(32u << 20, 'x');  // far beyond the socket buffers
  auto response = sendHttpRequest(request);
  server.join();
  ASSERT_TRUE(response) << response.error().detail;
  EXPECT_EQ(response->status, 413u);
  EXPECT_EQ(response->body, "body above 16 MiB\n");
}

TEST(HttpClient, RefusedConnectionIsAConnectError) {
  HttpRequest request;
  request.host = "127.0.0.1";
  request.port = test::unusedPort();
  auto response = sendHttpRequest(request);
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().kind, HttpError::Kind::connect);
  EXPECT_EQ(response.error().detail, "connection refused");
}

TEST(HttpClient, SilentServerHitsTheDeadline) {
  FakeHttpServer server(200, "", FakeHttpServer::Behaviour::silent);
  auto request = requestTo(server);
  request.timeout = std::chrono::milliseconds(200);
  auto response = sendHttpRequest(request);
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().kind, HttpError::Kind::timeout);
  EXPECT_EQ(response.error().detail, "timed out after 200 ms");
}

TEST(HttpClient, HangUpIsAnExchangeError) {
  FakeHttpServer server(200, "", FakeHttpServer::Behaviour::hangUp);
  auto response = sendHttpRequest(requestTo(server));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().kind, HttpError::Kind::exchange);
  EXPECT_EQ(response.error().detail, "connection closed before a complete reply");
}

TEST(HttpClient, BodyAboveTheLimitIsRefused) {
  FakeHttpServer server(200, std::string(2048, 'x'));
  auto request = requestTo(server);
  request.bodyLimit = 1024;
  auto response = sendHttpRequest(request);
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().kind, HttpError::Kind::tooLarge);

  request.bodyLimit = 2048;
  response = sendHttpRequest(request);
  ASSERT_TRUE(response) << response.error().detail;
  EXPECT_EQ(response->body.size(), 2048u);
}

}  // namespace
}  // namespace tinyfaas::cli
