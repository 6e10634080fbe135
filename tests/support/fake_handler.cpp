#include "fake_handler.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "core/async.hpp"

namespace tinyfaas::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;

struct FakeHandler::Connection {
  explicit Connection(local::socket s) : socket(std::move(s)) {}
  local::socket socket;
  bool idle = true;
};

FakeHandler::FakeHandler(asio::any_io_executor executor, std::filesystem::path socket, std::string name)
    : executor_(executor), acceptor_(executor), socket_(std::move(socket)), name_(std::move(name)), wake_(executor) {
  // Never re-armed: cancel() wakes every waiter and later waits still pend.
  wake_.expires_at(asio::steady_timer::time_point::max());
}

FakeHandler::~FakeHandler() = default;

std::shared_ptr<FakeHandler> FakeHandler::start(asio::any_io_executor executor, std::filesystem::path socket,
                                                std::string name) {
  std::shared_ptr<FakeHandler> handler(new FakeHandler(executor, std::move(socket), std::move(name)));
  std::error_code ignored;
  std::filesystem::remove(handler->socket_, ignored);
  const local::endpoint endpoint(handler->socket_.string());
  handler->acceptor_.open(endpoint.protocol());
  handler->acceptor_.bind(endpoint);
  handler->acceptor_.listen();
  asio::co_spawn(
      executor, [h = handler]() { return h->acceptLoop(); }, asio::detached);
  return handler;
}

asio::awaitable<void> FakeHandler::acceptLoop() {
  auto self = shared_from_this();
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(useTuple);
    if (ec) co_return;
    ++accepted_;
    auto connection = std::make_shared<Connection>(std::move(socket));
    connections_.insert(connection);
    asio::co_spawn(executor_, serve(connection), asio::detached);
  }
}

asio::awaitable<void> FakeHandler::waitWhile(bool (FakeHandler::*condition)() const) {
  while ((this->*condition)()) co_await wake_.async_wait(useTuple);
}

asio::awaitable<void> FakeHandler::serve(std::shared_ptr<Connection> connection) {
  auto self = shared_from_this();
  beast::flat_buffer buffer;
  for (;;) {
    connection->idle = true;
    http::request_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    auto [readError, n] = co_await http::async_read(connection->socket, buffer, parser, useTuple);
    (void)n;
    connection->idle = false;
    if (readError || stopped_) break;
    auto request = parser.release();
    FakeRequest recorded{std::string(request.method_string()), std::string(request.target()), {}, request.body()};
    for (const auto& field : request) recorded.headers.emplace_back(field.name_string(), field.value());
    requests_.push_back(std::move(recorded));

    http::response<http::string_body> response{http::status::ok, 11};
    if (request.target() == "/health") {
      ++healthChecks_;
      response.result(healthy ? http::status::ok : http::status::service_unavailable);
      response.body() = healthy ? "OK" : "not yet";
    } else {
      ++fnCalls_;
      ++inFlight_;
      struct Leave {
        std::size_t& count;
        ~Leave() { --count; }
      } leave{inFlight_};
      if (mode == Mode::hangUp) break;
      if (mode == Mode::never) {
        co_await waitWhile(&FakeHandler::running);
        break;
      }
      if (mode == Mode::gated) {
        co_await waitWhile(&FakeHandler::gateClosed);
        if (stopped_) break;
      }
      response.result(status);
      for (const auto& [name, value] : responseHeaders) response.insert(name, value);
      if (responseBytes > 0)
        response.body() = std::string(responseBytes, 'x');
      else if (body.empty() && echo)
        response.body() = request.body();
      else
        response.body() = body;
    }
    response.keep_alive(request.keep_alive() && !closeAfterAnswer);
    response.prepare_payload();
    auto [writeError, written] = co_await http::async_write(connection->socket, response, useTuple);
    (void)written;
    if (writeError || !response.keep_alive()) break;
  }
  boost::system::error_code ignored;
  connection->socket.close(ignored);
  connections_.erase(connection);
}

void FakeHandler::openGate() {
  gateOpen_ = true;
  wake_.cancel();
}

void FakeHandler::closeIdleConnections() {
  for (const auto& connection : connections_) {
    boost::system::error_code ignored;
    if (connection->idle) connection->socket.close(ignored);
  }
}

void FakeHandler::stop() {
  if (stopped_) return;
  stopped_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (const auto& connection : connections_) connection->socket.close(ignored);
  wake_.cancel();
  std::error_code removeError;
  std::filesystem::remove(socket_, removeError);
}

}  // namespace tinyfaas::test
