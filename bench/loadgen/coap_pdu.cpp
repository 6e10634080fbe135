#include "coap_pdu.hpp"

#include <coap3/coap.h>

#include <algorithm>
#include <memory>
#include <mutex>

namespace tinyfaas::bench {
namespace {

struct PduDeleter {
  void operator()(coap_pdu_t* pdu) const { coap_delete_pdu(pdu); }
};
using PduPtr = std::unique_ptr<coap_pdu_t, PduDeleter>;

// libcoap 4.3.1 exports no "serialize this PDU" call: coap_send writes the
// header in place from an internal function. Its PDU keeps token, options
// and payload in one contiguous buffer (that is how coap_pdu_parse fills
// it), so the wire form is the 4-byte UDP header (RFC 7252 section 3), which
// we write, followed by the bytes from the token's first byte to the end of
// the payload, or of the last option when there is no payload. The unit
// test round-trips every shape through coap_pdu_parse to keep this honest.
std::optional<std::string> serialize(const coap_pdu_t* pdu) {
  const coap_bin_const_t token = coap_pdu_get_token(pdu);
  const std::uint8_t* begin = token.s;
  const std::uint8_t* end = token.s + token.length;
  size_t dataLength = 0;
  const std::uint8_t* data = nullptr;
  if (coap_get_data(pdu, &dataLength, &data) != 0 && data != nullptr) {
    end = data + dataLength;
  } else {
    // The iterator refuses to start (nullptr) on a PDU without options.
    coap_opt_iterator_t it;
    if (coap_option_iterator_init(pdu, &it, COAP_OPT_ALL) != nullptr) {
      while (const coap_opt_t* option = coap_option_next(&it)) {
        const std::uint8_t* optionEnd = option + coap_opt_size(option);
        if (optionEnd > end) end = optionEnd;
      }
    }
  }
  if (token.length > 8 || (begin == nullptr && end != begin)) return std::nullopt;

  const auto mid = static_cast<std::uint16_t>(coap_pdu_get_mid(pdu));
  std::string out;
  out.reserve(4 + static_cast<std::size_t>(end - begin));
  out.push_back(static_cast<char>(0x40 | (static_cast<unsigned>(coap_pdu_get_type(pdu)) << 4) | token.length));
  out.push_back(static_cast<char>(coap_pdu_get_code(pdu)));
  out.push_back(static_cast<char>(mid >> 8));
  out.push_back(static_cast<char>(mid & 0xFF));
  if (begin != nullptr) out.append(reinterpret_cast<const char*>(begin), static_cast<std::size_t>(end - begin));
  return out;
}

}  // namespace

void initCoapPdu() {
  static std::once_flag once;
  std::call_once(once, [] {
    coap_startup();
    // Malformed datagrams are counted as failed calls; libcoap's own log
    // lines about them would only flood the terminal.
    coap_set_log_level(LOG_EMERG);
  });
}

void splitCoapPath(std::string_view pathAndQuery, std::vector<std::string>& uriPath,
                   std::vector<std::string>& uriQuery) {
  uriPath.clear();
  uriQuery.clear();
  const auto q = pathAndQuery.find('?');
  std::string_view path = pathAndQuery.substr(0, q);
  while (path.starts_with('/')) path.remove_prefix(1);
  while (!path.empty()) {
    const auto slash = path.find('/');
    uriPath.emplace_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  if (q == std::string_view::npos) return;
  std::string_view query = pathAndQuery.substr(q + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    if (amp != 0) uriQuery.emplace_back(query.substr(0, amp));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
}

std::optional<std::string> encodeCoapRequest(const CoapRequestSpec& spec, std::uint16_t messageId,
                                             std::span<const std::uint8_t> token) {
  if (token.size() > 8) return std::nullopt;
  std::size_t size = 16 + token.size() + spec.payload.size();
  for (const auto& s : spec.uriPath) size += s.size() + 5;
  for (const auto& s : spec.uriQuery) size += s.size() + 5;
  PduPtr pdu(
      coap_pdu_init(static_cast<coap_pdu_type_t>(spec.type), static_cast<coap_pdu_code_t>(spec.code), messageId, size));
  if (!pdu) return std::nullopt;
  if (coap_add_token(pdu.get(), token.size(), token.data()) == 0) return std::nullopt;
  // Options must go in ascending number order: Uri-Path (11) before Uri-Query (15).
  for (const auto& s : spec.uriPath) {
    if (coap_add_option(pdu.get(), COAP_OPTION_URI_PATH, s.size(), reinterpret_cast<const std::uint8_t*>(s.data())) ==
        0) {
      return std::nullopt;
    }
  }
  for (const auto& s : spec.uriQuery) {
    if (coap_add_option(pdu.get(), COAP_OPTION_URI_QUERY, s.size(), reinterpret_cast<const std::uint8_t*>(s.data())) ==
        0) {
      return std::nullopt;
    }
  }
  if (!spec.payload.empty() &&
      coap_add_data(pdu.get(), spec.payload.size(), reinterpret_cast<const std::uint8_t*>(spec.payload.data())) == 0) {
    return std::nullopt;
  }
  return serialize(pdu.get());
}

std::optional<std::string> encodeCoapEmpty(CoapType type, std::uint16_t messageId) {
  PduPtr pdu(coap_pdu_init(static_cast<coap_pdu_type_t>(type), COAP_EMPTY_CODE, messageId, 4));
  if (!pdu) return std::nullopt;
  return serialize(pdu.get());
}

std::optional<CoapMessage> parseCoapMessage(std::span<const std::uint8_t> datagram, bool wantPayload) {
  if (datagram.size() < 4) return std::nullopt;
  PduPtr pdu(coap_pdu_init(COAP_MESSAGE_CON, COAP_EMPTY_CODE, 0, datagram.size()));
  if (!pdu) return std::nullopt;
  if (coap_pdu_parse(COAP_PROTO_UDP, datagram.data(), datagram.size(), pdu.get()) == 0) return std::nullopt;
  CoapMessage message;
  message.type = static_cast<CoapType>(coap_pdu_get_type(pdu.get()));
  message.code = static_cast<std::uint8_t>(coap_pdu_get_code(pdu.get()));
  message.messageId = static_cast<std::uint16_t>(coap_pdu_get_mid(pdu.get()));
  const coap_bin_const_t token = coap_pdu_get_token(pdu.get());
  message.tokenLength = std::min<std::size_t>(token.length, message.token.size());
  if (message.tokenLength > 0) std::copy_n(token.s, message.tokenLength, message.token.begin());
  if (wantPayload) {
    size_t length = 0;
    const std::uint8_t* data = nullptr;
    if (coap_get_data(pdu.get(), &length, &data) != 0 && data != nullptr) {
      message.payload.assign(reinterpret_cast<const char*>(data), length);
    }
  }
  return message;
}

}  // namespace tinyfaas::bench
