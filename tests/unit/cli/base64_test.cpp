// The zip travels base64-encoded inside the upload JSON; deploy uses the
// tree's util/base64 for it. These pin what the daemon and upstream expect.

#include "util/base64.hpp"

#include <gtest/gtest.h>

namespace tinyfaas::cli {
namespace {

// RFC 4648, section 10.
TEST(UploadBase64, EncodesRfc4648Vectors) {
  EXPECT_EQ(encodeBase64(""), "");
  EXPECT_EQ(encodeBase64("f"), "Zg==");
  EXPECT_EQ(encodeBase64("fo"), "Zm8=");
  EXPECT_EQ(encodeBase64("foo"), "Zm9v");
  EXPECT_EQ(encodeBase64("foob"), "Zm9vYg==");
  EXPECT_EQ(encodeBase64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(encodeBase64("foobar"), "Zm9vYmFy");
}

TEST(UploadBase64, UsesTheStandardAlphabet) {
  // '+' and '/', not the URL-safe '-' and '_': Go's StdEncoding in upstream.
  EXPECT_EQ(encodeBase64(std::string("\x00\xff\xfe", 3)), "AP/+");
  EXPECT_EQ(encodeBase64(std::string("\xfb\xff", 2)), "+/8=");
}

TEST(UploadBase64, NeverWrapsLines) {
  const std::string encoded = encodeBase64(std::string(10'000, '\x5a'));
  EXPECT_EQ(encoded.size(), 13'336u);
  EXPECT_EQ(encoded.find_first_of("\r\n"), std::string::npos);
}

TEST(UploadBase64, RoundTripsAllLengthsAndBytes) {
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    bytes.push_back(static_cast<char>(i * 7 + 3));
    const auto decoded = decodeBase64(encodeBase64(bytes));
    ASSERT_TRUE(decoded.has_value()) << i;
    EXPECT_EQ(*decoded, bytes);
  }
}

}  // namespace
}  // namespace tinyfaas::cli
