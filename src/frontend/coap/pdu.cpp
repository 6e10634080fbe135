#include "frontend/coap/pdu.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

namespace tinyfaas::coap {
namespace {

// Room for header, token, a Block1 option and the payload marker: a body that
// fits beside them in one datagram is sent as it is, a larger one in blocks.
constexpr std::size_t kHeaderRoom = 32;

}  // namespace

ExchangeKey keyOf(coap_session_t* session, coap_mid_t messageId) {
  ExchangeKey key;
  key.messageId = static_cast<std::uint16_t>(messageId);
  const coap_address_t* remote = coap_session_get_addr_remote(session);
  if (remote == nullptr) return key;
  if (remote->addr.sa.sa_family == AF_INET) {
    key.family = 4;
    std::memcpy(key.address.data(), &remote->addr.sin.sin_addr, 4);
    key.port = remote->addr.sin.sin_port;
  } else if (remote->addr.sa.sa_family == AF_INET6) {
    key.family = 6;
    std::memcpy(key.address.data(), &remote->addr.sin6.sin6_addr, 16);
    key.port = remote->addr.sin6.sin6_port;
  }
  return key;
}

void addText(coap_pdu_t* response, std::string_view text) {
  coap_add_data(response, text.size(), reinterpret_cast<const std::uint8_t*>(text.data()));
}

void answerError(coap_pdu_t* response, coap_pdu_code_t code, std::string_view reason) {
  coap_pdu_set_code(response, code);
  addText(response, reason);
}

void sendNothing(coap_pdu_t* response) {
  coap_pdu_set_type(response, COAP_MESSAGE_NON);
  coap_pdu_set_code(response, COAP_EMPTY_CODE);
}

void sendEmptyAck(coap_pdu_t* response) {
  coap_pdu_set_type(response, COAP_MESSAGE_ACK);
  coap_pdu_set_code(response, COAP_EMPTY_CODE);
}

void releaseSharedBody(coap_session_t*, void* holder) {
  delete static_cast<std::shared_ptr<const std::string>*>(holder);
}

bool fitsOneDatagram(coap_session_t* session, const coap_pdu_t* request, const std::string& body) {
  if (body.size() + kHeaderRoom > coap_session_max_pdu_size(session)) return false;
  coap_block_b_t block;
  return coap_get_block_b(session, request, COAP_OPTION_BLOCK2, &block) == 0;
}

std::size_t pduBytes(const coap_pdu_t* pdu) {
  std::size_t bytes = 4 + coap_pdu_get_token(pdu).length;
  coap_opt_iterator_t it;
  coap_option_iterator_init(pdu, &it, COAP_OPT_ALL);
  while (const coap_opt_t* option = coap_option_next(&it)) bytes += coap_opt_size(option);
  std::size_t length = 0;
  const std::uint8_t* data = nullptr;
  if (coap_get_data(pdu, &length, &data) != 0 && length > 0) bytes += 1 + length;
  return bytes;
}

std::string transferId(const ExchangeKey& key, std::string_view name) {
  std::string id;
  id.reserve(19 + name.size());
  id.push_back(static_cast<char>(key.family));
  id.append(reinterpret_cast<const char*>(key.address.data()), key.address.size());
  id.push_back(static_cast<char>(key.port));
  id.push_back(static_cast<char>(key.port >> 8));
  id.append(name);
  return id;
}

std::string_view functionOf(const coap_pdu_t* request) {
  coap_opt_iterator_t it;
  const coap_opt_t* path = coap_check_option(request, COAP_OPTION_URI_PATH, &it);
  if (path == nullptr) return {};
  return {reinterpret_cast<const char*>(coap_opt_value(path)), coap_opt_length(path)};
}

bool addBlock(coap_pdu_t* pdu, const std::string& body, unsigned num, unsigned szx, const EchoChallenge::Value* echo) {
  const std::size_t size = std::size_t{16} << szx;
  const std::size_t offset = static_cast<std::size_t>(num) * size;
  const bool more = offset + size < body.size();
  std::uint8_t buf[4];
  const unsigned value = (num << 4) | (more ? 0x08u : 0u) | szx;
  if (coap_add_option(pdu, COAP_OPTION_BLOCK2, coap_encode_var_safe(buf, sizeof buf, value), buf) == 0) return false;
  if (echo != nullptr && coap_add_option(pdu, COAP_OPTION_ECHO, echo->size(), echo->data()) == 0) return false;
  if (offset >= body.size()) return true;
  return coap_add_data(pdu, std::min(size, body.size() - offset),
                       reinterpret_cast<const std::uint8_t*>(body.data() + offset)) != 0;
}

unsigned blockSizeFor(std::size_t limit, std::size_t overhead) {
  unsigned szx = 0;
  while (szx < 6 && overhead + (std::size_t{16} << (szx + 1)) <= limit) ++szx;
  return szx;
}

}  // namespace tinyfaas::coap
