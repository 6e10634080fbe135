#pragma once
// What the gRPC endpoint puts on and takes off the wire, apart from HTTP/2
// itself (grpc_connection.hpp): the one method's name, its length-prefixed
// protobuf messages (proto/tinyfaas.proto), and the status trailers
// (gRPC's PROTOCOL-HTTP2.md). Pure functions, no I/O.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/invocation.hpp"

namespace tinyfaas::grpcwire {

// The one method the endpoint serves, as HTTP/2 :path.
inline constexpr std::string_view kRequestPath = "/openfogstack.tinyfaas.tinyfaas.TinyFaaS/Request";
// A message's prefix: a compressed flag byte and a big-endian u32 length.
inline constexpr std::size_t kMessagePrefixBytes = 5;

// The prefix of an uncompressed message of `length` bytes. (Inline, as is
// onlyMessage: the load generator's client uses them too.)
inline std::string messagePrefix(std::uint32_t length) {
  return {'\0', static_cast<char>(length >> 24), static_cast<char>(length >> 16), static_cast<char>(length >> 8),
          static_cast<char>(length)};
}

struct PrefixedMessage {
  bool compressed = false;
  std::string_view message;
};
// The message `body` holds when it is exactly one length-prefixed message.
inline std::optional<PrefixedMessage> onlyMessage(std::string_view body) {
  if (body.size() < kMessagePrefixBytes) return std::nullopt;
  std::uint32_t length = 0;
  for (std::size_t i = 1; i < kMessagePrefixBytes; ++i) length = (length << 8) | static_cast<unsigned char>(body[i]);
  if (length != body.size() - kMessagePrefixBytes) return std::nullopt;
  return PrefixedMessage{body[0] != 0, body.substr(kMessagePrefixBytes)};
}

// google.rpc.Code, the values gRPC puts in grpc-status.
enum class Code : int {
  ok = 0,
  cancelled = 1,
  unknown = 2,
  invalidArgument = 3,
  deadlineExceeded = 4,
  notFound = 5,
  permissionDenied = 7,
  resourceExhausted = 8,
  failedPrecondition = 9,
  aborted = 10,
  outOfRange = 11,
  unimplemented = 12,
  internal = 13,
  unavailable = 14,
  unauthenticated = 16,
};

// A call's result as a gRPC status: the platform's own status, or the HTTP
// status the function chose, mapped as google.rpc.Code maps HTTP.
Code statusOf(const CallResult& result);

// TinyFaaS.Data, the request message.
struct Data {
  std::string functionIdentifier;
  std::string data;
};

// The request body as one uncompressed message holding a Data; the reason
// and status to answer with when it is not.
struct Refusal {
  Code code;
  std::string reason;
};
struct ParsedRequest {
  std::optional<Data> data;
  Refusal refusal{Code::ok, {}};
};
ParsedRequest parseRequestBody(std::string_view body);

// A Response{response} as one length-prefixed message.
std::string encodeResponse(std::string_view response);

// The grpc-message trailer's value: at most `limit` bytes of `reason` (not
// splitting a UTF-8 sequence), percent-encoded as gRPC requires.
std::string statusMessage(std::string_view reason, std::size_t limit);

// RFC 3629 UTF-8: protobuf strings must be, and clients refuse others.
bool isValidUtf8(std::string_view text);

// Whether request metadata reaches the function as a header: not the
// pseudo-headers, content-type, te, gRPC's own keys, nor binary (-bin) ones.
bool isForwarded(std::string_view key);

}  // namespace tinyfaas::grpcwire
