#include "cli/coap_client.hpp"

#include <coap3/coap.h>
#include <netdb.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <optional>

namespace tinyfaas::cli {
namespace {

struct ContextDeleter {
  void operator()(coap_context_t* context) const { coap_free_context(context); }
};
struct AddrInfoDeleter {
  void operator()(addrinfo* info) const { freeaddrinfo(info); }
};

// What the handlers, called from inside coap_io_process, hand back to the
// loop in sendCoapPost. Reached through the session's app data because
// libcoap's handlers take no user pointer.
struct Exchange {
  std::optional<CoapResponse> response;
  std::optional<CoapError> error;
};

coap_response_t onResponse(coap_session_t* session, const coap_pdu_t*, const coap_pdu_t* received, const coap_mid_t) {
  auto* exchange = static_cast<Exchange*>(coap_session_get_app_data(session));
  CoapResponse response;
  response.code = static_cast<std::uint8_t>(coap_pdu_get_code(received));
  size_t length = 0;
  const uint8_t* data = nullptr;
  size_t offset = 0;
  size_t total = 0;
  // COAP_BLOCK_SINGLE_BODY makes libcoap call this once, with the whole body.
  if (coap_get_data_large(received, &length, &data, &offset, &total) != 0 && data != nullptr) {
    response.body.assign(reinterpret_cast<const char*>(data), length);
  }
  exchange->response = std::move(response);
  return COAP_RESPONSE_OK;
}

void onNack(coap_session_t* session, const coap_pdu_t*, const coap_nack_reason_t reason, const coap_mid_t) {
  auto* exchange = static_cast<Exchange*>(coap_session_get_app_data(session));
  switch (reason) {
    case COAP_NACK_RST: exchange->error = CoapError{CoapError::Kind::unreachable, "the peer reset the exchange"}; break;
    case COAP_NACK_ICMP_ISSUE:
    case COAP_NACK_NOT_DELIVERABLE:
      exchange->error = CoapError{CoapError::Kind::unreachable, "connection refused"};
      break;
    case COAP_NACK_TOO_MANY_RETRIES:
    case COAP_NACK_TLS_FAILED:
      exchange->error = CoapError{CoapError::Kind::timeout, "no answer after all retransmissions"};
      break;
  }
}

void startLibcoap() {
  static std::once_flag once;
  std::call_once(once, [] {
    coap_startup();
    // Failures come back to the caller as values and are reported there, in
    // the CLI's own words; libcoap's log lines would only duplicate them.
    coap_set_log_level(LOG_EMERG);
  });
}

}  // namespace

std::string coapCodeText(std::uint8_t code) {
  const unsigned cls = code >> 5;
  const unsigned detail = code & 0x1F;
  std::string text = std::to_string(cls) + "." + (detail < 10 ? "0" : "") + std::to_string(detail);
  if (const char* phrase = coap_response_phrase(code); phrase != nullptr) text += std::string(" ") + phrase;
  return text;
}

Result<CoapResponse, CoapError> sendCoapPost(const CoapRequest& request) {
  startLibcoap();

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(request.port);
  if (const int rc = getaddrinfo(request.host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return failure(
        CoapError{CoapError::Kind::resolve, "cannot resolve host " + request.host + ": " + gai_strerror(rc)});
  }
  std::unique_ptr<addrinfo, AddrInfoDeleter> addresses(found);
  // UDP has no connect handshake to fall back on, so one address must be
  // chosen up front. glibc lists ::1 before 127.0.0.1 for "localhost" on
  // hosts with IPv6, while the daemon's endpoints listen on 0.0.0.0 by
  // default: prefer IPv4.
  const addrinfo* chosen = addresses.get();
  for (const addrinfo* a = addresses.get(); a != nullptr; a = a->ai_next) {
    if (a->ai_family == AF_INET) {
      chosen = a;
      break;
    }
  }
  coap_address_t server;
  coap_address_init(&server);
  server.size = chosen->ai_addrlen;
  std::memcpy(&server.addr, chosen->ai_addr, chosen->ai_addrlen);

  // libcoap keeps pointing at the payload until the context is freed, which
  // happens before `request` goes away.
  const std::string& payload = request.payload;
  Exchange exchange;
  std::unique_ptr<coap_context_t, ContextDeleter> context(coap_new_context(nullptr));
  if (!context) return failure(CoapError{CoapError::Kind::setup, "cannot create a CoAP context"});
  coap_context_set_block_mode(context.get(), COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
  coap_register_response_handler(context.get(), onResponse);
  coap_register_nack_handler(context.get(), onNack);

  // Owned by the context, freed with it.
  coap_session_t* session = coap_new_client_session(context.get(), nullptr, &server, COAP_PROTO_UDP);
  if (session == nullptr) return failure(CoapError{CoapError::Kind::setup, "cannot open a CoAP session"});
  coap_session_set_app_data(session, &exchange);

  coap_pdu_t* pdu = coap_new_pdu(COAP_MESSAGE_CON, COAP_REQUEST_CODE_POST, session);
  if (pdu == nullptr) return failure(CoapError{CoapError::Kind::setup, "cannot create a CoAP request"});
  uint8_t token[8];
  size_t tokenLength = 0;
  coap_session_new_token(session, &tokenLength, token);
  bool built = coap_add_token(pdu, tokenLength, token) != 0;
  built = built && coap_add_option(pdu, COAP_OPTION_URI_PATH, request.path.size(),
                                   reinterpret_cast<const uint8_t*>(request.path.data())) != 0;
  built = built && coap_add_data_large_request(session, pdu, payload.size(),
                                               reinterpret_cast<const uint8_t*>(payload.data()), nullptr, nullptr) != 0;
  if (!built) {
    coap_delete_pdu(pdu);
    return failure(CoapError{CoapError::Kind::setup, "cannot build the CoAP request"});
  }
  // coap_send takes the PDU, whatever it returns.
  if (coap_send(session, pdu) == COAP_INVALID_MID) {
    return failure(CoapError{CoapError::Kind::unreachable, "cannot send the request"});
  }

  const auto deadline = std::chrono::steady_clock::now() + request.timeout;
  while (!exchange.response && !exchange.error) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    // left > 0 here, and it must be: a timeout of 0 would mean "block until
    // something happens", past the deadline.
    if (coap_io_process(context.get(), static_cast<uint32_t>(left.count())) < 0) {
      return failure(CoapError{CoapError::Kind::unreachable, "CoAP I/O failed"});
    }
  }
  if (exchange.response) return std::move(*exchange.response);
  if (exchange.error) return failure(std::move(*exchange.error));
  const auto ms = request.timeout.count();
  return failure(CoapError{
      CoapError::Kind::timeout,
      "no answer within " + (ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms")});
}

}  // namespace tinyfaas::cli
