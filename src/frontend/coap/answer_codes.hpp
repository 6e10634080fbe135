#pragma once
// How a call's outcome reads in CoAP: the response code (RFC 7252, and RFC
// 8075 for a status the function chose), the Content-Format of its
// Content-Type, and RFC 7967 No-Response.

#include <coap3/coap.h>

#include <cstdint>

#include "core/invocation.hpp"
#include "frontend/coap/exchange_table.hpp"

namespace tinyfaas::coap {

coap_pdu_code_t codeFor(CallStatus status);
// An HTTP status the function chose, as RFC 8075 reads it back.
coap_pdu_code_t codeForFunction(unsigned code);
// The code of an exchange's answer: the function's own status, else the call's.
coap_pdu_code_t codeOf(const Exchange& exchange);

// The CoAP Content-Format of a function's Content-Type, -1 where CoAP has none.
int contentFormatOf(const HeaderList& headers);
// Adds the Content-Format option unless `format` is -1; false when out of room.
bool addContentFormat(coap_pdu_t* pdu, int format);

// The request's No-Response bits (0 without the option).
std::uint8_t noResponseOf(const coap_pdu_t* request);
// Whether No-Response bits ask for no answer of `code`'s class.
bool suppressed(std::uint8_t noResponse, coap_pdu_code_t code);

}  // namespace tinyfaas::coap
