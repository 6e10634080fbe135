#include "frontend/http/http_frontend.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include <boost/asio/io_context.hpp>
#include <boost/beast/http.hpp>

#include "fake_invoker.hpp"
#include "raw_http_client.hpp"
#include "test_support.hpp"
#include "util/header_names.hpp"

namespace tinyfaas {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using namespace std::chrono_literals;

// Every function exists and answers "result"; detached calls get `status`.
test::Behaviour detachedAnswers(CallStatus status) {
  test::Behaviour b = test::answers(CallStatus::ok, "result");
  b.detached = status;
  return b;
}

bool hasHeader(const HeaderList& headers, const std::string& name) {
  return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return h.first == name; });
}

std::string headerValue(const HeaderList& headers, const std::string& name) {
  for (const auto& [n, v] : headers)
    if (n == name) return v;
  return "<absent>";
}

class HttpFrontendTest : public ::testing::Test {
 protected:
  HttpFrontendTest() { invoker.setDefault(detachedAnswers(CallStatus::ok)); }

  HttpResponse call(HttpRequest request) {
    return test::run(io, [this, request = std::move(request)]() mutable -> asio::awaitable<HttpResponse> {
      co_return co_await handleFunctionRequest(invoker, request);
    }());
  }
  HttpResponse call(http::verb method, std::string target, std::string body = "") {
    HttpRequest request{method, target, 11};
    request.set(http::field::host, "node:8000");
    request.body() = std::move(body);
    request.prepare_payload();
    return call(std::move(request));
  }

  asio::io_context io;
  test::FakeInvoker invoker;
};

TEST_F(HttpFrontendTest, GetCallsTheNamedFunctionWithAnEmptyPayload) {
  auto response = call(http::verb::get, "/echo");
  EXPECT_EQ(response.result(), http::status::ok);
  EXPECT_EQ(response.body(), "result");  // the function's output, untouched
  ASSERT_EQ(invoker.invocations().size(), 1u);
  EXPECT_EQ(invoker.invocations()[0].function, "echo");
  EXPECT_EQ(invoker.invocations()[0].payload, "");
  EXPECT_TRUE(invoker.detachedInvocations().empty());
}

TEST_F(HttpFrontendTest, PostPassesTheBodyAsPayload) {
  const std::string binary("a\0b\xff\r\n", 6);
  auto response = call(http::verb::post, "/sieve", binary);
  EXPECT_EQ(response.result(), http::status::ok);
  ASSERT_EQ(invoker.invocations().size(), 1u);
  EXPECT_EQ(invoker.invocations()[0].function, "sieve");
  EXPECT_EQ(invoker.invocations()[0].payload, binary);
}

TEST_F(HttpFrontendTest, OkAnswersKeepTheFunctionOutputExactly) {
  invoker.setDefault(test::answers(CallStatus::ok, "no newline"));
  auto response = call(http::verb::get, "/f");
  EXPECT_EQ(response.body(), "no newline");
  EXPECT_EQ(response[http::field::content_length], "10");
  invoker.setDefault(test::answers(CallStatus::ok, ""));
  EXPECT_EQ(call(http::verb::get, "/f").body(), "");
}

TEST_F(HttpFrontendTest, IgnoresTheQueryString) {
  call(http::verb::get, "/echo?x=1&name=other");
  ASSERT_EQ(invoker.invocations().size(), 1u);
  EXPECT_EQ(invoker.invocations()[0].function, "echo");
}

TEST_F(HttpFrontendTest, CanonicalisesHeaderNames) {
  HttpRequest request{http::verb::post, "/echo", 11};
  request.set(http::field::host, "node");
  request.insert("lab", "x");
  request.insert("user-agent", "curl/8");
  request.insert("X-CUSTOM-thing", "v");
  request.insert("x-multi", "1");
  request.insert("X-Multi", "2");
  call(std::move(request));
  ASSERT_EQ(invoker.invocations().size(), 1u);
  const HeaderList headers = invoker.invocations()[0].headers;
  EXPECT_EQ(headerValue(headers, "Lab"), "x");
  EXPECT_EQ(headerValue(headers, "User-Agent"), "curl/8");
  EXPECT_EQ(headerValue(headers, "X-Custom-Thing"), "v");
  // Repeated headers all arrive, in order.
  std::vector<std::string> multi;
  for (const auto& [n, v] : headers)
    if (n == "X-Multi") multi.push_back(v);
  EXPECT_EQ(multi, (std::vector<std::string>{"1", "2"}));
  for (const auto& [n, v] : headers) EXPECT_EQ(n, canonicalHeaderName(n)) << n;
}

TEST_F(HttpFrontendTest, DoesNotForwardHopByHopHeaders) {
  HttpRequest request{http::verb::post, "/echo", 11};
  request.set(http::field::host, "node");
  request.set(http::field::connection, "keep-alive");
  request.set(http::field::keep_alive, "timeout=5");
  request.set(http::field::transfer_encoding, "chunked");
  request.set(http::field::expect, "100-continue");
  request.set(http::field::te, "trailers");
  request.set(http::field::upgrade, "h2c");
  request.set(http::field::proxy_connection, "keep-alive");
  request.set(http::field::content_length, "3");
  request.set("Lab", "kept");
  request.body() = "abc";
  call(std::move(request));
  ASSERT_EQ(invoker.invocations().size(), 1u);
  const HeaderList headers = invoker.invocations()[0].headers;
  for (const char* name : {"Host", "Connection", "Keep-Alive", "Transfer-Encoding", "Expect", "Te", "Upgrade",
                           "Proxy-Connection", "Content-Length"}) {
    EXPECT_FALSE(hasHeader(headers, name)) << name;
  }
  EXPECT_EQ(headerValue(headers, "Lab"), "kept");
}

TEST_F(HttpFrontendTest, AsyncHeaderInAnyCaseAnswers202AtOnce) {
  for (const char* name : {"X-tinyFaaS-Async", "x-tinyfaas-async", "X-TINYFAAS-ASYNC"}) {
    invoker.forgetCalls();
    HttpRequest request{http::verb::post, "/slow", 11};
    request.set(http::field::host, "node");
    request.insert(name, "true");
    request.body() = "input";
    request.prepare_payload();
    auto response = call(std::move(request));
    EXPECT_EQ(response.result(), http::status::accepted) << name;
    ASSERT_EQ(invoker.detachedInvocations().size(), 1u) << name;
    EXPECT_EQ(invoker.detachedInvocations()[0].function, "slow");
    EXPECT_EQ(invoker.detachedInvocations()[0].payload, "input");
  }
  EXPECT_TRUE(invoker.invocations().empty());
}

TEST_F(HttpFrontendTest, AsyncHeaderWithAnyValueCounts) {
  HttpRequest request{http::verb::get, "/f", 11};
  request.insert("X-tinyFaaS-Async", "");
  auto response = call(std::move(request));
  EXPECT_EQ(response.result(), http::status::accepted);
  EXPECT_EQ(invoker.detachedInvocations().size(), 1u);
}

TEST_F(HttpFrontendTest, AsyncCallOfUnknownFunctionIs404) {
  invoker.setDefault(detachedAnswers(CallStatus::notFound));
  HttpRequest request{http::verb::post, "/nope", 11};
  request.insert("X-tinyFaaS-Async", "1");
  auto response = call(std::move(request));
  EXPECT_EQ(response.result(), http::status::not_found);
  EXPECT_EQ(response.body(), "not found (nope)\n");  // the invoker's reason
  EXPECT_EQ(response.count(http::field::location), 0u);
}

TEST_F(HttpFrontendTest, AsyncCallWhenTheQueueIsFullIs503WithTheReason) {
  invoker.setDefault(detachedAnswers(CallStatus::overloaded));
  HttpRequest request{http::verb::post, "/busy", 11};
  request.insert("X-tinyFaaS-Async", "1");
  auto response = call(std::move(request));
  EXPECT_EQ(response.result(), http::status::service_unavailable);
  EXPECT_EQ(response.body(), "overloaded (busy)\n");
}

TEST_F(HttpFrontendTest, AcceptedAsyncCallPointsToItsResult) {
  HttpRequest request{http::verb::post, "/f", 11};
  request.insert("X-tinyFaaS-Async", "1");
  auto response = call(std::move(request));
  EXPECT_EQ(response.result(), http::status::accepted);
  EXPECT_EQ(response[http::field::location], "/calls/" + test::FakeInvoker::detachedId(1));
}

TEST_F(HttpFrontendTest, CallsAnswer202WhilePendingAndTheResultOnceDone) {
  const std::string id = test::FakeInvoker::detachedId(7);
  invoker.setRecord(id, AsyncCallRecord{AsyncCallRecord::State::queued, {}});
  auto pending = call(http::verb::get, "/calls/" + id, "");
  EXPECT_EQ(pending.result(), http::status::accepted);
  EXPECT_EQ(pending.body(), "queued\n");
  invoker.setRecord(id, AsyncCallRecord{AsyncCallRecord::State::running, {}});
  EXPECT_EQ(call(http::verb::get, "/calls/" + id, "").body(), "running\n");

  // As the call itself would have answered: the function's status and headers.
  invoker.setRecord(id, AsyncCallRecord{AsyncCallRecord::State::done,
                                        CallResult{CallStatus::ok, "made", false, 201, {{"X-Made", "yes"}}}});
  auto done = call(http::verb::get, "/calls/" + id, "");
  EXPECT_EQ(done.result(), http::status::created);
  EXPECT_EQ(done.body(), "made");
  EXPECT_EQ(done["X-Made"], "yes");

  invoker.setRecord(id, AsyncCallRecord{AsyncCallRecord::State::failed, CallResult{CallStatus::timeout, "too slow"}});
  auto failed = call(http::verb::get, "/calls/" + id, "");
  EXPECT_EQ(failed.result(), http::status::gateway_timeout);
  EXPECT_EQ(failed.body(), "too slow\n");
}

TEST_F(HttpFrontendTest, UnknownCallsAre404AndOnlyGetIsAllowed) {
  auto unknown = call(http::verb::get, "/calls/" + std::string(32, 'a'), "");
  EXPECT_EQ(unknown.result(), http::status::not_found);
  EXPECT_EQ(call(http::verb::get, "/calls/", "").result(), http::status::not_found);
  auto posted = call(http::verb::post, "/calls/" + std::string(32, 'a'), "");
  EXPECT_EQ(posted.result(), http::status::method_not_allowed);
  EXPECT_TRUE(invoker.invocations().empty());
}

TEST_F(HttpFrontendTest, MapsEveryCallStatusToAnHttpStatus) {
  const std::pair<CallStatus, http::status> cases[] = {
      {CallStatus::ok, http::status::ok},
      {CallStatus::notFound, http::status::not_found},
      {CallStatus::functionError, http::status::internal_server_error},
      {CallStatus::unavailable, http::status::service_unavailable},
      {CallStatus::timeout, http::status::gateway_timeout},
      {CallStatus::overloaded, http::status::service_unavailable},
      {CallStatus::payloadTooLarge, http::status::payload_too_large},
  };
  for (const auto& [status, expected] : cases) {
    invoker.setDefault(test::answers(status, "reason for " + std::string(toString(status))));
    auto response = call(http::verb::post, "/f", "x");
    EXPECT_EQ(response.result(), expected) << toString(status);
    if (status != CallStatus::ok) {
      EXPECT_EQ(response.body(), "reason for " + std::string(toString(status)) + "\n");
    }
  }
}

TEST_F(HttpFrontendTest, FunctionErrorCarriesTheFunctionsReason) {
  invoker.setDefault(test::answers(CallStatus::functionError, "ZeroDivisionError: division by zero"));
  auto response = call(http::verb::get, "/fail");
  EXPECT_EQ(response.result(), http::status::internal_server_error);
  EXPECT_EQ(response.body(), "ZeroDivisionError: division by zero\n");
}

TEST_F(HttpFrontendTest, TheFunctionsStatusAndHeadersReachTheClient) {
  CallResult result{CallStatus::ok, "{\"a\":1}"};
  result.code = 201;
  result.headers = {{"Content-Type", "application/json"}, {"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}};
  invoker.setDefault(test::answers(result));
  auto response = call(http::verb::post, "/make", "x");
  EXPECT_EQ(response.result_int(), 201u);
  EXPECT_EQ(response.body(), "{\"a\":1}");  // untouched: no newline added
  EXPECT_EQ(response[http::field::content_type], "application/json");
  EXPECT_EQ(std::distance(response.equal_range(http::field::set_cookie).first,
                          response.equal_range(http::field::set_cookie).second),
            2);
  EXPECT_EQ(response[http::field::content_length], "7");
}

TEST_F(HttpFrontendTest, AFunctionsOwn5xxKeepsItsStatusAndHeaders) {
  CallResult result{CallStatus::functionError, "later"};
  result.code = 503;
  result.headers = {{"Retry-After", "7"}};
  invoker.setDefault(test::answers(result));
  auto response = call(http::verb::post, "/busy");
  EXPECT_EQ(response.result_int(), 503u);
  EXPECT_EQ(response.body(), "later");
  EXPECT_EQ(response[http::field::retry_after], "7");
}

TEST_F(HttpFrontendTest, NoContentAnswersCarryNoBody) {
  CallResult result{CallStatus::ok, "dropped"};
  result.code = 204;
  invoker.setDefault(test::answers(result));
  auto response = call(http::verb::post, "/quiet");
  EXPECT_EQ(response.result_int(), 204u);
  EXPECT_EQ(response.body(), "");
}

TEST_F(HttpFrontendTest, RootSaysToCallAFunctionByName) {
  auto response = call(http::verb::get, "/");
  EXPECT_EQ(response.result(), http::status::not_found);
  EXPECT_EQ(response.body(), "no function here: call a function at /NAME (tinyfaas list shows the names)\n");
  EXPECT_TRUE(invoker.invocations().empty());
}

TEST_F(HttpFrontendTest, OtherMethodsAre405WithAllow) {
  for (auto method : {http::verb::put, http::verb::delete_, http::verb::patch, http::verb::head, http::verb::options}) {
    auto response = call(method, "/echo");
    EXPECT_EQ(response.result(), http::status::method_not_allowed) << http::to_string(method);
    EXPECT_EQ(response[http::field::allow], "GET, POST");
  }
  EXPECT_TRUE(invoker.invocations().empty());
}

TEST_F(HttpFrontendTest, InvalidNamesAre404WithoutACall) {
  for (const char* target :
       {"/", "", "/a/b", "/a.b", "/a-", "/-a", "/..", "/echo/", "//echo", "/a_b", "/%65cho", "/?echo", "/ech o"}) {
    auto response = call(http::verb::get, target);
    EXPECT_EQ(response.result(), http::status::not_found) << target;
  }
  EXPECT_TRUE(invoker.invocations().empty());
  EXPECT_TRUE(invoker.detachedInvocations().empty());
}

TEST_F(HttpFrontendTest, AnswersInTheRequestsHttpVersion) {
  HttpRequest request{http::verb::get, "/f", 10};
  auto response = call(std::move(request));
  EXPECT_EQ(response.version(), 10);
  EXPECT_FALSE(response.keep_alive());
  HttpRequest keepAlive{http::verb::get, "/f", 11};
  EXPECT_TRUE(call(std::move(keepAlive)).keep_alive());
}

TEST_F(HttpFrontendTest, ServesOverTcp) {
  HttpServerOptions options;
  options.address = "127.0.0.1";
  options.port = 0;
  auto server = startHttpFrontend(io.get_executor(), invoker, options);
  ASSERT_TRUE(server) << server.error();
  test::RawHttpClient client(io);
  ASSERT_FALSE(client.connect((*server)->port()));
  invoker.setDefault(test::answers(CallStatus::ok, "hi there"));
  auto response = client.roundTrip(test::rawRequest("POST", "/echo", "hello", "lab: 1\r\n"));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result(), http::status::ok);
  EXPECT_EQ(response->body(), "hi there");
  ASSERT_EQ(invoker.invocations().size(), 1u);
  EXPECT_EQ(invoker.invocations()[0].payload, "hello");
  EXPECT_EQ(headerValue(invoker.invocations()[0].headers, "Lab"), "1");
  EXPECT_FALSE(hasHeader(invoker.invocations()[0].headers, "Host"));
  invoker.setDefault(test::answers(CallStatus::notFound, "function nope not found"));
  auto missing = client.roundTrip(test::rawRequest("GET", "/nope"));
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->result(), http::status::not_found);
  (*server)->stopAccepting();
  test::runFor(io, 20ms);
}

}  // namespace
}  // namespace tinyfaas
