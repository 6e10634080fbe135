#include "frontend/coap/coap_server.hpp"

#include <algorithm>
#include <utility>

#include "core/function_name.hpp"
#include "frontend/coap/libcoap_log.hpp"
#include "frontend/coap/pdu.hpp"

namespace tinyfaas::coap {
namespace {

namespace asio = boost::asio;

// Coarse scan interval for call deadlines (shorter if the deadline is).
constexpr auto kDeadlineScan = std::chrono::seconds(1);
// Per-function resources (see resourceFor).
constexpr std::size_t kMaxNamedResources = 1024;

}  // namespace

Server::Server(asio::any_io_executor executor, Invoker& invoker, CoapOptions options)
    : executor_(executor),
      invoker_(invoker),
      options_(std::move(options)),
      loop_(std::make_shared<LibcoapLoop>(executor)),
      sweepTimer_(executor),
      table_(ExchangeLimits{options_.dedupEntries, options_.dedupBytes, std::chrono::seconds(247)}),
      deadlineScan_(std::min<Clock::duration>(kDeadlineScan, options_.callDeadline)),
      uploads_(UploadLimits{options_.maxPayloadBytes, options_.maxUploads, options_.maxUploadBytes}) {}

boost::system::result<void, std::string> Server::start() {
  coap_startup();
  routeLibcoapLogsToSpdlog(options_.libcoapLogLevel);
  if (auto opened = loop_->open(options_, this); !opened) return opened.error();
  coap_context_t* context = loop_->context();

  // Functions come and go, so the unknown-resource handler takes every
  // path and the proxy says which names exist (resourceFor() adds the one
  // exception).
  coap_resource_t* unknown = coap_resource_unknown_init2(&Server::onNotAllowed, 0);
  registerHandlers(unknown);
  coap_add_resource(context, unknown);
  // Without this, libcoap answers .well-known/core itself and would list
  // the per-function resources below (see resourceFor); this endpoint
  // serves functions only.
  static constexpr std::string_view kWellKnown = ".well-known/core";
  coap_resource_t* wellKnown = coap_resource_init(
      coap_new_str_const(reinterpret_cast<const std::uint8_t*>(kWellKnown.data()), kWellKnown.size()),
      COAP_RESOURCE_FLAGS_RELEASE_URI);
  registerHandlers(wellKnown);
  coap_add_resource(context, wellKnown);

  return loop_->watch();
}

void Server::stop() {
  if (stopped_) return;
  stopped_ = true;
  sweepTimer_.cancel();
  // Before the context goes: the sessions and PDUs held belong to it.
  table_.forEach([this](Exchange& exchange) { dropLibcoapState(exchange); });
  loop_->stop();
  named_.clear();
  ready_.clear();
  ackQueue_.clear();
  uploads_.clear();
  downloads_.clear();
}

bool Server::delivering() const { return loop_->context() != nullptr && coap_can_exit(loop_->context()) == 0; }

void Server::cutShort(std::string_view reason) {
  if (stopped_) return;
  std::vector<ExchangeRef> running;
  table_.forEach([&](Exchange& exchange) {
    if (exchange.phase == Exchange::Phase::inFlight && !exchange.haveResult) running.push_back(table_.refOf(exchange));
  });
  for (const ExchangeRef ref : running) {
    Exchange& exchange = *table_.get(ref);
    exchange.haveResult = true;
    exchange.status = CallStatus::unavailable;
    exchange.body.assign(reason);
    deliver(exchange);
  }
}

CoapStats Server::stats() const {
  CoapStats stats = stats_;
  stats.inFlight = table_.inFlight();
  return stats;
}

void Server::registerHandlers(coap_resource_t* resource) {
  coap_register_request_handler(resource, COAP_REQUEST_GET, &Server::onRequest);
  coap_register_request_handler(resource, COAP_REQUEST_POST, &Server::onRequest);
  coap_register_request_handler(resource, COAP_REQUEST_PUT, &Server::onNotAllowed);
  coap_register_request_handler(resource, COAP_REQUEST_DELETE, &Server::onNotAllowed);
  coap_register_request_handler(resource, COAP_REQUEST_FETCH, &Server::onNotAllowed);
  coap_register_request_handler(resource, COAP_REQUEST_PATCH, &Server::onNotAllowed);
  coap_register_request_handler(resource, COAP_REQUEST_IPATCH, &Server::onNotAllowed);
}

// libcoap 4.3.1 finds the state of a block-wise answer (lg_xmit) by peer,
// resource, method and query. Under the one unknown-resource handler every
// function would share it, so a second large answer to the same peer
// (another function) would replace the first mid-transfer and its later
// blocks would carry the wrong body. A resource per function name, made
// the first time a function's answer needs blocks, keeps them apart.
// (Two concurrent large answers from the same function to the same peer
// stay ambiguous: RFC 7959 has nothing to tell them apart.) Bounded; past
// the bound the shared resource is used.
coap_resource_t* Server::resourceFor(const coap_pdu_t* request, coap_resource_t* fallback) {
  coap_opt_iterator_t it;
  const coap_opt_t* path = coap_check_option(request, COAP_OPTION_URI_PATH, &it);
  if (path == nullptr) return fallback;
  const std::string_view name(reinterpret_cast<const char*>(coap_opt_value(path)), coap_opt_length(path));
  if (auto found = named_.find(name); found != named_.end()) return found->second;
  if (named_.size() >= kMaxNamedResources || !isValidFunctionName(name)) return fallback;
  coap_str_const_t* uri = coap_new_str_const(coap_opt_value(path), coap_opt_length(path));
  if (uri == nullptr) return fallback;
  coap_resource_t* resource = coap_resource_init(uri, COAP_RESOURCE_FLAGS_RELEASE_URI);
  if (resource == nullptr) return fallback;
  registerHandlers(resource);
  coap_add_resource(loop_->context(), resource);
  named_.emplace(std::string(name), resource);
  return resource;
}

void Server::dropLibcoapState(Exchange& exchange) {
  if (exchange.request != nullptr) coap_delete_pdu(static_cast<coap_pdu_t*>(exchange.request));
  if (exchange.session != nullptr) coap_session_release(static_cast<coap_session_t*>(exchange.session));
  exchange.request = nullptr;
  exchange.session = nullptr;
}

// ---- timers: piggy-back window, call deadlines, dedup expiry ------------------

void Server::armSweep(Clock::time_point due) {
  if (sweepArmed_ && sweepDue_ <= due) return;
  sweepArmed_ = true;
  sweepDue_ = due;
  sweepTimer_.expires_at(due);
  sweepTimer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    if (ec) return;
    auto self = weak.lock();
    if (!self || self->stopped_) return;
    self->sweepArmed_ = false;
    self->sweep();
  });
}

void Server::sweep() {
  if (!ready_.empty() && !flushPosted_) flush();
  const Clock::time_point now = Clock::now();
  bool sentAck = false;
  while (!ackQueue_.empty() && ackQueue_.front().at <= now) {
    const ExchangeRef ref = ackQueue_.front().ref;
    ackQueue_.pop_front();
    Exchange* exchange = table_.get(ref);
    if (exchange == nullptr || exchange->phase != Exchange::Phase::inFlight || exchange->acked) continue;
    exchange->acked = true;
    coap_send_ack(static_cast<coap_session_t*>(exchange->session), static_cast<coap_pdu_t*>(exchange->request));
    sentAck = true;
  }
  // Results that are lost for good (an invoker that never completes) still
  // get an answer, and their exchanges are freed.
  if (table_.inFlight() > 0 && now - lastDeadlineScan_ >= deadlineScan_) {
    lastDeadlineScan_ = now;
    std::vector<ExchangeRef> late;
    table_.forEach([&](Exchange& exchange) {
      if (exchange.phase == Exchange::Phase::inFlight && !exchange.haveResult &&
          exchange.arrived + options_.callDeadline <= now) {
        late.push_back(table_.refOf(exchange));
      }
    });
    for (const ExchangeRef ref : late) {
      Exchange& exchange = *table_.get(ref);
      exchange.haveResult = true;
      exchange.status = CallStatus::timeout;
      exchange.body = "no result within the deadline";
      deliver(exchange);
    }
  }
  table_.evict(now);
  const Clock::time_point oldestUpload = std::min(uploads_.expire(now), downloads_.expire(now));
  if (sentAck) loop_->refreshTimer();

  Clock::time_point next = Clock::time_point::max();
  if (!ackQueue_.empty()) next = std::min(next, ackQueue_.front().at);
  if (table_.inFlight() > 0) next = std::min(next, now + deadlineScan_);
  if (oldestUpload != Clock::time_point::max()) next = std::min(next, oldestUpload + kUploadIdle);
  Clock::time_point expiry;
  if (table_.nextExpiry(expiry)) next = std::min(next, std::max(expiry, now + std::chrono::milliseconds(100)));
  if (next != Clock::time_point::max()) armSweep(next);
}

}  // namespace tinyfaas::coap
