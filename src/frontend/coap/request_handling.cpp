#include "frontend/coap/coap_server.hpp"

#include <algorithm>
#include <optional>
#include <utility>

#include <boost/asio/co_spawn.hpp>

#include "core/function_name.hpp"
#include "frontend/coap/answer_codes.hpp"
#include "frontend/coap/pdu.hpp"

namespace tinyfaas::coap {
namespace {

namespace asio = boost::asio;

// A libcoap session's app data points here once its peer proved its address.
constexpr char kVerifiedSource = 1;

Server* serverOf(coap_session_t* session) {
  return static_cast<Server*>(coap_get_app_data(coap_session_get_context(session)));
}

// An asynchronous call's answer: ok (empty) once it is stored, else why not.
asio::awaitable<CallResult> storeDetached(Invoker& invoker, Invocation invocation) {
  DetachedCall accepted = co_await invoker.invokeDetached(std::move(invocation));
  if (accepted.status == CallStatus::ok) co_return CallResult{};
  co_return CallResult{accepted.status, std::move(accepted.reason)};
}

}  // namespace

// Called by libcoap (C): nothing may unwind through it. Only allocation
// failure could throw here, and then terminating is the honest outcome.
void Server::onNotAllowed(coap_resource_t*, coap_session_t* session, const coap_pdu_t*, const coap_string_t*,
                          coap_pdu_t* response) noexcept {
  Server* server = serverOf(session);
  if (server != nullptr && !server->verified(session)) {
    coap_pdu_set_code(response, COAP_RESPONSE_CODE_NOT_ALLOWED);
    return;
  }
  answerError(response, COAP_RESPONSE_CODE_NOT_ALLOWED, "use GET or POST");
}

// Amplification: answers to sources that did not prove their address.

// Whether the peer of `session` has proven it receives what we send to its
// address (or the check is off). Kept on libcoap's session for that
// address and port, so it lasts as long as libcoap keeps the peer's state.
bool Server::verified(coap_session_t* session) const {
  return !options_.verifySources || coap_session_get_app_data(session) == &kVerifiedSource;
}

// An error answered before the source proved itself carries no reason
// text: the code alone keeps it within three times the request's size.
void Server::reject(coap_session_t* session, coap_pdu_t* response, coap_pdu_code_t code, std::string_view reason) {
  ++stats_.rejected;
  if (verified(session)) {
    answerError(response, code, reason);
  } else {
    coap_pdu_set_code(response, code);
  }
}

// RFC 9175 2.4 without the 4.01 round trip (aiocoap does not repeat a
// request on its own): answers to a source that has not proven its
// address stay within three times the request's size (answerLimit: large
// ones go block-wise in small blocks, separate ones as NON, never
// retransmitted), and carry an Echo value where it fits. A client that
// returns a valid value in a later request (libcoap's does) has proven
// the address and port, and gets everything at full size from then on.
void Server::noteEcho(coap_session_t* session, const coap_pdu_t* request, const ExchangeKey& source) {
  if (verified(session)) return;
  coap_opt_iterator_t it;
  const coap_opt_t* echo = coap_check_option(request, COAP_OPTION_ECHO, &it);
  if (echo != nullptr && echo_.check({coap_opt_value(echo), coap_opt_length(echo)}, source, Clock::now())) {
    coap_session_set_app_data(session, const_cast<char*>(&kVerifiedSource));
    ++stats_.verified;
  }
}

std::uint16_t Server::answerLimitFor(coap_session_t* session, const coap_pdu_t* request) const {
  if (verified(session)) return 0;
  return static_cast<std::uint16_t>(std::min<std::size_t>(3 * pduBytes(request), 0xFFFF));
}

// A later block of a Download; false when there is none for this peer.
bool Server::answerNextBlock(const ExchangeKey& key, std::string_view name, const coap_block_b_t& block,
                             coap_pdu_t* response) {
  const std::string id = transferId(key, name);
  Download* download = downloads_.find(id);
  if (download == nullptr) return false;
  coap_pdu_set_code(response, download->code);
  download->touched = Clock::now();
  const std::string& body = *download->body;
  if (!addBlock(response, body, block.num, block.szx)) return false;
  if ((static_cast<std::size_t>(block.num) + 1) << (block.szx + 4) >= body.size()) downloads_.erase(id);
  return true;
}

void Server::onRequest(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
                       const coap_string_t* query, coap_pdu_t* response) noexcept {
  Server* server = serverOf(session);
  if (server == nullptr || server->stopped_) {
    sendNothing(response);
    return;
  }
  if (coap_async_t* async = coap_find_async(session, coap_pdu_get_token(request)); async != nullptr) {
    server->answerTriggered(resource, session, request, query, response, async);
  } else {
    server->handleRequest(resource, session, request, query, response);
  }
}

void Server::handleRequest(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
                           const coap_string_t* query, coap_pdu_t* response) {
  const bool confirmable = coap_pdu_get_type(request) == COAP_MESSAGE_CON;
  const ExchangeKey key = keyOf(session, coap_pdu_get_mid(request));
  if (Exchange* seen = table_.find(key); seen != nullptr) {
    answerDuplicate(*seen, resource, session, request, query, response, confirmable);
    return;
  }

  // Exactly one Uri-Path segment: the function's name.
  coap_opt_filter_t filter;
  coap_option_filter_clear(&filter);
  coap_option_filter_set(&filter, COAP_OPTION_URI_PATH);
  coap_opt_iterator_t it;
  coap_option_iterator_init(request, &it, &filter);
  std::string_view name;
  int segments = 0;
  while (const coap_opt_t* option = coap_option_next(&it)) {
    ++segments;
    name = {reinterpret_cast<const char*>(coap_opt_value(option)), coap_opt_length(option)};
  }
  if (draining_) {
    reject(session, response, COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE, "tinyFaaS is shutting down");
    return;
  }
  if (segments != 1 || name.empty()) {
    reject(session, response, COAP_RESPONSE_CODE_NOT_FOUND, "expected coap://HOST/FUNCTION");
    return;
  }
  if (!isValidFunctionName(name)) {
    reject(session, response, COAP_RESPONSE_CODE_NOT_FOUND, "no such function");
    return;
  }
  noteEcho(session, request, key);
  const std::uint8_t noResponse = noResponseOf(request);

  coap_block_b_t block;
  if (coap_get_block_b(session, request, COAP_OPTION_BLOCK2, &block) != 0 && block.num != 0) {
    if (answerNextBlock(key, name, block, response)) return;
    // A later block of an answer whose block-wise state libcoap has already
    // dropped; running the function again could give a different body.
    ++stats_.rejected;
    answerError(response, COAP_RESPONSE_CODE_BAD_REQUEST, "block-wise transfer expired; repeat the request");
    return;
  }

  std::size_t length = 0;
  const std::uint8_t* data = nullptr;
  if (coap_get_data(request, &length, &data) == 0) length = 0;

  Invocation invocation{std::string(name), {}, {}};
  std::int32_t block1 = -1;
  if (coap_get_block_b(session, request, COAP_OPTION_BLOCK1, &block) != 0) {
    if (!collectBlock(key, name, request, block, data, length, response, invocation.payload)) return;
    block1 = static_cast<std::int32_t>((block.num << 4) | block.szx);
  } else {
    if (length > options_.maxPayloadBytes) {
      rejectTooLarge(response);
      return;
    }
    invocation.payload.assign(reinterpret_cast<const char*>(data), length);
  }

  if (table_.inFlight() >= options_.maxInFlight) {
    ++stats_.rejected;
    answerError(response, COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE, "too many calls in flight");
    return;
  }

  // Our copy of the request, for the async later. Options that would make
  // libcoap treat the copy as another block-wise upload, or apply
  // No-Response a second time, are left out.
  coap_opt_filter_t drop;
  coap_option_filter_clear(&drop);
  coap_option_filter_set(&drop, COAP_OPTION_BLOCK1);
  coap_option_filter_set(&drop, COAP_OPTION_SIZE1);
  coap_option_filter_set(&drop, COAP_OPTION_NORESPONSE);
  coap_option_filter_set(&drop, COAP_OPTION_OBSERVE);
  const coap_bin_const_t token = coap_pdu_get_token(request);
  coap_pdu_t* copy = coap_pdu_duplicate(request, session, token.length, token.s, &drop);
  if (copy == nullptr) {
    ++stats_.rejected;
    answerError(response, COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE, "out of memory");
    return;
  }
  // coap_pdu_duplicate picks a new Message ID; coap_send_ack() needs the
  // original one.
  coap_pdu_set_mid(copy, coap_pdu_get_mid(request));

  const Clock::time_point now = Clock::now();
  const ExchangeRef ref = table_.insert(key, now);
  Exchange& exchange = *table_.get(ref);
  exchange.confirmable = confirmable;
  exchange.noResponse = noResponse;
  exchange.request = copy;
  exchange.session = coap_session_reference(session);
  exchange.block1 = block1;
  exchange.answerLimit = answerLimitFor(session, request);
  Clock::time_point wake = now + deadlineScan_;
  if (confirmable) {
    ackQueue_.push_back({ref, now + options_.piggybackWindow});
    wake = std::min(wake, now + options_.piggybackWindow);
  }
  armSweep(wake);

  ++stats_.calls;
  // A client that does not want the result gets its call stored durably
  // instead of run; the acknowledgement waits for the commit and goes out
  // as any answer does (No-Response then suppresses the 2.xx).
  if (suppressed(noResponse, COAP_RESPONSE_CODE_CONTENT)) {
    asio::co_spawn(executor_, storeDetached(invoker_, std::move(invocation)), CallDone{weak_from_this(), ref});
  } else {
    asio::co_spawn(executor_, invoker_.invoke(std::move(invocation)), CallDone{weak_from_this(), ref});
  }
  // Nothing goes out now: no ACK yet, so that the answer can still ride in it.
  sendNothing(response);
}

void Server::rejectTooLarge(coap_pdu_t* response) {
  ++stats_.rejected;
  std::uint8_t buf[4];
  coap_add_option(response, COAP_OPTION_SIZE1,
                  coap_encode_var_safe(buf, sizeof buf, static_cast<unsigned>(options_.maxPayloadBytes)), buf);
  answerError(response, COAP_RESPONSE_CODE_REQUEST_TOO_LARGE,
              "payload larger than " + std::to_string(options_.maxPayloadBytes) + " bytes");
}

// Feeds a Block1 block to the joiner. Returns true with the whole body
// once the last block is in; otherwise `response` holds the answer (2.31
// Continue, or an error).
bool Server::collectBlock(const ExchangeKey& key, std::string_view name, const coap_pdu_t* request,
                          const coap_block_b_t& block, const std::uint8_t* data, std::size_t length,
                          coap_pdu_t* response, std::string& body) {
  UploadJoiner::Block part{
      block.num, block.m != 0, block.szx, std::nullopt, {reinterpret_cast<const char*>(data), length}};
  if (block.num == 0) {
    coap_opt_iterator_t optIt;
    if (const coap_opt_t* size1 = coap_check_option(request, COAP_OPTION_SIZE1, &optIt); size1 != nullptr)
      part.size1 = coap_decode_var_bytes(coap_opt_value(size1), coap_opt_length(size1));
  }
  const Clock::time_point now = Clock::now();
  switch (uploads_.add(transferId(key, name), part, now, body)) {
    case UploadJoiner::Step::complete: return true;
    case UploadJoiner::Step::more: {
      // libcoap has usually put the Block1 answer in already (not for a block
      // it did not expect); there must be exactly one.
      coap_opt_iterator_t optIt;
      if (coap_check_option(response, COAP_OPTION_BLOCK1, &optIt) == nullptr) {
        std::uint8_t buf[4];
        coap_add_option(response, COAP_OPTION_BLOCK1,
                        coap_encode_var_safe(buf, sizeof buf, (block.num << 4) | 0x08 | block.szx), buf);
      }
      coap_pdu_set_code(response, COAP_RESPONSE_CODE_CONTINUE);
      armSweep(now + kUploadIdle);
      return false;
    }
    case UploadJoiner::Step::tooLarge: rejectTooLarge(response); return false;
    case UploadJoiner::Step::tooManyUploads:
      ++stats_.rejected;
      answerError(response, COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE, "too many uploads in progress");
      return false;
    case UploadJoiner::Step::tooManyBytes:
      ++stats_.rejected;
      answerError(response, COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE, "too many bytes in uploads in progress");
      return false;
    case UploadJoiner::Step::notStarted:
      ++stats_.rejected;
      answerError(response, COAP_RESPONSE_CODE_INCOMPLETE, "block-wise upload must start at block 0");
      return false;
    case UploadJoiner::Step::outOfOrder:
      ++stats_.rejected;
      answerError(response, COAP_RESPONSE_CODE_INCOMPLETE, "block-wise upload out of order");
      return false;
  }
  return false;
}

void Server::answerDuplicate(Exchange& exchange, coap_resource_t* resource, coap_session_t* session,
                             const coap_pdu_t* request, const coap_string_t* query, coap_pdu_t* response,
                             bool confirmable) {
  ++stats_.duplicates;
  if (!confirmable) {
    sendNothing(response);  // RFC 7252 4.5: a duplicate NON is ignored
    return;
  }
  if (exchange.phase == Exchange::Phase::inFlight) {
    // The client gave up waiting for our ACK: acknowledge now, answer later.
    exchange.acked = true;
    sendEmptyAck(response);
    return;
  }
  if (!exchange.piggybacked) {
    // The answer went (or goes) out separately, retransmitted by libcoap
    // until acknowledged; the request itself only needs its ACK.
    sendEmptyAck(response);
    return;
  }
  // The piggy-backed answer was lost: send the same answer again, unless
  // it went block-wise to a source that has not proven its address (the
  // client's retransmission asks for it whole, which could be a forged
  // source's amplification): then only the ACK.
  const std::string& body = exchange.sharedBody ? *exchange.sharedBody : exchange.body;
  if (exchange.answerLimit != 0 && 5 + coap_pdu_get_token(request).length + body.size() > exchange.answerLimit) {
    sendEmptyAck(response);
    return;
  }
  coap_pdu_set_type(response, COAP_MESSAGE_ACK);
  fillAnswer(exchange, resource, session, request, query, response);
}

}  // namespace tinyfaas::coap
