#include "cli/http_url.hpp"

#include <gtest/gtest.h>

namespace tinyfaas::cli {
namespace {

TEST(HttpUrl, ParsesHostPortAndBasePath) {
  auto url = parseHttpUrl("http://localhost:8080");
  ASSERT_TRUE(url) << url.error();
  EXPECT_EQ(url->host, "localhost");
  EXPECT_EQ(url->port, 8080);
  EXPECT_EQ(url->basePath, "");

  url = parseHttpUrl("HTTP://edge.example/tinyfaas/");
  ASSERT_TRUE(url) << url.error();
  EXPECT_EQ(url->host, "edge.example");
  EXPECT_EQ(url->port, 80);
  EXPECT_EQ(url->basePath, "/tinyfaas");

  url = parseHttpUrl("http://[::1]:9090/");
  ASSERT_TRUE(url) << url.error();
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 9090);
  EXPECT_EQ(url->authority(), "[::1]:9090");
}

TEST(HttpUrl, RefusesWhatItCannotUse) {
  const auto https = parseHttpUrl("https://localhost:8080");
  ASSERT_FALSE(https);
  EXPECT_NE(https.error().find("https is not supported"), std::string::npos) << https.error();

  for (const char* bad : {"localhost:8080", "ftp://x", "http://", "http://:80", "http://x:0", "http://x:65536",
                          "http://x:8a", "http://x:", "http://u:p@x", "http://x/?q", "http://[::1"}) {
    EXPECT_FALSE(parseHttpUrl(bad)) << bad;
  }
}

}  // namespace
}  // namespace tinyfaas::cli
