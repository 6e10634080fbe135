#include "frontend/coap/coap_server.hpp"

// The wire exchange, and why (libcoap 4.3.1 as shipped by Debian; read in its
// net.c, coap_async.c, block.c and checked against coap-client).
//
// What libcoap does: whatever the request handler leaves in `response` is sent
// as soon as the handler returns - for a Confirmable request the piggy-backed
// ACK, or an empty ACK if the code is still 0.00. Its way to answer later is
// coap_register_async(): the handler registers and returns 0.00 (so libcoap
// sends the empty ACK at once); after coap_async_trigger(), the next
// coap_io_prepare_epoll() (coap_check_async) runs handle_request() again on a
// copy of the request with the response type switched to CON, and frees the
// coap_async_t itself right after that second handler call - the application
// must not call coap_free_async() on that path. While an async is pending,
// handle_request() answers a retransmission of its token with an empty ACK
// and never tells the application. libcoap keeps no other duplicate state for
// requests: once the handler has run, a retransmitted CON runs it again.
//
// Used that way every call costs four datagrams (CON, empty ACK, CON answer,
// the client's ACK) even when the function answers in a millisecond. What we
// do instead:
//  1. First handler call: start the function, keep a copy of the request, and
//     leave `response` as NON 0.00, which libcoap drops (no_response()), so no
//     ACK goes out yet. No async is registered, so a retransmission reaches
//     our handler, and the exchange table (peer + Message ID) answers it
//     without a second call: an empty ACK while the call runs, the same
//     piggy-backed answer again once it was sent.
//  2. The result comes within `piggybackWindow` (the normal case): the answer
//     goes out as the ACK of the request, with its Message ID - piggy-backed,
//     two datagrams per call. If it fits one datagram we build it and
//     coap_send() it directly. A larger one (block-wise, RFC 7959) needs
//     coap_add_data_large_response(), which only works inside a handler, so
//     then we register an async on our copy (one-second deadline, never 0),
//     trigger it, run coap_io_prepare_epoll() at once, and turn the response
//     of the re-invoked handler back into that ACK.
//  3. The window passes first: we send the empty ACK ourselves (coap_send_ack
//     on the copy, whose Message ID we set back to the original), and the
//     answer follows as a separate CON that libcoap retransmits until the
//     client acknowledges it.
// A Non-confirmable request gets a NON answer with a fresh Message ID.
// The default window (1 s) is below the client's first retransmission (at 2
// to 3 s with RFC 7252's ACK_TIMEOUT), so a client normally sees exactly one
// message back; if it retransmits earlier, step 1 keeps it correct.

#include <algorithm>
#include <utility>

#include <boost/asio/post.hpp>

#include "frontend/coap/answer_codes.hpp"
#include "frontend/coap/pdu.hpp"

namespace tinyfaas::coap {

void Server::CallDone::operator()(std::exception_ptr error, CallResult result) {
  if (auto self = server.lock()) self->onCallDone(ref, error, std::move(result));
}

void Server::onCallDone(ExchangeRef ref, std::exception_ptr error, CallResult result) {
  if (stopped_) return;
  Exchange* exchange = table_.get(ref);
  if (exchange == nullptr || exchange->phase != Exchange::Phase::inFlight || exchange->haveResult) return;
  exchange->haveResult = true;
  if (error) {
    exchange->status = CallStatus::functionError;
    exchange->body = "internal error";
  } else {
    exchange->status = result.status;
    exchange->functionCode = result.code;
    exchange->contentFormat = contentFormatOf(result.headers);
    exchange->body = std::move(result.body);
  }
  deliver(*exchange);
}

void Server::deliver(Exchange& exchange) {
  if (!answerDirectly(exchange)) queueAnswer(table_.refOf(exchange));
}

// An answer that fits one datagram needs no block-wise state, so it is
// built and sent right here with coap_send(): no async, no second pass
// through handle_request(), no coap_io_prepare_epoll() (which walks every
// session). Larger answers, or ones the client asked to get in blocks, take
// the async path (flush) because coap_add_data_large_response() only works
// inside a request handler. Returns false for those.
bool Server::answerDirectly(Exchange& exchange) {
  auto* session = static_cast<coap_session_t*>(exchange.session);
  auto* request = static_cast<coap_pdu_t*>(exchange.request);
  const coap_pdu_code_t code = codeOf(exchange);
  // Header, token, Block1 and payload marker.
  const std::size_t header = 4 + coap_pdu_get_token(request).length + (exchange.block1 < 0 ? 0 : 4) + 1;
  if (exchange.answerLimit != 0 && COAP_RESPONSE_CLASS(code) != 2 &&
      header + exchange.body.size() > exchange.answerLimit) {
    // An error's reason is cut to fit, not sent block-wise: the code is
    // what matters, and an error may come as the node shuts down.
    exchange.body.resize(exchange.answerLimit - std::min<std::size_t>(exchange.answerLimit, header));
  }
  const std::size_t bytes = header - 1 + (exchange.body.empty() ? 0 : 1 + exchange.body.size());
  const bool blockwise = exchange.answerLimit != 0 && bytes > exchange.answerLimit;
  if (!blockwise && !fitsOneDatagram(session, request, exchange.body)) return false;

  const bool inAck = exchange.confirmable && !exchange.acked;
  if (suppressed(exchange.noResponse, code)) {
    if (inAck) coap_send_ack(session, request);
    finish(exchange);
    return true;
  }
  const coap_pdu_type_t type = inAck ? COAP_MESSAGE_ACK : separateType(exchange);
  // Piggy-backed: the ACK of the original request carries the answer.
  const coap_mid_t mid = inAck ? coap_pdu_get_mid(request) : coap_new_message_id(session);
  coap_pdu_t* pdu = coap_pdu_init(type, code, mid, coap_session_max_pdu_size(session));
  if (pdu == nullptr) return false;
  const coap_bin_const_t token = coap_pdu_get_token(request);
  // Too large for a source that has not proven its address: the first of
  // small blocks (Block2 takes at most 3 bytes here), the rest on request.
  const unsigned szx = blockwise ? blockSizeFor(exchange.answerLimit, header + 3) : 0;
  const std::size_t sent = blockwise ? header + 3 + (std::size_t{16} << szx) : bytes;
  // An Echo value where it still fits, for the client to prove its address.
  const bool offerEcho = exchange.answerLimit != 0 && sent + 2 + EchoChallenge::kBytes <= exchange.answerLimit;
  // (A MAC costs about a microsecond: only made when it goes out.)
  const EchoChallenge::Value echo = offerEcho ? echo_.make(exchange.key, Clock::now()) : EchoChallenge::Value{};
  bool built = coap_add_token(pdu, token.length, token.s) && addContentFormat(pdu, exchange.contentFormat) &&
               addBlock1Echo(exchange, pdu);
  if (built && blockwise) {
    built = addBlock(pdu, exchange.body, 0, szx, offerEcho ? &echo : nullptr);
    if (built && (std::size_t{16} << szx) < exchange.body.size()) rememberDownload(exchange, request, code);
  } else if (built) {
    built = (!offerEcho || coap_add_option(pdu, COAP_OPTION_ECHO, echo.size(), echo.data()) != 0) &&
            (exchange.body.empty() ||
             coap_add_data(pdu, exchange.body.size(), reinterpret_cast<const std::uint8_t*>(exchange.body.data())));
  }
  if (!built) {
    coap_delete_pdu(pdu);
    return false;
  }
  if (inAck) {
    exchange.piggybacked = true;
    ++stats_.piggybacked;
  } else {
    ++stats_.separate;
  }
  // coap_send() owns the PDU from here; a CON is retransmitted by libcoap
  // (its timerfd, in the epoll set we watch) until the client ACKs it.
  coap_send(session, pdu);
  finish(exchange);
  return true;
}

// A separate answer to a CON request is a CON (retransmitted until
// acknowledged) only for a source that proved its address: retransmitting
// to a forged one would multiply the answer.
coap_pdu_type_t Server::separateType(const Exchange& exchange) {
  return exchange.confirmable && exchange.answerLimit == 0 ? COAP_MESSAGE_CON : COAP_MESSAGE_NON;
}

// RFC 7959 2.3: the final answer to an upload names its last block.
bool Server::addBlock1Echo(const Exchange& exchange, coap_pdu_t* pdu) {
  if (exchange.block1 < 0) return true;
  std::uint8_t buf[4];
  return coap_add_option(pdu, COAP_OPTION_BLOCK1,
                         coap_encode_var_safe(buf, sizeof buf, static_cast<unsigned>(exchange.block1)), buf) != 0;
}

void Server::queueAnswer(ExchangeRef ref) {
  ready_.push_back(ref);
  if (flushPosted_) return;
  flushPosted_ = true;
  // Batched: one coap_io_prepare_epoll() answers every call that finished
  // in this turn of the loop.
  boost::asio::post(executor_, [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->flush();
  });
}

void Server::flush() {
  flushPosted_ = false;
  if (stopped_) return;
  // Each round answers at least one call, or stops: libcoap allows one
  // async per token and session, so calls of one peer that share a token
  // (empty tokens are common) go one per round.
  while (!ready_.empty()) {
    batch_.swap(ready_);
    ready_.clear();
    bool registered = false;
    for (const ExchangeRef ref : batch_) {
      Exchange* exchange = table_.get(ref);
      if (exchange == nullptr || exchange->phase != Exchange::Phase::inFlight) continue;
      auto* session = static_cast<coap_session_t*>(exchange->session);
      auto* request = static_cast<coap_pdu_t*>(exchange->request);
      coap_async_t* async = coap_register_async(session, request, COAP_TICKS_PER_SECOND);
      if (async == nullptr) {
        ready_.push_back(ref);
        continue;
      }
      registered = true;
      coap_async_set_app_data(async, exchange);
      coap_async_trigger(async);
    }
    if (!registered) break;
    // Fires the triggered asyncs: answerTriggered() runs for each.
    loop_->refreshTimer();
    for (const ExchangeRef ref : batch_) {
      Exchange* exchange = table_.get(ref);
      if (exchange == nullptr || exchange->phase != Exchange::Phase::inFlight) continue;
      auto* session = static_cast<coap_session_t*>(exchange->session);
      const coap_bin_const_t token = coap_pdu_get_token(static_cast<coap_pdu_t*>(exchange->request));
      if (coap_async_t* async = coap_find_async(session, token);
          async != nullptr && coap_async_get_app_data(async) == exchange) {
        // Registered but not fired: coap_async_trigger() stores "now" as
        // the deadline, and 0 means "never", which is what "now" is in the
        // first millisecond of libcoap's clock. Fire it on the next tick.
        // Meanwhile libcoap would answer a retransmission with an empty
        // ACK of its own, so the answer must not be piggy-backed any more.
        coap_async_set_delay(async, 1);
        exchange->acked = true;
      }
    }
  }
  if (!ready_.empty()) {
    // Nothing could be registered (out of memory, or the token still held
    // by an async about to fire): try again shortly.
    armSweep(Clock::now() + std::chrono::milliseconds(2));
  }
}

void Server::answerTriggered(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
                             const coap_string_t* query, coap_pdu_t* response, coap_async_t* async) {
  auto* exchange = static_cast<Exchange*>(coap_async_get_app_data(async));
  // libcoap frees `async` when this returns (coap_check_async): no
  // coap_free_async() here.
  coap_async_set_app_data(async, nullptr);
  if (exchange == nullptr || exchange->phase != Exchange::Phase::inFlight || !exchange->haveResult) {
    sendNothing(response);
    return;
  }
  const coap_pdu_code_t code = codeOf(*exchange);
  const bool inAck = exchange->confirmable && !exchange->acked;
  if (suppressed(exchange->noResponse, code)) {
    if (inAck) {
      sendEmptyAck(response);
      coap_pdu_set_mid(response, exchange->key.messageId);
    } else {
      sendNothing(response);
    }
    finish(*exchange);
    return;
  }
  if (inAck) {
    // Piggy-backed: the ACK of the original request carries the answer.
    coap_pdu_set_type(response, COAP_MESSAGE_ACK);
    coap_pdu_set_mid(response, exchange->key.messageId);
    exchange->piggybacked = true;
    ++stats_.piggybacked;
  } else {
    // libcoap makes a triggered answer to a CON a CON.
    coap_pdu_set_type(response, separateType(*exchange));
    ++stats_.separate;
  }
  fillAnswer(*exchange, resource, session, request, query, response);
  finish(*exchange);
}

// Code, options and body of an exchange's answer; the response type is the
// caller's.
void Server::fillAnswer(Exchange& exchange, coap_resource_t* resource, coap_session_t* session,
                        const coap_pdu_t* request, const coap_string_t* query, coap_pdu_t* response) {
  const coap_pdu_code_t code = codeOf(exchange);
  coap_pdu_set_code(response, code);
  const std::string& body = exchange.sharedBody ? *exchange.sharedBody : exchange.body;
  // The large path below adds its Content-Format itself.
  if (body.empty() || fitsOneDatagram(session, request, body)) addContentFormat(response, exchange.contentFormat);
  addBlock1Echo(exchange, response);
  if (body.empty()) return;
  if (fitsOneDatagram(session, request, body)) {
    addText(response, body);
    return;
  }
  // libcoap keeps the pointer for the later blocks, possibly past this
  // exchange's eviction: it holds a reference of its own.
  if (!exchange.sharedBody) exchange.sharedBody = std::make_shared<const std::string>(std::move(exchange.body));
  auto* holder = new std::shared_ptr<const std::string>(exchange.sharedBody);
  coap_add_data_large_response(
      resourceFor(request, resource), session, request, response, query,
      exchange.contentFormat < 0 ? COAP_MEDIATYPE_TEXT_PLAIN : static_cast<std::uint16_t>(exchange.contentFormat), -1,
      0, (*holder)->size(), reinterpret_cast<const std::uint8_t*>((*holder)->data()), releaseSharedBody, holder);
  // coap_add_data_large_response() sets 5.00 itself when it fails.
  if (coap_pdu_get_code(response) != COAP_RESPONSE_CODE_INTERNAL_ERROR) coap_pdu_set_code(response, code);
}

void Server::finish(Exchange& exchange) {
  dropLibcoapState(exchange);
  table_.markDone(exchange, Clock::now());
  // Calls mostly finish in arrival order, so this keeps the queue down to
  // the calls that may still need their empty ACK (and the sweep timer
  // from waking for ones that do not).
  while (!ackQueue_.empty()) {
    const Exchange* front = table_.get(ackQueue_.front().ref);
    if (front != nullptr && front->phase == Exchange::Phase::inFlight && !front->acked) break;
    ackQueue_.pop_front();
  }
}

void Server::rememberDownload(Exchange& exchange, const coap_pdu_t* request, coap_pdu_code_t code) {
  if (!exchange.sharedBody) exchange.sharedBody = std::make_shared<const std::string>(std::move(exchange.body));
  const Clock::time_point now = Clock::now();
  downloads_.remember(transferId(exchange.key, functionOf(request)), exchange.sharedBody, code, now);
  armSweep(now + kUploadIdle);
}

}  // namespace tinyfaas::coap
