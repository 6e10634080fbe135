#include "proxy/handler_frame.hpp"

#include <gtest/gtest.h>

namespace tinyfaas {
namespace {

using namespace std::string_literals;

TEST(HandlerFrameTest, RequestIsPrefaceLengthsHeadersThenBody) {
  const Invocation invocation{"echo", "hi", {{"Lab", "x"}, {"X-Multi", "1"}}};
  const std::string expected = "\0TF1"s +                        // preface
                               "\0\0\0\x18"s + "\0\0\0\x02"s +   // 24 header bytes, 2 body bytes
                               "\0\x03Lab"s + "\0\0\0\x01x"s +   // Lab: x
                               "\0\x07X-Multi"s + "\0\0\0\x01" "1"s + "hi";
  EXPECT_EQ(frame::encodeRequest(invocation, true), expected);
  EXPECT_EQ(frame::encodeRequest(invocation, false), expected.substr(4));
}

TEST(HandlerFrameTest, EmptyCallIsEightZeroBytes) {
  EXPECT_EQ(frame::encodeRequest(Invocation{"echo", "", {}}, false), std::string(8, '\0'));
}

TEST(HandlerFrameTest, HeaderNameTooLongForTheFrameIsLeftOut) {
  const Invocation invocation{"echo", "", {{std::string(70000, 'a'), "v"}}};
  EXPECT_EQ(frame::encodeRequest(invocation, false), std::string(8, '\0'));
}

TEST(HandlerFrameTest, ResponseHeadIsStatusAndBodyLength) {
  const auto head = frame::decodeResponseHead("\0\0\x01\xf4\0\x01\0\x02"s);
  EXPECT_EQ(head.status, 500u);
  EXPECT_EQ(head.bodyBytes, 65538u);
}

}  // namespace
}  // namespace tinyfaas
