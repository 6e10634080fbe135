#include "frontend/grpc/grpc_wire.hpp"

// Messages are read and written with protobuf-lite's wire-format
// primitives rather than classes generated from tinyfaas.proto: the CLI's
// gRPC module holds the generated ones (with the full library), and the
// daemon and the CLI are one binary, which must not define them twice.

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>

namespace tinyfaas::grpcwire {
namespace {

using google::protobuf::internal::WireFormatLite;

Code fromHttpStatus(unsigned code) {
  if (code >= 200 && code < 300) return Code::ok;
  switch (code) {
    case 400: return Code::invalidArgument;
    case 401: return Code::unauthenticated;
    case 403: return Code::permissionDenied;
    case 404: return Code::notFound;
    case 409: return Code::aborted;
    case 412: return Code::failedPrecondition;
    case 416: return Code::outOfRange;
    case 429: return Code::resourceExhausted;
    case 499: return Code::cancelled;
    case 501: return Code::unimplemented;
    case 503: return Code::unavailable;
    case 504: return Code::deadlineExceeded;
    default: break;
  }
  if (code >= 400 && code < 500) return Code::failedPrecondition;
  if (code >= 500) return Code::internal;
  return Code::unknown;  // 3xx: gRPC has no redirects
}

Code fromCallStatus(CallStatus status) {
  switch (status) {
    case CallStatus::ok: return Code::ok;
    case CallStatus::notFound: return Code::notFound;
    case CallStatus::functionError: return Code::internal;
    case CallStatus::unavailable: return Code::unavailable;
    case CallStatus::timeout: return Code::deadlineExceeded;
    case CallStatus::overloaded: return Code::resourceExhausted;
    case CallStatus::payloadTooLarge: return Code::resourceExhausted;
  }
  return Code::internal;
}

constexpr int kFunctionIdentifierField = 1;
constexpr int kDataField = 2;
constexpr int kResponseField = 1;

std::optional<Data> parseData(std::string_view message) {
  google::protobuf::io::CodedInputStream input(reinterpret_cast<const std::uint8_t*>(message.data()),
                                               static_cast<int>(message.size()));
  Data data;
  while (const std::uint32_t tag = input.ReadTag()) {
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    const bool lengthDelimited = WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
    // A field seen twice: the last one counts, as in protobuf's parsers.
    if (lengthDelimited && field == kFunctionIdentifierField) {
      if (!WireFormatLite::ReadString(&input, &data.functionIdentifier)) return std::nullopt;
    } else if (lengthDelimited && field == kDataField) {
      if (!WireFormatLite::ReadString(&input, &data.data)) return std::nullopt;
    } else if (!WireFormatLite::SkipField(&input, tag)) {
      return std::nullopt;  // unknown fields are skipped; broken ones end the parse
    }
  }
  if (!input.ConsumedEntireMessage()) return std::nullopt;
  if (!isValidUtf8(data.functionIdentifier) || !isValidUtf8(data.data)) return std::nullopt;
  return data;
}

}  // namespace

Code statusOf(const CallResult& result) {
  return result.code != 0 ? fromHttpStatus(result.code) : fromCallStatus(result.status);
}

ParsedRequest parseRequestBody(std::string_view body) {
  const auto message = onlyMessage(body);
  if (!message) return {std::nullopt, {Code::internal, "the request is not exactly one gRPC message"}};
  if (message->compressed) {
    // The endpoint announces no compression (grpc-accept-encoding), so a
    // client has no business compressing.
    return {std::nullopt, {Code::unimplemented, "compressed messages are not supported"}};
  }
  auto data = parseData(message->message);
  if (!data) {
    return {std::nullopt,
            {Code::invalidArgument, "the request is not a TinyFaaS Data message (its strings must be UTF-8)"}};
  }
  return {std::move(data), {Code::ok, {}}};
}

std::string encodeResponse(std::string_view response) {
  const std::size_t fieldBytes =  // tag, length, bytes
      1 + google::protobuf::io::CodedOutputStream::VarintSize32(static_cast<std::uint32_t>(response.size())) +
      response.size();
  const std::size_t length = response.empty() ? 0 : fieldBytes;  // proto3 leaves out an empty string
  std::string out = messagePrefix(static_cast<std::uint32_t>(length));
  out.resize(kMessagePrefixBytes + length);
  if (length == 0) return out;
  google::protobuf::io::ArrayOutputStream array(out.data() + kMessagePrefixBytes, static_cast<int>(length));
  google::protobuf::io::CodedOutputStream coded(&array);
  WireFormatLite::WriteTag(kResponseField, WireFormatLite::WIRETYPE_LENGTH_DELIMITED, &coded);
  coded.WriteVarint32(static_cast<std::uint32_t>(response.size()));
  coded.WriteRaw(response.data(), static_cast<int>(response.size()));
  return out;
}

std::string statusMessage(std::string_view reason, std::size_t limit) {
  if (reason.size() > limit) {
    std::size_t end = limit;
    while (end > 0 && (static_cast<unsigned char>(reason[end]) & 0xC0) == 0x80) --end;
    reason = reason.substr(0, end);
  }
  // PROTOCOL-HTTP2.md: printable ASCII except '%' as is, all else %XX.
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(reason.size());
  for (const char c : reason) {
    const auto b = static_cast<unsigned char>(c);
    if (b >= 0x20 && b <= 0x7E && b != '%') {
      out += c;
    } else {
      out += '%';
      out += kHex[b >> 4];
      out += kHex[b & 0x0F];
    }
  }
  return out;
}

bool isValidUtf8(std::string_view text) {
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      if (c == 0xE0) low = 0xA0;   // overlong
      if (c == 0xED) high = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      if (c == 0xF0) low = 0x90;   // overlong
      if (c == 0xF4) high = 0x8F;  // above U+10FFFF
    } else {
      return false;
    }
    if (n - i < length) return false;
    const auto second = static_cast<unsigned char>(text[i + 1]);
    if (second < low || second > high) return false;
    for (std::size_t k = 2; k < length; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return false;
    }
    i += length;
  }
  return true;
}

bool isForwarded(std::string_view key) {
  if (key.empty() || key.front() == ':') return false;
  if (key == "content-type" || key == "te") return false;
  if (key.starts_with("grpc-")) return false;
  if (key.ends_with("-bin")) return false;
  return true;
}

}  // namespace tinyfaas::grpcwire
