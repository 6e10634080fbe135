// The bounded HTTP exchange under the management client and invoke.

#include "cli/http_client.hpp"

#include <gtest/gtest.h>

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
