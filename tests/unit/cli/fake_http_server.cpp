#include "fake_http_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>

namespace tinyfaas::cli::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

}  // namespace

FakeHttpServer::FakeHttpServer(unsigned status, std::string body, Behaviour behaviour,
                               std::vector<std::pair<std::string, std::string>> headers)
    : acceptor_(context_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
      status_(status),
      body_(std::move(body)),
      behaviour_(behaviour),
      headers_(std::move(headers)) {
  port_ = acceptor_.local_endpoint().port();

  asio::co_spawn(context_, acceptLoop(), asio::detached);
  thread_ = std::thread([this] { context_.run(); });
}

asio::awaitable<void> FakeHttpServer::acceptLoop() {
  for (;;) {
    auto [error, socket] = co_await acceptor_.async_accept(kNoThrow);
    if (error) co_return;
    asio::co_spawn(context_, serve(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> FakeHttpServer::serve(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(256 * 1024 * 1024);
    auto [readError, n] = co_await http::async_read(stream, buffer, parser, kNoThrow);
    if (readError) co_return;
    const auto& request = parser.get();
    RecordedRequest recorded;
    recorded.method = std::string(request.method_string());
    recorded.target = std::string(request.target());
    for (const auto& field : request) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      recorded.headers[name] = std::string(field.value());
    }
    recorded.body = request.body();
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(std::move(recorded));
    }
    if (behaviour_ == Behaviour::hangUp) co_return;
    if (behaviour_ == Behaviour::silent) {
      // Hold the connection open until the client gives up.
      char byte = 0;
      co_await stream.async_read_some(asio::buffer(&byte, 1), kNoThrow);
      co_return;
    }
    http::response<http::string_body> reply{static_cast<http::status>(status_), 11};
    reply.set(http::field::content_type, "text/plain");
    for (const auto& header : headers_) reply.set(header.first, header.second);
    reply.body() = body_;
    reply.keep_alive(request.keep_alive());
    reply.prepare_payload();
    auto [writeError, written] = co_await http::async_write(stream, reply, kNoThrow);
    if (writeError || !reply.keep_alive()) co_return;
  }
}

FakeHttpServer::~FakeHttpServer() {
  context_.stop();
  thread_.join();
}

std::vector<RecordedRequest> FakeHttpServer::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

std::uint16_t unusedPort() {
  asio::io_context context;
  tcp::acceptor acceptor(context, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

}  // namespace tinyfaas::cli::test
