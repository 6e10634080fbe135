#include "api/management_api.hpp"

#include <boost/beast/http.hpp>

#include "manager_fixture.hpp"
#include "util/base64.hpp"

namespace tinyfaas {
namespace {

namespace http = boost::beast::http;
using namespace std::chrono_literals;
using test::ZipBuilder;

std::string uploadBody(const std::string& name, const std::string& zip = test::pythonZip(), int threads = 1) {
  return R"({"name":")" + name + R"(","env":"python3","threads":)" + std::to_string(threads) + R"(,"zip":")" +
         encodeBase64(zip) + R"("})";
}

class ManagementApiTest : public test::ManagerFixture {
 protected:
  ManagementApi& api() {
    if (!api_) api_ = std::make_unique<ManagementApi>(manager(), logs, io.get_executor(), apiOptions);
    return *api_;
  }

  HttpResponse request(http::verb method, std::string target, std::string body = "",
                       std::string host = "localhost:8080", std::string authorization = "") {
    HttpRequest request{method, target, 11};
    if (!host.empty()) request.set(http::field::host, host);
    if (!authorization.empty()) request.set(http::field::authorization, authorization);
    request.body() = std::move(body);
    request.prepare_payload();
    return test::run(io, [this, request = std::move(request)]() mutable -> boost::asio::awaitable<HttpResponse> {
      co_return co_await api().handle(request);
    }());
  }

  ManagementApiOptions apiOptions{{5683, 8000, -1}, {}, nullptr, nullptr, {}, {}, {}, {}};
  std::unique_ptr<ManagementApi> api_;
};

TEST_F(ManagementApiTest, UploadDeploysAndAnswersWithEnabledEndpoints) {
  auto response = request(http::verb::post, "/upload", uploadBody("echo", test::pythonZip(), 2));
  EXPECT_EQ(response.result(), http::status::ok) << response.body();
  EXPECT_EQ(response.body(), "coap://localhost:5683/echo\nhttp://localhost:8000/echo\n");
  EXPECT_EQ(routed("echo").size(), 2u);
}

TEST_F(ManagementApiTest, EndpointLinesFollowTheHostHeaderAndEnabledPorts) {
  apiOptions.ports = {-1, 8000, 9000};
  auto ipv6 = request(http::verb::post, "/upload", uploadBody("echo"), "[::1]:8080");
  EXPECT_EQ(ipv6.body(), "http://[::1]:8000/echo\ngrpc://[::1]:9000/echo\n");
  auto noPort = request(http::verb::post, "/upload", uploadBody("echo"), "127.0.0.1");
  EXPECT_EQ(noPort.body(), "http://127.0.0.1:8000/echo\ngrpc://127.0.0.1:9000/echo\n");
  auto noHost = request(http::verb::post, "/upload", uploadBody("echo"), "");
  EXPECT_EQ(noHost.body(), "http://localhost:8000/echo\ngrpc://localhost:9000/echo\n");
}

TEST_F(ManagementApiTest, UploadWithBadJsonIs400WithTheReason) {
  auto response = request(http::verb::post, "/upload", "{not json");
  EXPECT_EQ(response.result(), http::status::bad_request);
  EXPECT_EQ(response.body(), "request body is not valid JSON\n");
  auto threads = request(http::verb::post, "/upload", R"({"name":"echo","env":"python3","threads":0,"zip":"eA=="})");
  EXPECT_EQ(threads.result(), http::status::bad_request);
  EXPECT_EQ(threads.body(), "threads must be between 1 and 64, got 0\n");
  EXPECT_TRUE(backend.instances.empty());
}

TEST_F(ManagementApiTest, UploadThatCannotDeployIs400WithTheReason) {
  auto badZip = request(http::verb::post, "/upload", uploadBody("echo", "definitely not a zip"));
  EXPECT_EQ(badZip.result(), http::status::bad_request);
  EXPECT_EQ(badZip.body().rfind("not a valid zip archive", 0), 0u) << badZip.body();
  backend.exitOnStart = 1;
  auto failed = request(http::verb::post, "/upload", uploadBody("echo"));
  EXPECT_EQ(failed.result(), http::status::bad_request);
  EXPECT_EQ(failed.body().rfind("function did not start: instance echo.1 exited with status 1", 0), 0u)
      << failed.body();
  EXPECT_EQ(failed.body().find('\n'), failed.body().size() - 1);  // one line
}

TEST_F(ManagementApiTest, ListNamesOnePerLine) {
  EXPECT_EQ(request(http::verb::get, "/list").body(), "");
  request(http::verb::post, "/upload", uploadBody("b"));
  request(http::verb::post, "/upload", uploadBody("a"));
  auto response = request(http::verb::get, "/list?verbose=1");
  EXPECT_EQ(response.result(), http::status::ok);
  EXPECT_EQ(response.body(), "a\nb\n");
}

TEST_F(ManagementApiTest, DeleteRemovesAFunction) {
  request(http::verb::post, "/upload", uploadBody("echo"));
  auto response = request(http::verb::post, "/delete", R"({"name":"echo"})");
  EXPECT_EQ(response.result(), http::status::ok);
  EXPECT_EQ(response.body(), "deleted echo\n");
  EXPECT_FALSE(router.contains("echo"));
  EXPECT_EQ(request(http::verb::get, "/list").body(), "");
}

TEST_F(ManagementApiTest, DeleteOfUnknownFunctionIs404) {
  auto response = request(http::verb::post, "/delete", R"({"name":"nope"})");
  EXPECT_EQ(response.result(), http::status::not_found);
  EXPECT_EQ(response.body(), "function nope not found\n");
}

TEST_F(ManagementApiTest, DeleteWithBadBodyIs400) {
  auto response = request(http::verb::post, "/delete", R"({"name":"a/b"})");
  EXPECT_EQ(response.result(), http::status::bad_request);
  EXPECT_EQ(
      response.body(),
      "function name \"a/b\" must be 1 to 64 letters, digits and -, starting and ending with a letter or digit\n");
}

TEST_F(ManagementApiTest, WipeRemovesEverything) {
  request(http::verb::post, "/upload", uploadBody("a"));
  request(http::verb::post, "/upload", uploadBody("b"));
  auto response = request(http::verb::post, "/wipe");
  EXPECT_EQ(response.result(), http::status::ok);
  EXPECT_EQ(request(http::verb::get, "/list").body(), "");
  EXPECT_EQ(backend.running(), 0u);
}

TEST_F(ManagementApiTest, WrongMethodIs405WithAllow) {
  const std::pair<std::string, http::verb> routes[] = {
      {"/upload", http::verb::post}, {"/uploadURL", http::verb::post}, {"/delete", http::verb::post},
      {"/list", http::verb::get},    {"/wipe", http::verb::post},      {"/logs", http::verb::get},
  };
  for (const auto& [path, allowed] : routes) {
    const auto wrong = allowed == http::verb::get ? http::verb::post : http::verb::get;
    auto response = request(wrong, path);
    EXPECT_EQ(response.result(), http::status::method_not_allowed) << path;
    EXPECT_EQ(response[http::field::allow], http::to_string(allowed)) << path;
    EXPECT_EQ(response.body(), "use " + std::string(http::to_string(allowed)) + " for " + path + "\n");
  }
  EXPECT_EQ(request(http::verb::delete_, "/list").result(), http::status::method_not_allowed);
}

TEST_F(ManagementApiTest, ClusterFieldsAndPathsNeedClusterMode) {
  std::string body = uploadBody("echo");
  body.insert(body.size() - 1, R"(,"nodes":1)");
  auto upload = request(http::verb::post, "/upload", body);
  EXPECT_EQ(upload.result(), http::status::bad_request);
  EXPECT_EQ(upload.body(), "field \"nodes\" needs cluster mode (tinyfaas serve --cluster)\n");
  EXPECT_TRUE(manager().names().empty());
  auto nodes = request(http::verb::get, "/nodes");
  EXPECT_EQ(nodes.result(), http::status::not_found);
  EXPECT_EQ(nodes.body(), "/nodes needs cluster mode (tinyfaas serve --cluster)\n");
}

TEST_F(ManagementApiTest, UnknownPathIs404) {
  auto response = request(http::verb::get, "/nope");
  EXPECT_EQ(response.result(), http::status::not_found);
  EXPECT_EQ(response.body(),
            "unknown path /nope (try /upload, /delete, /list, /wipe, /logs, /functions, /metrics, /calls, /nodes)\n");
  EXPECT_EQ(request(http::verb::get, "/list/").result(), http::status::not_found);
  EXPECT_EQ(request(http::verb::get, "/").result(), http::status::not_found);
}

TEST_F(ManagementApiTest, MalformedTargetIs400) {
  auto response = request(http::verb::get, "http://other/list");
  EXPECT_EQ(response.result(), http::status::bad_request);
  EXPECT_EQ(response.body(), "malformed request target\n");
}

TEST_F(ManagementApiTest, LogsOfAFunction) {
  request(http::verb::post, "/upload", uploadBody("echo"));
  logs.append("echo", "echo.1", "hello from echo");
  logs.append("other", "other.1", "not this one");
  auto response = request(http::verb::get, "/logs?name=echo");
  EXPECT_EQ(response.result(), http::status::ok);
  EXPECT_NE(response.body().find(" echo.1 hello from echo\n"), std::string::npos) << response.body();
  EXPECT_EQ(response.body().find("not this one"), std::string::npos);
}

TEST_F(ManagementApiTest, LogsOfADeployedFunctionWithoutOutputIsEmpty200) {
  request(http::verb::post, "/upload", uploadBody("quiet"));
  auto response = request(http::verb::get, "/logs?name=quiet");
  EXPECT_EQ(response.result(), http::status::ok);
  EXPECT_EQ(response.body(), "");
}

TEST_F(ManagementApiTest, LogsOfAnUnknownFunctionIs404) {
  auto response = request(http::verb::get, "/logs?name=unknown");
  EXPECT_EQ(response.result(), http::status::not_found);
  EXPECT_EQ(response.body(), "function unknown not found\n");
}

TEST_F(ManagementApiTest, LogsWithABadNameIs400) {
  auto response = request(http::verb::get, "/logs?name=..%2Fetc");
  EXPECT_EQ(response.result(), http::status::bad_request);
  EXPECT_EQ(response.body(),
            "function name must be 1 to 64 letters, digits and -, starting and ending with a letter or digit\n");
}

TEST_F(ManagementApiTest, AllLogsWithoutAName) {
  logs.append("a", "a.1", "first");
  logs.append("b", "b.1", "second");
  for (const char* target : {"/logs", "/logs?name=", "/logs?other=1"}) {
    auto response = request(http::verb::get, target);
    EXPECT_EQ(response.result(), http::status::ok) << target;
    EXPECT_NE(response.body().find("a.1 first\n"), std::string::npos) << target;
    EXPECT_NE(response.body().find("b.1 second\n"), std::string::npos) << target;
  }
}

TEST_F(ManagementApiTest, LogsTakeTailAndSinceAndNameABadOne) {
  logs.append("b", "b.1", "first");
  logs.append("a", "a.1", "second");
  logs.append("b", "b.1", "third");
  auto response = request(http::verb::get, "/logs?tail=2&since=1h");
  EXPECT_EQ(response.result(), http::status::ok);
  EXPECT_EQ(response.body().find("first"), std::string::npos) << response.body();
  EXPECT_LT(response.body().find("a.1 second\n"), response.body().find("b.1 third\n")) << response.body();
  response = request(http::verb::get, "/logs?name=b&tail=1");
  EXPECT_NE(response.body().find("b.1 third\n"), std::string::npos) << response.body();
  EXPECT_EQ(response.body().find("first"), std::string::npos) << response.body();
  response = request(http::verb::get, "/logs?name=b&tail=many");
  EXPECT_EQ(response.result(), http::status::bad_request);
  EXPECT_EQ(response.body().rfind("tail must be a whole number of lines", 0), 0u) << response.body();
  response = request(http::verb::get, "/logs?since=yesterday");
  EXPECT_EQ(response.result(), http::status::bad_request);
  EXPECT_EQ(response.body().rfind("since must be a duration", 0), 0u) << response.body();
}

TEST_F(ManagementApiTest, UploadUrlValidatesItsBodyFirst) {
  auto response = request(http::verb::post, "/uploadURL", R"({"name":"echo","env":"python3","threads":1,
      "url":"ftp://example.org/f.zip"})");
  EXPECT_EQ(response.result(), http::status::bad_request);
  EXPECT_EQ(response.body(), "url \"ftp://example.org/f.zip\" must start with http:// or https://\n");
}

TEST_F(ManagementApiTest, AnswersKeepTheRequestsConnectionSemantics) {
  HttpRequest closing{http::verb::get, "/list", 11};
  closing.keep_alive(false);
  auto response =
      test::run(io, [&]() -> boost::asio::awaitable<HttpResponse> { co_return co_await api().handle(closing); }());
  EXPECT_FALSE(response.keep_alive());
}

TEST_F(ManagementApiTest, WithoutTokensWhatAWebPageCouldSendIs403) {
  auto foreign = request(http::verb::post, "/upload", uploadBody("echo"), "evil.example:8080");
  EXPECT_EQ(foreign.result(), http::status::forbidden);
  EXPECT_EQ(foreign.body().rfind("Host 'evil.example:8080' is not a loopback name or address", 0), 0u)
      << foreign.body();
  HttpRequest crossSite{http::verb::post, "/wipe", 11};
  crossSite.set(http::field::host, "127.0.0.1:8080");
  crossSite.set(http::field::origin, "http://evil.example");
  auto refusal = api().admit(crossSite);
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->result(), http::status::forbidden);
  EXPECT_EQ(refusal->body().find('\n'), refusal->body().size() - 1);  // one line
  EXPECT_TRUE(backend.instances.empty());
  EXPECT_EQ(request(http::verb::get, "/list", "", "[::1]:8080").result(), http::status::ok);
}

class AuthenticatedApiTest : public ManagementApiTest {
 protected:
  static constexpr const char* kAdmin = "admin-token-0123456789";
  static constexpr const char* kAlice = "alice-token-0123456789";
  static constexpr const char* kBob = "bob-token-0123456789ab";

  AuthenticatedApiTest() {
    auto tokens = AccessTokens::parse(
        std::string(kAdmin) + " ops admin\n" + kAlice + " alice tenant\n" + kBob + " bob tenant\n", "tokens");
    EXPECT_TRUE(tokens);
    apiOptions.tokens = std::move(*tokens);
  }

  HttpResponse as(const char* token, http::verb method, std::string target, std::string body = "") {
    return request(method, std::move(target), std::move(body), "edge.example:8080", std::string("Bearer ") + token);
  }
};

TEST_F(AuthenticatedApiTest, MissingOrWrongTokenIs401WithAChallenge) {
  auto missing = request(http::verb::get, "/list");
  EXPECT_EQ(missing.result(), http::status::unauthorized);
  EXPECT_EQ(missing[http::field::www_authenticate], R"(Bearer realm="tinyfaas")");
  auto wrong = as("not-a-token-at-all-here", http::verb::get, "/list");
  EXPECT_EQ(wrong.result(), http::status::unauthorized);
  EXPECT_EQ(wrong[http::field::www_authenticate], R"(Bearer realm="tinyfaas", error="invalid_token")");
  auto basic = request(http::verb::get, "/list", "", "edge.example:8080", std::string("Basic ") + kAdmin);
  EXPECT_EQ(basic.result(), http::status::unauthorized);
  auto upload = request(http::verb::post, "/upload", uploadBody("echo"));
  EXPECT_EQ(upload.result(), http::status::unauthorized);
  EXPECT_TRUE(backend.instances.empty());
  // The scheme is case-insensitive.
  auto lower = request(http::verb::get, "/list", "", "edge.example:8080", std::string("bearer ") + kAdmin);
  EXPECT_EQ(lower.result(), http::status::ok);
}

TEST_F(AuthenticatedApiTest, AdmitDecidesOnTheHeaderAlone) {
  HttpRequest header{http::verb::post, "/upload", 11};
  header.set(http::field::host, "edge.example:8080");
  header.set(http::field::content_length, "83886080");  // nothing of it has arrived
  auto refusal = api().admit(header);
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->result(), http::status::unauthorized);
  header.set(http::field::authorization, std::string("Bearer ") + kAlice);
  EXPECT_FALSE(api().admit(header));
  // With tokens the token is what counts, not where the request came from.
  header.set(http::field::origin, "http://evil.example");
  EXPECT_FALSE(api().admit(header));
}

TEST_F(AuthenticatedApiTest, HealthProbesNeedNoToken) {
  EXPECT_EQ(request(http::verb::get, "/healthz").body(), "ok\n");
  auto starting = request(http::verb::get, "/readyz");
  EXPECT_EQ(starting.result(), http::status::service_unavailable);
  EXPECT_EQ(starting.body(), "starting: the stored functions are being restored\n");
  api().markReady();
  auto ready = request(http::verb::get, "/readyz?verbose=1");
  EXPECT_EQ(ready.result(), http::status::ok);
  EXPECT_EQ(ready.body(), "ok\n");
  auto post = request(http::verb::post, "/healthz");
  EXPECT_EQ(post.result(), http::status::method_not_allowed);
  // Nothing else opens up: a neighbouring path still needs the token.
  EXPECT_EQ(request(http::verb::get, "/healthz/../list").result(), http::status::unauthorized);
}

TEST_F(AuthenticatedApiTest, ReplacedTokensTakeEffectAtOnce) {
  const std::string carol = "carol-token-0123456789";
  auto tokens = AccessTokens::parse(carol + " carol tenant\n", "tokens");
  ASSERT_TRUE(tokens);
  EXPECT_TRUE(api().replaceTokens(std::move(*tokens)));
  EXPECT_EQ(api().tokenCount(), 1u);
  EXPECT_EQ(as(carol.c_str(), http::verb::get, "/list").result(), http::status::ok);
  EXPECT_EQ(as(kAdmin, http::verb::get, "/list").result(), http::status::unauthorized);
}

TEST_F(ManagementApiTest, WithoutTokensThereAreNoneToReplace) {
  auto tokens = AccessTokens::parse("carol-token-0123456789 carol tenant\n", "tokens");
  ASSERT_TRUE(tokens);
  EXPECT_FALSE(api().replaceTokens(std::move(*tokens)));
  EXPECT_EQ(request(http::verb::get, "/list").result(), http::status::ok);
}

TEST_F(AuthenticatedApiTest, TenantsAreIsolatedAndAdminsSeeAll) {
  ASSERT_EQ(as(kAlice, http::verb::post, "/upload", uploadBody("alicefn")).result(), http::status::ok);
  ASSERT_EQ(as(kBob, http::verb::post, "/upload", uploadBody("bobfn")).result(), http::status::ok);
  logs.append("alicefn", "alicefn.1", "alice secret");
  logs.append("bobfn", "bobfn.2", "bob secret");

  EXPECT_EQ(as(kAlice, http::verb::get, "/list").body(), "alicefn\n");
  EXPECT_EQ(as(kAdmin, http::verb::get, "/list").body(), "alicefn\nbobfn\n");
  auto aliceLogs = as(kAlice, http::verb::get, "/logs").body();
  EXPECT_NE(aliceLogs.find("alice secret"), std::string::npos);
  EXPECT_EQ(aliceLogs.find("bob secret"), std::string::npos) << aliceLogs;
  EXPECT_NE(as(kAdmin, http::verb::get, "/logs").body().find("bob secret"), std::string::npos);

  // Another tenant's function answers exactly like an unknown one.
  auto hidden = as(kAlice, http::verb::get, "/logs?name=bobfn");
  auto unknown = as(kAlice, http::verb::get, "/logs?name=nosuch");
  EXPECT_EQ(hidden.result(), http::status::not_found);
  EXPECT_EQ(hidden.body(), "function bobfn not found\n");
  EXPECT_EQ(unknown.body(), "function nosuch not found\n");
  auto deleteHidden = as(kAlice, http::verb::post, "/delete", R"({"name":"bobfn"})");
  EXPECT_EQ(deleteHidden.result(), http::status::not_found);
  EXPECT_EQ(deleteHidden.body(), "function bobfn not found\n");
  auto taken = as(kAlice, http::verb::post, "/upload", uploadBody("bobfn"));
  EXPECT_EQ(taken.result(), http::status::conflict);
  EXPECT_EQ(taken.body(), "function name bobfn is taken; choose another name\n");

  EXPECT_EQ(as(kAlice, http::verb::post, "/wipe").result(), http::status::ok);
  EXPECT_EQ(as(kAdmin, http::verb::get, "/list").body(), "bobfn\n");
  EXPECT_EQ(as(kAdmin, http::verb::post, "/delete", R"({"name":"bobfn"})").result(), http::status::ok);
  EXPECT_EQ(as(kAdmin, http::verb::get, "/list").body(), "");
}

}  // namespace
}  // namespace tinyfaas
