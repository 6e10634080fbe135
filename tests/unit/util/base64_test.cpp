#include "util/base64.hpp"

#include <gtest/gtest.h>

#include <random>

namespace tinyfaas {
namespace {

struct Vector {
  const char* plain;
  const char* encoded;
};

// RFC 4648, section 10.
constexpr Vector kRfc4648[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

TEST(Base64, EncodesRfc4648Vectors) {
  for (const auto& v : kRfc4648) EXPECT_EQ(encodeBase64(v.plain), v.encoded) << v.plain;
}

TEST(Base64, DecodesRfc4648Vectors) {
  for (const auto& v : kRfc4648) {
    auto decoded = decodeBase64(v.encoded);
    ASSERT_TRUE(decoded) << v.encoded;
    EXPECT_EQ(*decoded, v.plain);
  }
}

TEST(Base64, IgnoresLineBreaksAndSpaces) {
  // `base64` wraps at 76 columns; people paste it with indentation.
  EXPECT_EQ(decodeBase64("Zm9v\nYmFy\n"), "foobar");
  EXPECT_EQ(decodeBase64("Zm9v\r\nYmFy\r\n"), "foobar");
  EXPECT_EQ(decodeBase64("  Zm9v YmFy\t"), "foobar");
  EXPECT_EQ(decodeBase64("Zm\n9v\nYg\n=\n=\n"), "foob");
  EXPECT_EQ(decodeBase64("\n \t\r"), "");
}

TEST(Base64, RejectsCharactersOutsideTheAlphabet) {
  EXPECT_FALSE(decodeBase64("Zm9v*mFy"));
  EXPECT_FALSE(decodeBase64("Zm9-"));  // URL-safe alphabet is not accepted
  EXPECT_FALSE(decodeBase64("Zm9_"));
  EXPECT_FALSE(decodeBase64("Zm9v\vYmFy"));
  EXPECT_FALSE(decodeBase64(std::string_view("Zm9\0", 4)));
  EXPECT_FALSE(decodeBase64("Zm9\xc3"));
}

TEST(Base64, RejectsBadPadding) {
  EXPECT_FALSE(decodeBase64("Z==="));
  EXPECT_FALSE(decodeBase64("===="));
  EXPECT_FALSE(decodeBase64("Zg=a"));
  EXPECT_FALSE(decodeBase64("=Zg="));
  EXPECT_FALSE(decodeBase64("Zg==Zm9v"));  // padding in the middle
  EXPECT_FALSE(decodeBase64("Zm9vYmFy===="));
  EXPECT_FALSE(decodeBase64("Zm9v===="));
}

TEST(Base64, RejectsLengthsThatAreNotAMultipleOfFour) {
  EXPECT_FALSE(decodeBase64("Z"));
  EXPECT_FALSE(decodeBase64("Zm9"));
  EXPECT_FALSE(decodeBase64("Zg="));
  EXPECT_FALSE(decodeBase64("Zg"));
  EXPECT_FALSE(decodeBase64("Zm9vY"));
  EXPECT_FALSE(decodeBase64("Zg==="));
}

TEST(Base64, UsesTheStandardAlphabet) {
  // '+' and '/', not the URL-safe '-' and '_': upstream's CLI used Go's StdEncoding.
  EXPECT_EQ(encodeBase64(std::string("\x00\xff\xfe", 3)), "AP/+");
  EXPECT_EQ(encodeBase64(std::string("\xfb\xff", 2)), "+/8=");
}

TEST(Base64, NeverWrapsLines) {
  // Upload JSON carries the zip as one string.
  const std::string encoded = encodeBase64(std::string(10'000, '\x5a'));
  EXPECT_EQ(encoded.size(), 13'336u);
  EXPECT_EQ(encoded.find_first_of("\r\n"), std::string::npos);
}

TEST(Base64, RoundTripsRandomBinary) {
  std::mt19937 random(4648);
  std::uniform_int_distribution<int> byte(0, 255);
  for (std::size_t length = 0; length < 300; ++length) {
    std::string data(length, '\0');
    for (auto& c : data) c = static_cast<char>(byte(random));
    const std::string encoded = encodeBase64(data);
    EXPECT_EQ(encoded.size(), (length + 2) / 3 * 4);
    auto decoded = decodeBase64(encoded);
    ASSERT_TRUE(decoded) << "length " << length;
    EXPECT_EQ(*decoded, data) << "length " << length;
  }
}

TEST(Base64, RoundTripsEveryByteValue) {
  std::string data;
  for (int i = 0; i < 256; ++i) data.push_back(static_cast<char>(i));
  EXPECT_EQ(decodeBase64(encodeBase64(data)), data);
}

TEST(Base64, DecodesWrappedOutputOfALargeInput) {
  std::string data(100000, '\0');
  std::mt19937 random(7);
  for (auto& c : data) c = static_cast<char>(random());
  const std::string encoded = encodeBase64(data);
  std::string wrapped;
  for (std::size_t i = 0; i < encoded.size(); i += 76) wrapped += encoded.substr(i, 76) + "\n";
  EXPECT_EQ(decodeBase64(wrapped), data);
}

}  // namespace
}  // namespace tinyfaas
