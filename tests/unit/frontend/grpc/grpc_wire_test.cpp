// The gRPC endpoint's message handling against protobuf's generated code
// for proto/tinyfaas.proto: what the generated classes write, the endpoint
// reads, and the other way round.

#include "frontend/grpc/grpc_wire.hpp"

#include <string>

#include <gtest/gtest.h>

#include "tinyfaas.pb.h"

namespace tinyfaas::grpcwire {
namespace {

namespace pb = openfogstack::tinyfaas::tinyfaas;

std::string framed(const std::string& message, char compressed = 0) {
  std::string out(1, compressed);
  const auto n = static_cast<std::uint32_t>(message.size());
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xFF);
  return out + message;
}

std::string dataMessage(const std::string& name, const std::string& data) {
  pb::Data message;
  message.set_functionidentifier(name);
  message.set_data(data);
  return message.SerializeAsString();
}

TEST(GrpcWireTest, ReadsWhatProtobufWrote) {
  const auto parsed = parseRequestBody(framed(dataMessage("sieve", std::string("in\0put \xC3\xA4", 9))));
  ASSERT_TRUE(parsed.data) << parsed.refusal.reason;
  EXPECT_EQ(parsed.data->functionIdentifier, "sieve");
  EXPECT_EQ(parsed.data->data, std::string("in\0put \xC3\xA4", 9));

  const auto empty = parseRequestBody(framed(""));
  ASSERT_TRUE(empty.data);
  EXPECT_EQ(empty.data->functionIdentifier, "");
  EXPECT_EQ(empty.data->data, "");
}

TEST(GrpcWireTest, SkipsUnknownFieldsAndTheLastOccurrenceWins) {
  // field 7 varint, field 8 fixed64, field 9 fixed32, then name twice.
  const std::string unknown = std::string("\x38\x96\x01", 3) + "\x41" + std::string(8, 'x') + "\x4D" + "abcd";
  const auto parsed = parseRequestBody(framed(unknown + dataMessage("first", "d") + dataMessage("second", "")));
  ASSERT_TRUE(parsed.data) << parsed.refusal.reason;
  EXPECT_EQ(parsed.data->functionIdentifier, "second");
  EXPECT_EQ(parsed.data->data, "d");  // proto3 leaves out the empty one
}

TEST(GrpcWireTest, RefusesWhatIsNotOneUncompressedDataMessage) {
  const std::string message = dataMessage("echo", "x");
  struct Case {
    std::string body;
    Code code;
  };
  for (const Case& c : {
           Case{"", Code::internal}, Case{std::string("\0\0\0", 3), Code::internal},
           Case{framed(message).substr(0, 7), Code::internal},  // shorter than its length
           Case{framed(message) + "x", Code::internal},         // more than one message
           Case{framed(message, 1), Code::unimplemented},       // compressed
           Case{framed(std::string("\x0A\x10"
                                   "echo",
                                   6)),
                Code::invalidArgument},  // string cut short
           Case{framed(dataMessage("echo", "") + std::string("\x12\x02\xFF\xFE", 4)), Code::invalidArgument},
           Case{framed(std::string("\x0A\x02\xC0\xAF", 4)), Code::invalidArgument},  // overlong UTF-8 name
           Case{framed(std::string("\x0B", 1)), Code::invalidArgument},              // a group never closed
       }) {
    const auto parsed = parseRequestBody(c.body);
    EXPECT_FALSE(parsed.data);
    EXPECT_EQ(parsed.refusal.code, c.code) << parsed.refusal.reason;
    EXPECT_FALSE(parsed.refusal.reason.empty());
  }
}

TEST(GrpcWireTest, ProtobufReadsTheResponse) {
  for (const std::string& output : {std::string("hello"), std::string(), std::string(300, 'y'), std::string(70000, 'z'),
                                    std::string("\xF0\x9F\x98\x80")}) {
    const std::string bytes = encodeResponse(output);
    ASSERT_GE(bytes.size(), kMessagePrefixBytes);
    EXPECT_EQ(bytes[0], '\0');
    const std::string message = bytes.substr(kMessagePrefixBytes);
    EXPECT_EQ(bytes.substr(0, kMessagePrefixBytes), framed(message).substr(0, kMessagePrefixBytes));
    pb::Response response;
    ASSERT_TRUE(response.ParseFromString(message));
    EXPECT_EQ(response.response(), output);
    EXPECT_EQ(message, response.SerializeAsString());
  }
}

TEST(GrpcWireTest, StatusMessagesArePercentEncodedAndCapped) {
  EXPECT_EQ(statusMessage("function x not found", 1024), "function x not found");
  EXPECT_EQ(statusMessage("100% done\nnext \xC3\xA4", 1024), "100%25 done%0Anext %C3%A4");
  // 3 bytes allowed, the 2-byte sequence would be split: it goes whole.
  EXPECT_EQ(statusMessage("ab\xC3\xA4", 3), "ab");
  EXPECT_EQ(statusMessage(std::string(5000, 'r'), 1024).size(), 1024u);
}

TEST(GrpcWireTest, ForwardsOnlyMetadataMeantForTheFunction) {
  for (const char* key : {"x-custom", "user-agent", "authorization", "lab"}) EXPECT_TRUE(isForwarded(key)) << key;
  for (const char* key : {":path", "content-type", "te", "grpc-timeout", "grpc-encoding", "trace-bin", ""})
    EXPECT_FALSE(isForwarded(key)) << key;
}

}  // namespace
}  // namespace tinyfaas::grpcwire
