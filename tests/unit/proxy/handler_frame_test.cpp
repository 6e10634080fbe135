#include "proxy/handler_frame.hpp"

#include <gtest/gtest.h>

namespace tinyfaas {
namespace {

using namespace std::string_literals;
using namespace std::chrono_literals;

// "X-Tinyfaas-Timeout-Ms: <ms>" as the frame's last header.
std::string timeLeft(const std::string& ms) {
  return "\0\x15X-Tinyfaas-Timeout-Ms"s + "\0\0\0"s + static_cast<char>(ms.size()) + ms;
}

TEST(HandlerFrameTest, RequestIsLengthsHeadersThenBody) {
  const Invocation invocation{"echo", "hi", {{"Lab", "x"}, {"X-Multi", "1"}}};
  const std::string expected = "\0\0\0\x37"s + "\0\0\0\x02"s +  // 55 header bytes, 2 body bytes
                               "\0\x03Lab"s + "\0\0\0\x01x"s +  // Lab: x
                               "\0\x07X-Multi"s +
                               "\0\0\0\x01"
                               "1"s +
                               timeLeft("1500") + "hi";
  EXPECT_EQ(frame::encodeRequest(invocation, 1500ms), expected);
}

TEST(HandlerFrameTest, EmptyCallCarriesOnlyTheTimeLeft) {
  EXPECT_EQ(frame::encodeRequest(Invocation{"echo", "", {}}, 0ms),
            "\0\0\0\x1c"s + std::string(4, '\0') + timeLeft("0"));
}

TEST(HandlerFrameTest, HeaderNameTooLongForTheFrameIsLeftOut) {
  const Invocation invocation{"echo", "", {{std::string(70000, 'a'), "v"}}};
  EXPECT_EQ(frame::encodeRequest(invocation, 7ms), "\0\0\0\x1c"s + std::string(4, '\0') + timeLeft("7"));
}

TEST(HandlerFrameTest, AClientsOwnTimeLeftHeaderIsLeftOut) {
  const Invocation invocation{"echo", "", {{"X-Tinyfaas-Timeout-Ms", "999999"}}};
  EXPECT_EQ(frame::encodeRequest(invocation, 7ms), "\0\0\0\x1c"s + std::string(4, '\0') + timeLeft("7"));
}

TEST(HandlerFrameTest, ResponseHeadIsStatusHeaderAndBodyLengths) {
  const auto head = frame::decodeResponseHead("\0\0\x01\xf4\0\0\0\x0b\0\x01\0\x02"s);
  EXPECT_EQ(head.status, 500u);
  EXPECT_EQ(head.headerBytes, 11u);
  EXPECT_EQ(head.bodyBytes, 65538u);
}

TEST(HandlerFrameTest, ResponseHeaderBlockDecodesInOrderWithRepeats) {
  const std::string block =
      "\0\x01"
      "a"s +
      "\0\0\0\x01"
      "1"s +
      "\0\x01"
      "a"s +
      "\0\0\0\0"s;
  const auto headers = frame::decodeHeaders(block);
  ASSERT_TRUE(headers);
  EXPECT_EQ(*headers, (HeaderList{{"a", "1"}, {"a", ""}}));
  EXPECT_TRUE(frame::decodeHeaders(""));
}

TEST(HandlerFrameTest, ResponseHeaderBlockWhoseLengthsDoNotAddUpIsRefused) {
  EXPECT_FALSE(frame::decodeHeaders("\0"s));
  EXPECT_FALSE(frame::decodeHeaders("\0\x09x"s));
  EXPECT_FALSE(
      frame::decodeHeaders("\0\x01"
                           "a"s +
                           "\0\0\0\x05"
                           "1"s));
}

}  // namespace
}  // namespace tinyfaas
