#include "frontend/coap/libcoap_loop.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <utility>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "frontend/listen_address.hpp"

namespace tinyfaas::coap {
namespace {

namespace asio = boost::asio;

// Datagrams handled before the loop gets a turn for other work (completions,
// timers); the rest are drained right after.
constexpr int kDrainBatch = 64;
// How stale the steady timer for libcoap's schedule may get while datagrams
// keep arriving (see drain()).
constexpr auto kTimerRefresh = std::chrono::milliseconds(50);

}  // namespace

LibcoapLoop::LibcoapLoop(asio::any_io_executor executor) : executor_(executor), fd_(executor), timer_(executor) {}

boost::system::result<void, std::string> LibcoapLoop::open(const CoapOptions& options, void* appData) {
  auto parsed = parseListenAddress("CoAP", options.address, options.port);
  if (!parsed) return parsed.error();
  const asio::ip::address& ip = parsed->ip;
  const std::string& where = parsed->where;

  coap_address_t listen;
  coap_address_init(&listen);
  if (ip.is_v4()) {
    listen.addr.sin.sin_family = AF_INET;
    listen.addr.sin.sin_port = htons(options.port);
    const auto bytes = ip.to_v4().to_bytes();
    std::memcpy(&listen.addr.sin.sin_addr, bytes.data(), bytes.size());
    listen.size = sizeof(sockaddr_in);
  } else {
    listen.addr.sin6.sin6_family = AF_INET6;
    listen.addr.sin6.sin6_port = htons(options.port);
    const auto bytes = ip.to_v6().to_bytes();
    std::memcpy(&listen.addr.sin6.sin6_addr, bytes.data(), bytes.size());
    listen.addr.sin6.sin6_scope_id = ip.to_v6().scope_id();
    listen.size = sizeof(sockaddr_in6);
  }

  context_ = coap_new_context(nullptr);
  if (context_ == nullptr) return "cannot create the CoAP context for " + where;
  coap_set_app_data(context_, appData);
  // libcoap sends large answers block by block (Block2) for us. Uploads
  // (Block1) come to the handler block by block and UploadJoiner joins them
  // (why not libcoap: upload_joiner.hpp).
  coap_context_set_block_mode(context_, COAP_BLOCK_USE_LIBCOAP);
  coap_context_set_max_idle_sessions(context_, options.maxIdleSessions);

  errno = 0;
  coap_endpoint_t* endpoint = coap_new_endpoint(context_, &listen, COAP_PROTO_UDP);
  if (endpoint == nullptr) {
    const int error = errno;
    freeContext();
    return "cannot bind CoAP on UDP " + where + (error != 0 ? std::string(": ") + std::strerror(error) : "");
  }
  port_ = boundPort(endpoint);
  tuneEndpointSocket(ip.is_v6() ? AF_INET6 : AF_INET, options.socketBufferBytes);
  return {};
}

boost::system::result<void, std::string> LibcoapLoop::watch() {
  const int coapFd = coap_context_get_coap_fd(context_);
  if (coapFd < 0) {
    freeContext();
    return std::string("libcoap was built without epoll support; cannot join its loop");
  }
  boost::system::error_code ec;
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

void LibcoapLoop::stop() {
  if (stopped_) return;
  stopped_ = true;
  timer_.cancel();
  if (fd_.is_open()) {
    // libcoap owns (and closes) its epoll fd.
    (void)fd_.release();
  }
  freeContext();
}

std::uint16_t LibcoapLoop::boundPort(coap_endpoint_t* endpoint) {
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
void LibcoapLoop::tuneEndpointSocket(int family, std::size_t bufferBytes) const {
  const int bytes = static_cast<int>(bufferBytes);
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

void LibcoapLoop::freeContext() {
  if (context_ == nullptr) return;
  coap_free_context(context_);
  context_ = nullptr;
}

void LibcoapLoop::waitReadable() {
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
void LibcoapLoop::drain() {
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
  if (Clock::now() - lastRefresh_ >= kTimerRefresh) refreshTimer();
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
void LibcoapLoop::refreshTimer() {
  coap_tick_t now;
  coap_ticks(&now);
  const unsigned ms = coap_io_prepare_epoll(context_, now);
  lastRefresh_ = Clock::now();
  if (ms == 0) return;  // nothing scheduled
  const Clock::time_point due = lastRefresh_ + std::chrono::milliseconds(ms);
  if (timerArmed_ && timerDue_ <= due) return;
  timerArmed_ = true;
  timerDue_ = due;
  timer_.expires_at(due);
  timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    if (ec) return;  // re-armed earlier, or stopped
    auto self = weak.lock();
    if (!self || self->stopped_) return;
    self->timerArmed_ = false;
    self->refreshTimer();
  });
}

}  // namespace tinyfaas::coap
