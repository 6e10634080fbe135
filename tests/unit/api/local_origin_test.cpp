#include "api/local_origin.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http.hpp>

namespace tinyfaas {
namespace {

namespace http = boost::beast::http;

HttpRequest header(std::optional<std::string> host, std::optional<std::string> origin = std::nullopt,
                   std::optional<std::string> fetchSite = std::nullopt) {
  HttpRequest request{http::verb::post, "/upload", 11};
  if (host) request.set(http::field::host, *host);
  if (origin) request.set(http::field::origin, *origin);
  if (fetchSite) request.set("Sec-Fetch-Site", *fetchSite);
  return request;
}

TEST(LoopbackName, KnowsLoopbackNamesAndAddresses) {
  for (const char* name : {"localhost", "LocalHost", "localhost.", "app.localhost", "127.0.0.1", "127.1.2.3", "[::1]",
                           "::1", "[::ffff:127.0.0.1]", "[0:0:0:0:0:0:0:1]", "127.0.0.1."}) {
    EXPECT_TRUE(isLoopbackName(name)) << name;
  }
  for (const char* name : {"", "evil.example", "localhost.evil.example", "127.0.0.1.evil.example", "10.0.0.1", "[::2]",
                           "0.0.0.0", "[::]", "localhostx", "[::ffff:10.0.0.1]"}) {
    EXPECT_FALSE(isLoopbackName(name)) << name;
  }
}

TEST(ForeignRequest, PlainClientsOnLoopbackPass) {
  for (const char* host : {"127.0.0.1:8080", "localhost:8080", "localhost", "[::1]:8080", "LOCALHOST:8080"}) {
    EXPECT_FALSE(foreignRequestReason(header(host))) << host;
  }
  EXPECT_FALSE(foreignRequestReason(header(std::nullopt)));  // HTTP/1.0 without Host
}

TEST(ForeignRequest, ForeignHostsAreRefused) {
  for (const char* host : {"evil.example", "evil.example:8080", "", "10.0.0.1:8080", "[::1", "[::1]x",
                           "127.0.0.1:8080:1", "127.0.0.1:99999", "127.0.0.1:port", ":8080"}) {
    auto reason = foreignRequestReason(header(host));
    ASSERT_TRUE(reason) << host;
    EXPECT_NE(reason->find("is not a loopback name or address"), std::string::npos) << *reason;
  }
}

TEST(ForeignRequest, OnlyThisApisOwnOriginPasses) {
  EXPECT_FALSE(foreignRequestReason(header("127.0.0.1:8080", "http://127.0.0.1:8080")));
  EXPECT_FALSE(foreignRequestReason(header("localhost:8080", "http://localhost:8080")));
  EXPECT_FALSE(foreignRequestReason(header("localhost:8080", "HTTP://LOCALHOST:8080")));
  EXPECT_FALSE(foreignRequestReason(header("[::1]:8080", "http://[::1]:8080")));
  EXPECT_FALSE(foreignRequestReason(header("localhost", "http://localhost")));
  EXPECT_FALSE(foreignRequestReason(header("localhost:80", "http://127.0.0.1")));
  for (const char* origin : {"http://evil.example", "null", "http://evil.example:8080", "http://127.0.0.1:8081",
                             "https://127.0.0.1:8080", "http://localhost", "http://127.0.0.1:8080/path",
                             "http://user@127.0.0.1:8080", "file://", "http://localhost:", "garbage"}) {
    auto reason = foreignRequestReason(header("127.0.0.1:8080", origin));
    ASSERT_TRUE(reason) << origin;
    EXPECT_EQ(reason->rfind("cross-origin request refused: Origin", 0), 0u) << *reason;
  }
  // An Origin without a Host: no browser sends that.
  EXPECT_TRUE(foreignRequestReason(header(std::nullopt, "http://127.0.0.1:8080")));
}

TEST(ForeignRequest, SecFetchSiteOtherThanSameOriginOrNoneIsRefused) {
  EXPECT_FALSE(foreignRequestReason(header("localhost:8080", std::nullopt, "same-origin")));
  EXPECT_FALSE(foreignRequestReason(header("localhost:8080", std::nullopt, "none")));
  for (const char* site : {"cross-site", "same-site", "whatever"}) {
    EXPECT_TRUE(foreignRequestReason(header("localhost:8080", std::nullopt, site))) << site;
  }
}

TEST(ForeignRequest, ReasonsAreOneShortLine) {
  auto reason = foreignRequestReason(header("evil.example", std::string(5000, 'o')));
  ASSERT_TRUE(reason);
  EXPECT_LT(reason->size(), 300u);
  EXPECT_EQ(reason->find('\n'), std::string::npos);
}

}  // namespace
}  // namespace tinyfaas
