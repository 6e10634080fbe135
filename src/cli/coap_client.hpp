#pragma once
// One confirmable CoAP POST with libcoap's client API, for `tinyfaas invoke
// --protocol coap`.

#include <chrono>
#include <cstdint>
#include <string>

#include "cli/result.hpp"

namespace tinyfaas::cli {

struct CoapRequest {
  std::string host;
  std::uint16_t port = 5683;
  std::string path;  // one Uri-Path segment, e.g. the function name
  std::string payload;
  std::chrono::milliseconds timeout{5'000};
};

struct CoapResponse {
  std::uint8_t code = 0;  // class << 5 | detail, as on the wire
  std::string body;
};

struct CoapError {
  enum class Kind {
    resolve,      // the host name did not resolve
    setup,        // libcoap could not create a context, session or PDU
    unreachable,  // the peer refused (ICMP port unreachable, RST)
    timeout,      // no complete answer before the deadline
  };
  Kind kind;
  std::string detail;
};

// Blocks the calling thread. Payloads above one datagram go out block-wise
// (Block1) and long answers are reassembled (Block2) by libcoap. libcoap
// 4.3.1 is not thread-safe: call this from one thread at a time.
Result<CoapResponse, CoapError> sendCoapPost(const CoapRequest& request);

// "2.05 Content", "4.04 Not Found".
std::string coapCodeText(std::uint8_t code);

}  // namespace tinyfaas::cli
