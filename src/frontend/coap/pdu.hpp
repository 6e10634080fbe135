#pragma once
// Small readers and writers of libcoap 4.3.1 PDUs that the request and the
// answer side of the CoAP frontend share.

#include <coap3/coap.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "frontend/coap/echo_challenge.hpp"
#include "frontend/coap/exchange_table.hpp"

namespace tinyfaas::coap {

// The peer of `session` and `messageId`: what duplicates are detected by.
ExchangeKey keyOf(coap_session_t* session, coap_mid_t messageId);

// A peer (address, port) and a function name: what block-wise transfers
// are matched by (RFC 7959 2.4: the request URI; tokens change per block).
std::string transferId(const ExchangeKey& key, std::string_view name);

// The request's first Uri-Path segment (empty without one).
std::string_view functionOf(const coap_pdu_t* request);

// The request's size on the wire (libcoap 4.3.1 has no getter for it).
std::size_t pduBytes(const coap_pdu_t* pdu);

void addText(coap_pdu_t* response, std::string_view text);
void answerError(coap_pdu_t* response, coap_pdu_code_t code, std::string_view reason);

// Leaves `response` so that libcoap sends nothing at all: it drops a 0.00
// response unless it is an ACK (no_response() in net.c).
void sendNothing(coap_pdu_t* response);
// Leaves `response` as the empty ACK libcoap makes of a 0.00 ACK.
void sendEmptyAck(coap_pdu_t* response);

// Whether an answer with `body` goes out whole, not block-wise: it fits, and
// the client did not ask for blocks (Block2 in the request).
bool fitsOneDatagram(coap_session_t* session, const coap_pdu_t* request, const std::string& body);

// Adds Block2, an Echo value when given, and the block's bytes to `pdu`
// (options go before the payload); false when out of room.
bool addBlock(coap_pdu_t* pdu, const std::string& body, unsigned num, unsigned szx,
              const EchoChallenge::Value* echo = nullptr);

// The largest block (SZX) whose answer stays within `limit` beside
// `overhead` bytes of header, token and options; at least 16 bytes.
unsigned blockSizeFor(std::size_t limit, std::size_t overhead);

// libcoap's release callback for a body handed over as a
// `new std::shared_ptr<const std::string>`.
void releaseSharedBody(coap_session_t*, void* holder);

}  // namespace tinyfaas::coap
