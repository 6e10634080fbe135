#include "fake_servers.hpp"

#include "coap_pdu.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <coap3/coap.h>

#include <array>
#include <vector>

namespace tinyfaas::bench::testing {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

template <class Socket>
asio::awaitable<void> serveConnection(Socket socket, FakeHttpServer::Mode mode, std::atomic<std::uint64_t>& requests) {
  beast::flat_buffer buffer;
  for (;;) {
    http::request<http::string_body> request;
    auto [ec, n] = co_await http::async_read(socket, buffer, request, kTuple);
    if (ec) co_return;
    ++requests;
    if (mode == FakeHttpServer::Mode::never) continue;
    http::response<http::string_body> response{
        mode == FakeHttpServer::Mode::status500 ? http::status::internal_server_error : http::status::ok, 11};
    response.body() = request.body();
    response.keep_alive(mode != FakeHttpServer::Mode::answerAndClose);
    response.prepare_payload();
    auto [wec, m] = co_await http::async_write(socket, response, kTuple);
    if (wec || mode == FakeHttpServer::Mode::answerAndClose) co_return;
  }
}

template <class Acceptor>
asio::awaitable<void> acceptLoop(Acceptor acceptor, FakeHttpServer::Mode mode, std::atomic<std::uint64_t>& requests,
                                 std::atomic<std::uint64_t>& connections) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kTuple);
    if (ec) co_return;
    ++connections;
    asio::co_spawn(acceptor.get_executor(), serveConnection(std::move(socket), mode, requests), asio::detached);
  }
}

std::string joinedUriPath(const coap_pdu_t* pdu) {
  std::string path;
  coap_opt_iterator_t it;
  coap_opt_filter_t filter;
  coap_option_filter_clear(&filter);
  coap_option_filter_set(&filter, COAP_OPTION_URI_PATH);
  if (coap_option_iterator_init(pdu, &it, &filter) == nullptr) return path;
  while (const coap_opt_t* option = coap_option_next(&it)) {
    if (!path.empty()) path += '/';
    path.append(reinterpret_cast<const char*>(coap_opt_value(option)), coap_opt_length(option));
  }
  return path;
}

}  // namespace

FakeHttpServer::FakeHttpServer(Mode mode, std::string unixPath) : mode_(mode) {
  if (unixPath.empty()) {
    asio::ip::tcp::acceptor acceptor(io_, {asio::ip::make_address("127.0.0.1"), 0});
    port_ = acceptor.local_endpoint().port();
    asio::co_spawn(io_, acceptLoop(std::move(acceptor), mode_, requests_, connections_), asio::detached);
  } else {
    ::unlink(unixPath.c_str());
    asio::local::stream_protocol::acceptor acceptor(io_, asio::local::stream_protocol::endpoint(unixPath));
    asio::co_spawn(io_, acceptLoop(std::move(acceptor), mode_, requests_, connections_), asio::detached);
  }
  thread_ = std::thread([this] { io_.run(); });
}

FakeHttpServer::~FakeHttpServer() {
  io_.stop();
  thread_.join();
}

FakeCoapServer::FakeCoapServer(Mode mode) : mode_(mode) {
  initCoapPdu();
  auto socket =
      std::make_shared<asio::ip::udp::socket>(io_, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  port_ = socket->local_endpoint().port();
  auto loop = [this, socket]() -> asio::awaitable<void> {
    std::vector<std::uint8_t> buffer(65536);
    std::uint16_t nextId = 0x7000;
    for (;;) {
      asio::ip::udp::endpoint peer;
      auto [ec, n] = co_await socket->async_receive_from(asio::buffer(buffer), peer, kTuple);
      if (ec) co_return;
      // Parsed with libcoap directly rather than parseCoapMessage: an
      // independent reading of what the load generator encoded.
      coap_pdu_t* pdu = coap_pdu_init(COAP_MESSAGE_CON, COAP_EMPTY_CODE, 0, n);
      if (pdu == nullptr) continue;
      if (coap_pdu_parse(COAP_PROTO_UDP, buffer.data(), n, pdu) == 0) {
        coap_delete_pdu(pdu);
        continue;
      }
      const auto type = static_cast<CoapType>(coap_pdu_get_type(pdu));
      const auto code = static_cast<std::uint8_t>(coap_pdu_get_code(pdu));
      const auto mid = static_cast<std::uint16_t>(coap_pdu_get_mid(pdu));
      const coap_bin_const_t tokenView = coap_pdu_get_token(pdu);
      const std::vector<std::uint8_t> token(tokenView.s, tokenView.s + tokenView.length);
      size_t length = 0;
      const std::uint8_t* data = nullptr;
      std::string payload;
      if (coap_get_data(pdu, &length, &data) != 0 && data != nullptr)
        payload.assign(reinterpret_cast<const char*>(data), length);
      const std::string path = joinedUriPath(pdu);
      coap_delete_pdu(pdu);

      if (code == 0) {
        if (type == CoapType::ack) ++acks_;
        continue;
      }
      ++requests_;
      {
        std::lock_guard lock(mutex_);
        lastPath_ = path;
        lastPayload_ = payload;
      }
      auto send = [&](const std::optional<std::string>& datagram) -> asio::awaitable<void> {
        if (datagram) co_await socket->async_send_to(asio::buffer(*datagram), peer, kTuple);
      };
      CoapRequestSpec answer;
      answer.payload = payload;
      switch (mode_) {
        case Mode::silent: break;
        case Mode::piggybacked:
        case Mode::notFound:
          answer.code = mode_ == Mode::notFound ? 0x84 : 0x45;
          answer.type = type == CoapType::con ? CoapType::ack : CoapType::non;
          co_await send(encodeCoapRequest(answer, type == CoapType::con ? mid : nextId++, token));
          break;
        case Mode::separate:
          co_await send(encodeCoapEmpty(CoapType::ack, mid));
          answer.code = 0x45;
          answer.type = CoapType::con;
          co_await send(encodeCoapRequest(answer, nextId++, token));
          break;
      }
    }
  };
  asio::co_spawn(io_, loop, asio::detached);
  thread_ = std::thread([this] { io_.run(); });
}

FakeCoapServer::~FakeCoapServer() {
  io_.stop();
  thread_.join();
}

std::string FakeCoapServer::lastPath() const {
  std::lock_guard lock(mutex_);
  return lastPath_;
}

std::string FakeCoapServer::lastPayload() const {
  std::lock_guard lock(mutex_);
  return lastPayload_;
}

}  // namespace tinyfaas::bench::testing
