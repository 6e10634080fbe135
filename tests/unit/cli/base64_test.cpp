#include "cli/base64.hpp"

#include <gtest/gtest.h>

namespace tinyfaas::cli {
namespace {

// RFC 4648, section 10.
TEST(Base64, EncodesRfc4648Vectors) {
  EXPECT_EQ(base64Encode(""), "");
  EXPECT_EQ(base64Encode("f"), "Zg==");
  EXPECT_EQ(base64Encode("fo"), "Zm8=");
  EXPECT_EQ(base64Encode("foo"), "Zm9v");
  EXPECT_EQ(base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64Encode("foobar"), "Zm9vYmFy");
}

TEST(Base64, EncodesEveryByteValue) {
  EXPECT_EQ(base64Encode(std::string("\x00\xff\xfe", 3)), "AP/+");
  EXPECT_EQ(base64Encode(std::string("\xfb\xff", 2)), "+/8=");
}

TEST(Base64, RoundTripsAllLengthsAndBytes) {
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    bytes.push_back(static_cast<char>(i * 7 + 3));
    const auto decoded = base64Decode(base64Encode(bytes));
    ASSERT_TRUE(decoded.has_value()) << i;
    EXPECT_EQ(*decoded, bytes);
  }
}

TEST(Base64, DecodeRejectsMalformedText) {
  EXPECT_FALSE(base64Decode("Zg=").has_value());    // length
  EXPECT_FALSE(base64Decode("Zm9v!A==").has_value());  // alphabet
  EXPECT_FALSE(base64Decode("Z=g=").has_value());   // padding in the middle
  EXPECT_FALSE(base64Decode("Zg==Zg==").has_value());  // padding before the end
  EXPECT_EQ(base64Decode("Zm9vYmFy").value_or("?"), "foobar");
}

}  // namespace
}  // namespace tinyfaas::cli
