#pragma once
// CoAP datagrams built and parsed with libcoap's PDU API, without a libcoap
// context or session: the load generator does its own I/O on asio sockets.
// Thread-safe: nothing here touches libcoap's global state after
// initCoapPdu(), which must run once before any other call.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace tinyfaas::bench {

void initCoapPdu();

enum class CoapType : std::uint8_t { con = 0, non = 1, ack = 2, rst = 3 };

struct CoapRequestSpec {
  CoapType type = CoapType::con;
  std::uint8_t code = 2;              // 0.01 GET, 0.02 POST
  std::vector<std::string> uriPath;   // one Uri-Path option per segment
  std::vector<std::string> uriQuery;  // one Uri-Query option per segment
  std::string payload;                // sent whole in one datagram (no block-wise)
};

// Splits "/a/b?x=1&y" into Uri-Path {a, b} and Uri-Query {x=1, y}, as
// RFC 7252 section 6.4 does (no percent-decoding: targets here do not need it).
void splitCoapPath(std::string_view pathAndQuery, std::vector<std::string>& uriPath,
                   std::vector<std::string>& uriQuery);

// One request datagram, or nullopt when libcoap refuses to build it (e.g.
// a payload above 64 KiB).
std::optional<std::string> encodeCoapRequest(const CoapRequestSpec& spec, std::uint16_t messageId,
                                             std::span<const std::uint8_t> token);

// An empty message (code 0.00): the ACK for a separate CON response, or a RST.
std::optional<std::string> encodeCoapEmpty(CoapType type, std::uint16_t messageId);

struct CoapMessage {
  CoapType type = CoapType::con;
  std::uint8_t code = 0;
  std::uint16_t messageId = 0;
  std::array<std::uint8_t, 8> token{};
  std::size_t tokenLength = 0;
  std::string payload;

  std::span<const std::uint8_t> tokenBytes() const { return {token.data(), tokenLength}; }
  bool isEmpty() const { return code == 0; }
  // 2.xx: the thesis counted any answer as success; we also demand a success class.
  bool isSuccess() const { return (code >> 5) == 2; }
};

// nullopt for anything libcoap does not accept as a CoAP-over-UDP message.
std::optional<CoapMessage> parseCoapMessage(std::span<const std::uint8_t> datagram, bool wantPayload = true);

}  // namespace tinyfaas::bench
