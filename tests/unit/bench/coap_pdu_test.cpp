#include "coap_pdu.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>

namespace tinyfaas::bench {
namespace {

class CoapPdu : public ::testing::Test {
 protected:
  void SetUp() override { initCoapPdu(); }
};

std::string bytes(std::initializer_list<int> list) {
  std::string out;
  for (int b : list) out.push_back(static_cast<char>(b));
  return out;
}

TEST_F(CoapPdu, RequestHasTheRfc7252WireLayout) {
  CoapRequestSpec spec;
  spec.type = CoapType::con;
  spec.code = 2;  // POST
  spec.uriPath = {"sieve"};
  spec.payload = "hi";
  const std::array<std::uint8_t, 4> token = {1, 2, 3, 4};
  const auto wire = encodeCoapRequest(spec, 0x1234, token);
  ASSERT_TRUE(wire);
  // Ver 1, CON, TKL 4 | 0.02 | MID | token | Uri-Path (delta 11, len 5) | 0xFF | payload
  EXPECT_EQ(*wire, bytes({0x44, 0x02, 0x12, 0x34, 1, 2, 3, 4, 0xB5}) + "sieve" + bytes({0xFF}) + "hi");
}

TEST_F(CoapPdu, EmptyAckIsFourBytes) {
  const auto wire = encodeCoapEmpty(CoapType::ack, 0xBEEF);
  ASSERT_TRUE(wire);
  EXPECT_EQ(*wire, bytes({0x60, 0x00, 0xBE, 0xEF}));
}

TEST_F(CoapPdu, RoundTripEveryShape) {
  struct Shape {
    std::vector<std::string> path, query;
    std::string payload;
    std::size_t tokenLength;
  };
  const std::string big(1000, 'x');
  const std::vector<Shape> shapes = {
      {{}, {}, "", 0},
      {{"fn"}, {}, "", 4},
      {{}, {}, "payload only", 8},
      {{"a", "bb", "a-rather-long-segment-over-thirteen"}, {"x=1", "y"}, "data", 2},
      // 255 is Uri-Path's longest (RFC 7252 section 5.10): the one-byte extended length.
      {{std::string(255, 'p')}, {}, big, 8},
  };
  for (const auto& shape : shapes) {
    CoapRequestSpec spec;
    spec.type = CoapType::non;
    spec.code = 1;
    spec.uriPath = shape.path;
    spec.uriQuery = shape.query;
    spec.payload = shape.payload;
    std::vector<std::uint8_t> token(shape.tokenLength);
    for (std::size_t i = 0; i < token.size(); ++i) token[i] = static_cast<std::uint8_t>(0xA0 + i);
    const auto wire = encodeCoapRequest(spec, 777, token);
    ASSERT_TRUE(wire);
    const auto parsed = parseCoapMessage({reinterpret_cast<const std::uint8_t*>(wire->data()), wire->size()});
    ASSERT_TRUE(parsed) << "payload " << shape.payload.size();
    EXPECT_EQ(parsed->type, CoapType::non);
    EXPECT_EQ(parsed->code, 1);
    EXPECT_EQ(parsed->messageId, 777);
    EXPECT_TRUE(std::ranges::equal(parsed->tokenBytes(), token));
    EXPECT_EQ(parsed->payload, shape.payload);
  }
}

TEST_F(CoapPdu, SplitsPathAndQuery) {
  std::vector<std::string> path, query;
  splitCoapPath("/a/b?x=1&&y", path, query);
  EXPECT_EQ(path, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(query, (std::vector<std::string>{"x=1", "y"}));
  splitCoapPath("/", path, query);
  EXPECT_TRUE(path.empty());
  EXPECT_TRUE(query.empty());
}

TEST_F(CoapPdu, RejectsWhatIsNotCoap) {
  EXPECT_FALSE(parseCoapMessage({}));
  const std::string tooShort = bytes({0x40, 0x01});
  EXPECT_FALSE(parseCoapMessage({reinterpret_cast<const std::uint8_t*>(tooShort.data()), tooShort.size()}));
  // Version 2 is not CoAP 1.
  const std::string version2 = bytes({0x80, 0x01, 0x00, 0x01});
  EXPECT_FALSE(parseCoapMessage({reinterpret_cast<const std::uint8_t*>(version2.data()), version2.size()}));
  // TKL 9 is reserved.
  const std::string tkl9 = bytes({0x49, 0x01, 0x00, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  EXPECT_FALSE(parseCoapMessage({reinterpret_cast<const std::uint8_t*>(tkl9.data()), tkl9.size()}));
  // A payload marker with no payload after it is a format error.
  const std::string emptyPayload = bytes({0x40, 0x01, 0x00, 0x01, 0xFF});
  EXPECT_FALSE(parseCoapMessage({reinterpret_cast<const std::uint8_t*>(emptyPayload.data()), emptyPayload.size()}));
}

}  // namespace
}  // namespace tinyfaas::bench
