#include "frontend/coap/coap_frontend.hpp"

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

#include <arpa/inet.h>
#include <coap3/coap.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "core/function_name.hpp"
#include "frontend/coap/echo_challenge.hpp"
#include "frontend/coap/exchange_table.hpp"
#include "frontend/coap/libcoap_log.hpp"

namespace tinyfaas {
namespace {

namespace asio = boost::asio;
using coap::Clock;
using coap::Exchange;
using coap::ExchangeKey;
using coap::ExchangeRef;
using coap::ExchangeTable;

// Datagrams handled before the loop gets a turn for other work (completions,
// timers); the rest are drained right after.
constexpr int kDrainBatch = 64;
// Room for header, token, a Block1 option and the payload marker: a body that
// fits beside them in one datagram is sent as it is, a larger one in blocks.
constexpr std::size_t kHeaderRoom = 32;
// How stale the steady timer for libcoap's schedule may get while datagrams
// keep arriving (see drain()).
constexpr auto kTimerRefresh = std::chrono::milliseconds(50);
// Coarse scan interval for call deadlines (shorter if the deadline is).
constexpr auto kDeadlineScan = std::chrono::seconds(1);
// How long a block-wise upload we join ourselves (see collectBlock) may
// pause between blocks (RFC 7252 MAX_TRANSMIT_WAIT is 93 s).
constexpr auto kUploadIdle = std::chrono::seconds(93);
// Block-wise answers to unverified sources served by us (see Download).
constexpr std::size_t kMaxDownloads = 256;
constexpr std::size_t kMaxDownloadBytes = 32u << 20;
// Per-function resources (see resourceFor).
constexpr std::size_t kMaxNamedResources = 1024;
// A libcoap session's app data points here once its peer proved its address.
constexpr char kVerifiedSource = 1;

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
    case 400: case 401: case 402: case 403: case 404: case 405: case 406: case 412: case 413: case 415: case 422:
    case 429:
    case 500: case 501: case 502: case 503: case 504:
      return static_cast<coap_pdu_code_t>(COAP_RESPONSE_CODE(code));
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

// Leaves `response` so that libcoap sends nothing at all: it drops a 0.00
// response unless it is an ACK (no_response() in net.c).
void sendNothing(coap_pdu_t* response) {
  coap_pdu_set_type(response, COAP_MESSAGE_NON);
  coap_pdu_set_code(response, COAP_EMPTY_CODE);
}

// Leaves `response` as the empty ACK libcoap makes of a 0.00 ACK.
void sendEmptyAck(coap_pdu_t* response) {
  coap_pdu_set_type(response, COAP_MESSAGE_ACK);
  coap_pdu_set_code(response, COAP_EMPTY_CODE);
}

void releaseSharedBody(coap_session_t*, void* holder) {
  delete static_cast<std::shared_ptr<const std::string>*>(holder);
}

// Whether an answer with `body` goes out whole, not block-wise: it fits, and
// the client did not ask for blocks (Block2 in the request).
bool fitsOneDatagram(coap_session_t* session, const coap_pdu_t* request, const std::string& body) {
  if (body.size() + kHeaderRoom > coap_session_max_pdu_size(session)) return false;
  coap_block_b_t block;
  return coap_get_block_b(session, request, COAP_OPTION_BLOCK2, &block) == 0;
}

class Core;

Core* coreOf(coap_session_t* session) {
  return static_cast<Core*>(coap_get_app_data(coap_session_get_context(session)));
}

// The frontend's state: libcoap's context, the exchange table and the timers.
// Lives on the data-plane thread that runs `executor_` and is touched only
// there (libcoap 4.3.1 has no locking). Shared ownership only so that asio
// and co_spawn completions can hold a weak reference: one that outlives
// stop() or the frontend finds it expired or stopped and does nothing.
class Core : public std::enable_shared_from_this<Core> {
 public:
  Core(asio::any_io_executor executor, Invoker& invoker, CoapOptions options)
      : executor_(executor),
        invoker_(invoker),
        options_(std::move(options)),
        fd_(executor),
        coapTimer_(executor),
        sweepTimer_(executor),
        table_(coap::ExchangeLimits{options_.dedupEntries, options_.dedupBytes, std::chrono::seconds(247)}),
        deadlineScan_(std::min<Clock::duration>(kDeadlineScan, options_.callDeadline)) {}

  ~Core() { stop(); }

  boost::system::result<void, std::string> start() {
    coap_startup();
    coap::routeLibcoapLogsToSpdlog(options_.libcoapLogLevel);

    boost::system::error_code ec;
    const asio::ip::address ip = asio::ip::make_address(options_.address, ec);
    if (ec) return "invalid CoAP listen address '" + options_.address + "' (expected a numeric IPv4 or IPv6 address)";
    const std::string where = (ip.is_v6() ? "[" + options_.address + "]" : options_.address) + ":" +
                              std::to_string(options_.port);

    coap_address_t listen;
    coap_address_init(&listen);
    if (ip.is_v4()) {
      listen.addr.sin.sin_family = AF_INET;
      listen.addr.sin.sin_port = htons(options_.port);
      const auto bytes = ip.to_v4().to_bytes();
      std::memcpy(&listen.addr.sin.sin_addr, bytes.data(), bytes.size());
      listen.size = sizeof(sockaddr_in);
    } else {
      listen.addr.sin6.sin6_family = AF_INET6;
      listen.addr.sin6.sin6_port = htons(options_.port);
      const auto bytes = ip.to_v6().to_bytes();
      std::memcpy(&listen.addr.sin6.sin6_addr, bytes.data(), bytes.size());
      listen.addr.sin6.sin6_scope_id = ip.to_v6().scope_id();
      listen.size = sizeof(sockaddr_in6);
    }

    context_ = coap_new_context(nullptr);
    if (context_ == nullptr) return "cannot create the CoAP context for " + where;
    coap_set_app_data(context_, this);
    // libcoap sends large answers block by block (Block2) for us. Uploads
    // (Block1) it would join itself with COAP_BLOCK_SINGLE_BODY, but 4.3.1
    // then allocates whatever Size1 the client announces (up to 4 GiB) and
    // buffers the whole body before the handler can apply maxPayloadBytes;
    // without Size1 it even hands each block over as if it were the whole
    // body. So every block comes to the handler and collectBlock() joins
    // them, bounded.
    coap_context_set_block_mode(context_, COAP_BLOCK_USE_LIBCOAP);
    coap_context_set_max_idle_sessions(context_, options_.maxIdleSessions);

    errno = 0;
    coap_endpoint_t* endpoint = coap_new_endpoint(context_, &listen, COAP_PROTO_UDP);
    if (endpoint == nullptr) {
      const int error = errno;
      freeContext();
      return "cannot bind CoAP on UDP " + where + (error != 0 ? std::string(": ") + std::strerror(error) : "");
    }
    port_ = boundPort(endpoint);
    tuneEndpointSocket(ip.is_v6() ? AF_INET6 : AF_INET);

    // Functions come and go, so the unknown-resource handler takes every
    // path and the proxy says which names exist (resourceFor() adds the one
    // exception).
    coap_resource_t* unknown = coap_resource_unknown_init2(&Core::onNotAllowed, 0);
    registerHandlers(unknown);
    coap_add_resource(context_, unknown);
    // Without this, libcoap answers .well-known/core itself and would list
    // the per-function resources below (see resourceFor); this endpoint
    // serves functions only.
    static constexpr std::string_view kWellKnown = ".well-known/core";
    coap_resource_t* wellKnown = coap_resource_init(
        coap_new_str_const(reinterpret_cast<const std::uint8_t*>(kWellKnown.data()), kWellKnown.size()),
        COAP_RESOURCE_FLAGS_RELEASE_URI);
    registerHandlers(wellKnown);
    coap_add_resource(context_, wellKnown);

    const int coapFd = coap_context_get_coap_fd(context_);
    if (coapFd < 0) {
      freeContext();
      return std::string("libcoap was built without epoll support; cannot join its loop");
    }
    fd_.assign(coapFd, ec);
    if (ec) {
      freeContext();
      return "cannot watch libcoap's descriptor: " + ec.message();
    }
    // Datagrams may already be queued; drain() ends by waiting for more.
    asio::post(executor_, [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->drain();
    });
    return {};
  }

  void stop() {
    if (stopped_) return;
    stopped_ = true;
    coapTimer_.cancel();
    sweepTimer_.cancel();
    if (fd_.is_open()) {
      // libcoap owns (and closes) its epoll fd.
      (void)fd_.release();
    }
    table_.forEach([this](Exchange& exchange) { dropLibcoapState(exchange); });
    freeContext();
    named_.clear();
    ready_.clear();
    ackQueue_.clear();
    uploads_.clear();
    uploadBytes_ = 0;
    downloads_.clear();
  }

  void stopAccepting() { draining_ = true; }

  std::size_t callsInFlight() const { return table_.inFlight(); }

  bool delivering() const { return context_ != nullptr && coap_can_exit(context_) == 0; }

  void cutShort(std::string_view reason) {
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

  std::uint16_t port() const { return port_; }

  CoapStats stats() const {
    CoapStats stats = stats_;
    stats.inFlight = table_.inFlight();
    return stats;
  }

 private:
  struct Due {
    ExchangeRef ref;
    Clock::time_point at;
  };

  struct Upload {
    std::string body;
    Clock::time_point touched;
  };

  // Completion of one call, run on the loop by co_spawn. Holds only a weak
  // reference: the frontend may have been stopped and destroyed meanwhile.
  struct CallDone {
    std::weak_ptr<Core> core;
    ExchangeRef ref;
    void operator()(std::exception_ptr error, CallResult result) {
      if (auto self = core.lock()) self->onCallDone(ref, error, std::move(result));
    }
  };

  static void registerHandlers(coap_resource_t* resource) {
    coap_register_request_handler(resource, COAP_REQUEST_GET, &Core::onRequest);
    coap_register_request_handler(resource, COAP_REQUEST_POST, &Core::onRequest);
    coap_register_request_handler(resource, COAP_REQUEST_PUT, &Core::onNotAllowed);
    coap_register_request_handler(resource, COAP_REQUEST_DELETE, &Core::onNotAllowed);
    coap_register_request_handler(resource, COAP_REQUEST_FETCH, &Core::onNotAllowed);
    coap_register_request_handler(resource, COAP_REQUEST_PATCH, &Core::onNotAllowed);
    coap_register_request_handler(resource, COAP_REQUEST_IPATCH, &Core::onNotAllowed);
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
  coap_resource_t* resourceFor(const coap_pdu_t* request, coap_resource_t* fallback) {
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
    coap_add_resource(context_, resource);
    named_.emplace(std::string(name), resource);
    return resource;
  }

  static std::uint16_t boundPort(coap_endpoint_t* endpoint) {
    // libcoap 4.3.1 has no getter for the bound address, but coap_endpoint_str
    // prints the address it read back with getsockname(), e.g.
    // "127.0.0.1:41234 (UDP)" or "[::1]:5683 (UDP)".
    std::string_view text = coap_endpoint_str(endpoint);
    const std::size_t space = text.find(' ');
    if (space != std::string_view::npos) text = text.substr(0, space);
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return 0;
    unsigned value = 0;
    for (char c : text.substr(colon + 1)) {
      if (c < '0' || c > '9') return 0;
      value = value * 10 + static_cast<unsigned>(c - '0');
      if (value > 65535) return 0;
    }
    return static_cast<std::uint16_t>(value);
  }

  // A burst of requests (1024 clients answering at once) overflows the
  // kernel's default receive buffer (~200 datagrams) and the lost datagrams
  // fail their calls. libcoap 4.3.1 hides the endpoint's socket, so it is
  // found among our descriptors as the UDP socket bound to our port.
  // libcoap also binds with SO_REUSEADDR, as its clients do (coap-client on
  // port 0): the kernel could hand such a client our port (likely when it
  // was 0 too), and its requests would go to itself. Cleared once bound,
  // the port is ours alone.
  void tuneEndpointSocket(int family) const {
    const int bytes = static_cast<int>(options_.socketBufferBytes);
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
      int fd = -1;
      const std::string name = entry.path().filename().string();
      if (std::from_chars(name.data(), name.data() + name.size(), fd).ec != std::errc{}) continue;
      int type = 0;
      socklen_t typeLength = sizeof type;
      if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &typeLength) != 0 || type != SOCK_DGRAM) continue;
      sockaddr_storage bound{};
      socklen_t length = sizeof bound;
      if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) != 0 || bound.ss_family != family) continue;
      const in_port_t port = family == AF_INET ? reinterpret_cast<sockaddr_in&>(bound).sin_port
                                               : reinterpret_cast<sockaddr_in6&>(bound).sin6_port;
      if (ntohs(port) != port_) continue;
      const int off = 0;
      if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &off, sizeof off) != 0)
        spdlog::warn("coap: cannot clear SO_REUSEADDR: {}", std::strerror(errno));
      if (bytes == 0) return;
      // The FORCE variants pass net.core.[rw]mem_max when we run as root.
      for (auto [force, plain] : {std::pair{SO_RCVBUFFORCE, SO_RCVBUF}, std::pair{SO_SNDBUFFORCE, SO_SNDBUF}}) {
        if (::setsockopt(fd, SOL_SOCKET, force, &bytes, sizeof bytes) != 0 &&
            ::setsockopt(fd, SOL_SOCKET, plain, &bytes, sizeof bytes) != 0) {
          spdlog::warn("coap: cannot enlarge the socket buffers: {}", std::strerror(errno));
        }
      }
      return;
    }
  }

  void freeContext() {
    if (context_ == nullptr) return;
    coap_free_context(context_);
    context_ = nullptr;
  }

  void dropLibcoapState(Exchange& exchange) {
    if (exchange.request != nullptr) coap_delete_pdu(static_cast<coap_pdu_t*>(exchange.request));
    if (exchange.session != nullptr) coap_session_release(static_cast<coap_session_t*>(exchange.session));
    exchange.request = nullptr;
    exchange.session = nullptr;
  }

  // ---- joining libcoap's loop ------------------------------------------------

  void waitReadable() {
    fd_.async_wait(asio::posix::descriptor_base::wait_read,
                   [weak = weak_from_this()](const boost::system::error_code& ec) {
                     if (ec) return;
                     if (auto self = weak.lock()) self->drain();
                   });
  }

  // Handles what libcoap's epoll set has ready, one event per fd per
  // epoll_wait (so one datagram per round with our single UDP socket), until
  // nothing is left. Asio watches the epoll fd edge-triggered: we only go
  // back to waiting once epoll_wait found it empty, so a burst is never left
  // half-read without another wake-up coming.
  void drain() {
    if (stopped_) return;
    const int epfd = coap_context_get_coap_fd(context_);
    epoll_event events[16];
    int rounds = 0;
    bool empty = false;
    while (rounds < kDrainBatch) {
      const int n = ::epoll_wait(epfd, events, 16, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        spdlog::warn("coap: epoll_wait on libcoap's descriptor failed: {}", std::strerror(errno));
        empty = true;
        break;
      }
      if (n == 0) {
        empty = true;
        break;
      }
      ++rounds;
      coap_io_do_epoll(context_, events, static_cast<std::size_t>(n));
      if (stopped_) return;
    }
    // coap_io_do_epoll() ends with coap_io_prepare_epoll(), which walks every
    // session and re-arms libcoap's own timerfd (part of the epoll set we
    // watch). Asking again just to learn the timeout would double that cost
    // per datagram, so the steady timer is refreshed from here at most every
    // kTimerRefresh; flush() and the timer itself refresh it every time.
    if (Clock::now() - lastTimerRefresh_ >= kTimerRefresh) refreshLibcoapTimer();
    if (empty) {
      waitReadable();
    } else {
      asio::post(executor_, [weak = weak_from_this()] {
        if (auto self = weak.lock()) self->drain();
      });
    }
  }

  // Runs libcoap's time-driven work (retransmissions, triggered asyncs,
  // session and block-transfer expiry) and arms a steady timer for the next.
  void refreshLibcoapTimer() {
    coap_tick_t now;
    coap_ticks(&now);
    const unsigned ms = coap_io_prepare_epoll(context_, now);
    lastTimerRefresh_ = Clock::now();
    if (ms == 0) return;  // nothing scheduled
    const Clock::time_point due = lastTimerRefresh_ + std::chrono::milliseconds(ms);
    if (coapTimerArmed_ && coapTimerDue_ <= due) return;
    coapTimerArmed_ = true;
    coapTimerDue_ = due;
    coapTimer_.expires_at(due);
    coapTimer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      if (ec) return;  // re-armed earlier, or stopped
      auto self = weak.lock();
      if (!self || self->stopped_) return;
      self->coapTimerArmed_ = false;
      self->refreshLibcoapTimer();
    });
  }

  // ---- requests ----------------------------------------------------------------

  // Called by libcoap (C): nothing may unwind through it. Only allocation
  // failure could throw here, and then terminating is the honest outcome.
  static void onNotAllowed(coap_resource_t*, coap_session_t* session, const coap_pdu_t*, const coap_string_t*,
                           coap_pdu_t* response) noexcept {
    Core* core = coreOf(session);
    if (core != nullptr && !core->verified(session)) {
      coap_pdu_set_code(response, COAP_RESPONSE_CODE_NOT_ALLOWED);
      return;
    }
    answerError(response, COAP_RESPONSE_CODE_NOT_ALLOWED, "use GET or POST");
  }

  // ---- amplification: answers to sources that did not prove their address --------

  // Whether the peer of `session` has proven it receives what we send to its
  // address (or the check is off). Kept on libcoap's session for that
  // address and port, so it lasts as long as libcoap keeps the peer's state.
  bool verified(coap_session_t* session) const {
    return !options_.verifySources || coap_session_get_app_data(session) == &kVerifiedSource;
  }

  // An error answered before the source proved itself carries no reason
  // text: the code alone keeps it within three times the request's size.
  void reject(coap_session_t* session, coap_pdu_t* response, coap_pdu_code_t code, std::string_view reason) {
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
  void noteEcho(coap_session_t* session, const coap_pdu_t* request, const ExchangeKey& source) {
    if (verified(session)) return;
    coap_opt_iterator_t it;
    const coap_opt_t* echo = coap_check_option(request, COAP_OPTION_ECHO, &it);
    if (echo != nullptr && echo_.check({coap_opt_value(echo), coap_opt_length(echo)}, source, Clock::now())) {
      coap_session_set_app_data(session, const_cast<char*>(&kVerifiedSource));
      ++stats_.verified;
    }
  }

  std::uint16_t answerLimitFor(coap_session_t* session, const coap_pdu_t* request) const {
    if (verified(session)) return 0;
    return static_cast<std::uint16_t>(std::min<std::size_t>(3 * pduBytes(request), 0xFFFF));
  }

  // The request's size on the wire (libcoap 4.3.1 has no getter for it).
  static std::size_t pduBytes(const coap_pdu_t* pdu) {
    std::size_t bytes = 4 + coap_pdu_get_token(pdu).length;
    coap_opt_iterator_t it;
    coap_option_iterator_init(pdu, &it, COAP_OPT_ALL);
    while (const coap_opt_t* option = coap_option_next(&it)) bytes += coap_opt_size(option);
    std::size_t length = 0;
    const std::uint8_t* data = nullptr;
    if (coap_get_data(pdu, &length, &data) != 0 && length > 0) bytes += 1 + length;
    return bytes;
  }

  // Blocks (RFC 7959) of an answer to an unverified source, served here
  // rather than by libcoap, whose first block carries ETag and Size2 and
  // would not fit three times a small request.
  struct Download {
    std::shared_ptr<const std::string> body;
    coap_pdu_code_t code = COAP_RESPONSE_CODE_CONTENT;
    Clock::time_point touched;
  };

  // A peer (address, port) and a function name: what block-wise transfers
  // are matched by (RFC 7959 2.4: the request URI; tokens change per block).
  static std::string transferId(const ExchangeKey& key, std::string_view name) {
    std::string id;
    id.reserve(19 + name.size());
    id.push_back(static_cast<char>(key.family));
    id.append(reinterpret_cast<const char*>(key.address.data()), key.address.size());
    id.push_back(static_cast<char>(key.port));
    id.push_back(static_cast<char>(key.port >> 8));
    id.append(name);
    return id;
  }

  static std::string_view functionOf(const coap_pdu_t* request) {
    coap_opt_iterator_t it;
    const coap_opt_t* path = coap_check_option(request, COAP_OPTION_URI_PATH, &it);
    if (path == nullptr) return {};
    return {reinterpret_cast<const char*>(coap_opt_value(path)), coap_opt_length(path)};
  }

  // Adds Block2, an Echo value when given, and the block's bytes to `pdu`
  // (options go before the payload); false when out of room.
  static bool addBlock(coap_pdu_t* pdu, const std::string& body, unsigned num, unsigned szx,
                       const coap::EchoChallenge::Value* echo = nullptr) {
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

  // The largest block (SZX) whose answer stays within `limit` beside
  // `overhead` bytes of header, token and options; at least 16 bytes.
  static unsigned blockSizeFor(std::size_t limit, std::size_t overhead) {
    unsigned szx = 0;
    while (szx < 6 && overhead + (std::size_t{16} << (szx + 1)) <= limit) ++szx;
    return szx;
  }

  void rememberDownload(Exchange& exchange, const coap_pdu_t* request, coap_pdu_code_t code) {
    std::string id = transferId(exchange.key, functionOf(request));
    downloads_.erase(id);
    if (!exchange.sharedBody) exchange.sharedBody = std::make_shared<const std::string>(std::move(exchange.body));
    // Bounded in count and bytes: the least recently used goes first (its
    // client gets 4.00 for its next block and has to call again).
    const auto held = [this] {
      std::size_t bytes = 0;
      for (const auto& [key, download] : downloads_) bytes += download.body->size();
      return bytes;
    };
    while (!downloads_.empty() &&
           (downloads_.size() >= kMaxDownloads || held() + exchange.sharedBody->size() > kMaxDownloadBytes)) {
      downloads_.erase(std::min_element(downloads_.begin(), downloads_.end(), [](const auto& a, const auto& b) {
        return a.second.touched < b.second.touched;
      }));
    }
    const Clock::time_point now = Clock::now();
    downloads_[std::move(id)] = Download{exchange.sharedBody, code, now};
    armSweep(now + kUploadIdle);
  }

  // A later block of a Download; false when there is none for this peer.
  bool answerNextBlock(const ExchangeKey& key, std::string_view name, const coap_block_b_t& block,
                       coap_pdu_t* response) {
    auto it = downloads_.find(transferId(key, name));
    if (it == downloads_.end()) return false;
    coap_pdu_set_code(response, it->second.code);
    it->second.touched = Clock::now();
    const std::string& body = *it->second.body;
    if (!addBlock(response, body, block.num, block.szx)) return false;
    if ((static_cast<std::size_t>(block.num) + 1) << (block.szx + 4) >= body.size()) downloads_.erase(it);
    return true;
  }

  static void onRequest(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
                        const coap_string_t* query, coap_pdu_t* response) noexcept {
    Core* core = coreOf(session);
    if (core == nullptr || core->stopped_) {
      sendNothing(response);
      return;
    }
    if (coap_async_t* async = coap_find_async(session, coap_pdu_get_token(request)); async != nullptr) {
      core->answerTriggered(resource, session, request, query, response, async);
    } else {
      core->handleRequest(resource, session, request, query, response);
    }
  }

  void handleRequest(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
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

    if (suppressed(noResponse, COAP_RESPONSE_CODE_CONTENT)) {
      // The client does not want the result: nothing to wait for.
      ++stats_.calls;
      const CallStatus status = invoker_.invokeDetached(std::move(invocation));
      if (status != CallStatus::ok) {
        // Still worth saying unless that class is suppressed too (libcoap's
        // no_response() then turns it into an empty ACK or nothing).
        answerError(response, codeFor(status), status == CallStatus::notFound ? "no such function" : toString(status));
        return;
      }
      const ExchangeRef ref = table_.insert(key, Clock::now());
      Exchange& exchange = *table_.get(ref);
      exchange.confirmable = confirmable;
      exchange.acked = true;
      table_.markDone(exchange, Clock::now());
      if (confirmable) {
        sendEmptyAck(response);
      } else {
        sendNothing(response);
      }
      return;
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
    asio::co_spawn(executor_, invoker_.invoke(std::move(invocation)), CallDone{weak_from_this(), ref});
    // Nothing goes out now: no ACK yet, so that the answer can still ride in it.
    sendNothing(response);
  }

  void rejectTooLarge(coap_pdu_t* response) {
    ++stats_.rejected;
    std::uint8_t buf[4];
    coap_add_option(response, COAP_OPTION_SIZE1,
                    coap_encode_var_safe(buf, sizeof buf, static_cast<unsigned>(options_.maxPayloadBytes)), buf);
    answerError(response, COAP_RESPONSE_CODE_REQUEST_TOO_LARGE,
                "payload larger than " + std::to_string(options_.maxPayloadBytes) + " bytes");
  }

  // RFC 7959 Block1 reassembly (why not libcoap's: see start()). Blocks are
  // matched by peer and function name (RFC 7959 2.4: the request URI), not by
  // token, which clients change per block. Returns true with the whole body
  // once the last block is in; otherwise `response` holds the answer (2.31
  // Continue, or an error).
  bool collectBlock(const ExchangeKey& key, std::string_view name, const coap_pdu_t* request,
                    const coap_block_b_t& block, const std::uint8_t* data, std::size_t length,
                    coap_pdu_t* response, std::string& body) {
    std::string id = transferId(key, name);
    const std::size_t chunk = std::size_t{1} << (block.szx + 4);
    const std::size_t offset = static_cast<std::size_t>(block.num) * chunk;
    auto it = uploads_.find(id);
    if (block.num == 0) {
      coap_opt_iterator_t optIt;
      if (const coap_opt_t* size1 = coap_check_option(request, COAP_OPTION_SIZE1, &optIt);
          size1 != nullptr &&
          coap_decode_var_bytes(coap_opt_value(size1), coap_opt_length(size1)) > options_.maxPayloadBytes) {
        if (it != uploads_.end()) dropUpload(it);
        rejectTooLarge(response);
        return false;
      }
      if (it == uploads_.end()) {
        if (uploads_.size() >= options_.maxUploads) {
          ++stats_.rejected;
          answerError(response, COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE, "too many uploads in progress");
          return false;
        }
        it = uploads_.emplace(std::move(id), Upload{}).first;
      }
      uploadBytes_ -= it->second.body.size();
      it->second.body.clear();
    } else if (it == uploads_.end()) {
      ++stats_.rejected;
      answerError(response, COAP_RESPONSE_CODE_INCOMPLETE, "block-wise upload must start at block 0");
      return false;
    }
    Upload& upload = it->second;
    upload.touched = Clock::now();
    const bool repeat = offset + length == upload.body.size() && block.num != 0 && block.m;
    if (!repeat) {
      if (offset != upload.body.size() || (block.m && length != chunk)) {
        dropUpload(it);
        ++stats_.rejected;
        answerError(response, COAP_RESPONSE_CODE_INCOMPLETE, "block-wise upload out of order");
        return false;
      }
      if (upload.body.size() + length > options_.maxPayloadBytes) {
        dropUpload(it);
        rejectTooLarge(response);
        return false;
      }
      // All uploads together hold at most maxUploadBytes: this one gives
      // way (the client may start it again later), the others go on.
      if (length > options_.maxUploadBytes - uploadBytes_) {
        dropUpload(it);
        ++stats_.rejected;
        answerError(response, COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE, "too many bytes in uploads in progress");
        return false;
      }
      upload.body.append(reinterpret_cast<const char*>(data), length);
      uploadBytes_ += length;
    }
    if (block.m) {
      // libcoap has usually put the Block1 answer in already (not for a block
      // it did not expect); there must be exactly one.
      coap_opt_iterator_t optIt;
      if (coap_check_option(response, COAP_OPTION_BLOCK1, &optIt) == nullptr) {
        std::uint8_t buf[4];
        coap_add_option(response, COAP_OPTION_BLOCK1,
                        coap_encode_var_safe(buf, sizeof buf, (block.num << 4) | 0x08 | block.szx), buf);
      }
      coap_pdu_set_code(response, COAP_RESPONSE_CODE_CONTINUE);
      armSweep(upload.touched + kUploadIdle);
      return false;
    }
    uploadBytes_ -= upload.body.size();
    body = std::move(upload.body);
    uploads_.erase(it);
    return true;
  }

  void dropUpload(std::map<std::string, Upload>::iterator it) {
    uploadBytes_ -= it->second.body.size();
    uploads_.erase(it);
  }

  void answerDuplicate(Exchange& exchange, coap_resource_t* resource, coap_session_t* session,
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

  // ---- results -----------------------------------------------------------------

  void onCallDone(ExchangeRef ref, std::exception_ptr error, CallResult result) {
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

  void deliver(Exchange& exchange) {
    if (!answerDirectly(exchange)) queueAnswer(table_.refOf(exchange));
  }

  // An answer that fits one datagram needs no block-wise state, so it is
  // built and sent right here with coap_send(): no async, no second pass
  // through handle_request(), no coap_io_prepare_epoll() (which walks every
  // session). Larger answers, or ones the client asked to get in blocks, take
  // the async path (flush) because coap_add_data_large_response() only works
  // inside a request handler. Returns false for those.
  bool answerDirectly(Exchange& exchange) {
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
    const bool offerEcho = exchange.answerLimit != 0 && sent + 2 + coap::EchoChallenge::kBytes <= exchange.answerLimit;
    // (A MAC costs about a microsecond: only made when it goes out.)
    const coap::EchoChallenge::Value echo =
        offerEcho ? echo_.make(exchange.key, Clock::now()) : coap::EchoChallenge::Value{};
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
  static coap_pdu_type_t separateType(const Exchange& exchange) {
    return exchange.confirmable && exchange.answerLimit == 0 ? COAP_MESSAGE_CON : COAP_MESSAGE_NON;
  }

  // RFC 7959 2.3: the final answer to an upload names its last block.
  static bool addBlock1Echo(const Exchange& exchange, coap_pdu_t* pdu) {
    if (exchange.block1 < 0) return true;
    std::uint8_t buf[4];
    return coap_add_option(pdu, COAP_OPTION_BLOCK1,
                           coap_encode_var_safe(buf, sizeof buf, static_cast<unsigned>(exchange.block1)), buf) != 0;
  }

  void queueAnswer(ExchangeRef ref) {
    ready_.push_back(ref);
    if (flushPosted_) return;
    flushPosted_ = true;
    // Batched: one coap_io_prepare_epoll() answers every call that finished
    // in this turn of the loop.
    asio::post(executor_, [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->flush();
    });
  }

  void flush() {
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
      refreshLibcoapTimer();
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

  void answerTriggered(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
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
  void fillAnswer(Exchange& exchange, coap_resource_t* resource, coap_session_t* session,
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
    coap_add_data_large_response(resourceFor(request, resource), session, request, response, query,
                                 exchange.contentFormat < 0 ? COAP_MEDIATYPE_TEXT_PLAIN
                                                            : static_cast<std::uint16_t>(exchange.contentFormat),
                                 -1, 0,
                                 (*holder)->size(), reinterpret_cast<const std::uint8_t*>((*holder)->data()),
                                 releaseSharedBody, holder);
    // coap_add_data_large_response() sets 5.00 itself when it fails.
    if (coap_pdu_get_code(response) != COAP_RESPONSE_CODE_INTERNAL_ERROR) coap_pdu_set_code(response, code);
  }

  void finish(Exchange& exchange) {
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

  // ---- timers: piggy-back window, call deadlines, dedup expiry ------------------

  void armSweep(Clock::time_point due) {
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

  void sweep() {
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
    Clock::time_point oldestUpload = Clock::time_point::max();
    for (auto it = uploads_.begin(); it != uploads_.end();) {
      if (it->second.touched + kUploadIdle <= now) {
        uploadBytes_ -= it->second.body.size();
        it = uploads_.erase(it);
      } else {
        oldestUpload = std::min(oldestUpload, it->second.touched);
        ++it;
      }
    }
    for (auto it = downloads_.begin(); it != downloads_.end();) {
      if (it->second.touched + kUploadIdle <= now) {
        it = downloads_.erase(it);
      } else {
        oldestUpload = std::min(oldestUpload, it->second.touched);
        ++it;
      }
    }
    if (sentAck) refreshLibcoapTimer();

    Clock::time_point next = Clock::time_point::max();
    if (!ackQueue_.empty()) next = std::min(next, ackQueue_.front().at);
    if (table_.inFlight() > 0) next = std::min(next, now + deadlineScan_);
    if (oldestUpload != Clock::time_point::max()) next = std::min(next, oldestUpload + kUploadIdle);
    Clock::time_point expiry;
    if (table_.nextExpiry(expiry)) next = std::min(next, std::max(expiry, now + std::chrono::milliseconds(100)));
    if (next != Clock::time_point::max()) armSweep(next);
  }

  asio::any_io_executor executor_;
  Invoker& invoker_;
  CoapOptions options_;
  coap_context_t* context_ = nullptr;
  std::uint16_t port_ = 0;
  bool stopped_ = false;
  bool draining_ = false;  // new requests get 5.03

  asio::posix::stream_descriptor fd_;
  asio::steady_timer coapTimer_;
  bool coapTimerArmed_ = false;
  Clock::time_point coapTimerDue_{};
  Clock::time_point lastTimerRefresh_{};
  asio::steady_timer sweepTimer_;
  bool sweepArmed_ = false;
  Clock::time_point sweepDue_{};
  Clock::time_point lastDeadlineScan_{};

  ExchangeTable table_;
  coap::EchoChallenge echo_;
  Clock::duration deadlineScan_;
  std::deque<Due> ackQueue_;
  std::map<std::string, Upload> uploads_;
  std::map<std::string, Download> downloads_;
  std::size_t uploadBytes_ = 0;  // of every upload in uploads_
  std::map<std::string, coap_resource_t*, std::less<>> named_;  // owned by context_
  std::vector<ExchangeRef> ready_;
  std::vector<ExchangeRef> batch_;
  bool flushPosted_ = false;
  CoapStats stats_;
};

class CoapFrontendImpl final : public CoapFrontend {
 public:
  explicit CoapFrontendImpl(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  ~CoapFrontendImpl() override { core_->stop(); }

  std::uint16_t port() const override { return core_->port(); }
  void stop() override { core_->stop(); }
  void stopAccepting() override { core_->stopAccepting(); }
  std::size_t callsInFlight() const override { return core_->callsInFlight(); }
  bool delivering() const override { return core_->delivering(); }
  void cutShort(std::string_view reason) override { core_->cutShort(reason); }
  CoapStats stats() const override { return core_->stats(); }

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace

boost::system::result<std::unique_ptr<CoapFrontend>, std::string> CoapFrontend::create(
    boost::asio::any_io_executor executor, Invoker& invoker, CoapOptions options) {
  auto core = std::make_shared<Core>(std::move(executor), invoker, std::move(options));
  if (auto started = core->start(); !started) return started.error();
  return std::unique_ptr<CoapFrontend>(std::make_unique<CoapFrontendImpl>(std::move(core)));
}

}  // namespace tinyfaas
