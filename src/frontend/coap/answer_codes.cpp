#include "frontend/coap/answer_codes.hpp"

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <utility>

namespace tinyfaas::coap {

coap_pdu_code_t codeFor(CallStatus status) {
  switch (status) {
    case CallStatus::ok: return COAP_RESPONSE_CODE_CONTENT;
    case CallStatus::notFound: return COAP_RESPONSE_CODE_NOT_FOUND;
    case CallStatus::functionError: return COAP_RESPONSE_CODE_INTERNAL_ERROR;
    case CallStatus::unavailable: return COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE;
    case CallStatus::overloaded: return COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE;
    case CallStatus::timeout: return COAP_RESPONSE_CODE_GATEWAY_TIMEOUT;
    case CallStatus::payloadTooLarge: return COAP_RESPONSE_CODE_REQUEST_TOO_LARGE;
  }
  return COAP_RESPONSE_CODE_INTERNAL_ERROR;
}

// An HTTP status the function chose, as RFC 8075 (HTTP-CoAP mapping) reads it
// back: 2.01 Created, 2.04 for No Content, 2.03 Valid for Not Modified, the
// same detail in 4.xx/5.xx where CoAP has it, else the class's generic code.
coap_pdu_code_t codeForFunction(unsigned code) {
  switch (code) {
    case 201: return COAP_RESPONSE_CODE_CREATED;
    case 204: return COAP_RESPONSE_CODE_CHANGED;
    case 304: return COAP_RESPONSE_CODE_VALID;
    case 400:
    case 401:
    case 402:
    case 403:
    case 404:
    case 405:
    case 406:
    case 412:
    case 413:
    case 415:
    case 422:
    case 429:
    case 500:
    case 501:
    case 502:
    case 503:
    case 504: return static_cast<coap_pdu_code_t>(COAP_RESPONSE_CODE(code));
    default: break;
  }
  if (code >= 400 && code < 500) return COAP_RESPONSE_CODE_BAD_REQUEST;
  if (code >= 500) return COAP_RESPONSE_CODE_INTERNAL_ERROR;
  return COAP_RESPONSE_CODE_CONTENT;  // other 2xx, and 3xx: CoAP has no redirects
}

coap_pdu_code_t codeOf(const Exchange& exchange) {
  return exchange.functionCode != 0 ? codeForFunction(exchange.functionCode) : codeFor(exchange.status);
}

// The CoAP Content-Format of a function's Content-Type (RFC 7252 12.3 and
// the IANA registry), -1 where CoAP has none.
int contentFormatOf(const HeaderList& headers) {
  static constexpr std::pair<std::string_view, int> kFormats[] = {
      {"text/plain", COAP_MEDIATYPE_TEXT_PLAIN},
      {"application/link-format", COAP_MEDIATYPE_APPLICATION_LINK_FORMAT},
      {"application/xml", COAP_MEDIATYPE_APPLICATION_XML},
      {"text/xml", COAP_MEDIATYPE_APPLICATION_XML},
      {"application/octet-stream", COAP_MEDIATYPE_APPLICATION_OCTET_STREAM},
      {"application/exi", COAP_MEDIATYPE_APPLICATION_EXI},
      {"application/json", COAP_MEDIATYPE_APPLICATION_JSON},
      {"application/cbor", COAP_MEDIATYPE_APPLICATION_CBOR},
      {"application/senml+json", COAP_MEDIATYPE_APPLICATION_SENML_JSON},
      {"application/senml+cbor", COAP_MEDIATYPE_APPLICATION_SENML_CBOR},
  };
  for (const auto& [name, value] : headers) {
    if (name != "Content-Type") continue;
    std::string type = value.substr(0, value.find(';'));
    std::erase_if(type, [](char c) { return c == ' ' || c == '\t'; });
    std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return std::tolower(c); });
    for (const auto& [media, format] : kFormats)
      if (type == media) return format;
    return -1;
  }
  return -1;
}

bool addContentFormat(coap_pdu_t* pdu, int format) {
  if (format < 0) return true;
  std::uint8_t buf[4];
  return coap_add_option(pdu, COAP_OPTION_CONTENT_FORMAT,
                         coap_encode_var_safe(buf, sizeof buf, static_cast<unsigned>(format)), buf) != 0;
}

// RFC 7967: bit (class - 1) set means "not interested in class.xx".
bool suppressed(std::uint8_t noResponse, coap_pdu_code_t code) {
  const unsigned cls = static_cast<unsigned>(code) >> 5;
  return cls > 0 && (noResponse & (1u << (cls - 1))) != 0;
}

std::uint8_t noResponseOf(const coap_pdu_t* request) {
  coap_opt_iterator_t it;
  const coap_opt_t* option = coap_check_option(request, COAP_OPTION_NORESPONSE, &it);
  if (option == nullptr) return 0;
  return static_cast<std::uint8_t>(coap_decode_var_bytes(coap_opt_value(option), coap_opt_length(option)));
}

}  // namespace tinyfaas::coap
