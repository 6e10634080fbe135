#include "util/web_url.hpp"

#include <gtest/gtest.h>

namespace tinyfaas {
namespace {

TEST(UrlWithoutSecrets, DropsUserInfoQueryAndFragment) {
  EXPECT_EQ(urlWithoutSecrets("http://user:s3cret@example.com:8080/a/b.zip?sig=s3cret#frag"),
            "http://example.com:8080/a/b.zip");
  EXPECT_EQ(urlWithoutSecrets("https://example.com/x.zip"), "https://example.com/x.zip");
  EXPECT_EQ(urlWithoutSecrets("http://[::1]:9/x.zip?token=t"), "http://[::1]:9/x.zip");
  EXPECT_EQ(urlWithoutSecrets("http://user@example.com"), "http://example.com");
  EXPECT_EQ(urlWithoutSecrets("not a url at all"), "(a malformed URL)");
}

}  // namespace
}  // namespace tinyfaas
