#include "fake_handler.hpp"

#include <algorithm>
#include <cstdint>
#include <string_view>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/write.hpp>
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
  bool framed = false;  // opened with the framing's preface
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

namespace {

// The framing of proxy/handler_frame.hpp, read and written here on its own
// (not with the proxy's code) so that a test can catch the proxy's mistakes.
constexpr std::string_view kPreface{"\0TF2", 4};

std::uint32_t bigEndian(const char* at, std::size_t bytes) {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < bytes; ++i) value = (value << 8) | static_cast<unsigned char>(at[i]);
  return value;
}

void appendBigEndian(std::string& out, std::uint32_t value, std::size_t bytes) {
  for (std::size_t i = bytes; i-- > 0;) out += static_cast<char>((value >> (8 * i)) & 0xFF);
}

std::string_view contents(const beast::flat_buffer& buffer) {
  return {static_cast<const char*>(buffer.data().data()), buffer.size()};
}

// Reads until `buffer` holds at least `bytes`.
asio::awaitable<bool> readAtLeast(local::socket& socket, beast::flat_buffer& buffer, std::size_t bytes) {
  while (buffer.size() < bytes) {
    auto [ec, n] =
        co_await socket.async_read_some(buffer.prepare(std::max<std::size_t>(bytes - buffer.size(), 4096)), useTuple);
    if (ec) co_return false;
    buffer.commit(n);
  }
  co_return true;
}

}  // namespace

asio::awaitable<std::optional<FakeHandler::Call>> FakeHandler::readCall(Connection& connection,
                                                                        beast::flat_buffer& buffer) {
  if (connection.framed) {
    if (!co_await readAtLeast(connection.socket, buffer, 8)) co_return std::nullopt;
    const std::size_t blockBytes = bigEndian(contents(buffer).data(), 4);
    const std::size_t bodyBytes = bigEndian(contents(buffer).data() + 4, 4);
    if (!co_await readAtLeast(connection.socket, buffer, 8 + blockBytes + bodyBytes)) co_return std::nullopt;
    const std::string_view frame = contents(buffer);
    Call call{{"POST", "/fn", {}, std::string(frame.substr(8 + blockBytes, bodyBytes))}, true};
    for (std::size_t at = 8; at < 8 + blockBytes;) {
      const std::size_t nameBytes = bigEndian(frame.data() + at, 2);
      const std::string name(frame.substr(at + 2, nameBytes));
      at += 2 + nameBytes;
      const std::size_t valueBytes = bigEndian(frame.data() + at, 4);
      call.request.headers.emplace_back(name, std::string(frame.substr(at + 4, valueBytes)));
      at += 4 + valueBytes;
    }
    buffer.consume(8 + blockBytes + bodyBytes);
    co_return call;
  }
  http::request_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  auto [readError, n] = co_await http::async_read(connection.socket, buffer, parser, useTuple);
  (void)n;
  if (readError) co_return std::nullopt;
  auto request = parser.release();
  Call call{{std::string(request.method_string()), std::string(request.target()), {}, request.body()},
            request.keep_alive()};
  for (const auto& field : request) call.request.headers.emplace_back(field.name_string(), field.value());
  co_return call;
}

asio::awaitable<void> FakeHandler::serve(std::shared_ptr<Connection> connection) {
  auto self = shared_from_this();
  beast::flat_buffer buffer;
  // As the shipped handlers do: a connection that opens with the preface
  // speaks frames, any other HTTP/1.1.
  if (!co_await readAtLeast(connection->socket, buffer, 1)) {
    connections_.erase(connection);
    co_return;
  }
  if (contents(buffer).front() == kPreface.front()) {
    // (The co_await on a line of its own: GCC 12 miscompiles one inside &&.)
    const bool whole = co_await readAtLeast(connection->socket, buffer, kPreface.size());
    connection->framed = whole && contents(buffer).substr(0, kPreface.size()) == kPreface;
    if (!connection->framed) {
      connections_.erase(connection);
      co_return;
    }
    buffer.consume(kPreface.size());
  }
  for (;;) {
    connection->idle = true;
    auto call = co_await readCall(*connection, buffer);
    connection->idle = false;
    if (!call || stopped_) break;
    requests_.push_back(call->request);

    unsigned answerStatus = 200;
    std::vector<std::pair<std::string, std::string>> answerHeaders;
    std::string answerBody;
    if (call->request.target == "/health") {
      ++healthChecks_;
      answerStatus = healthy ? 200 : 503;
      answerBody = healthy ? "OK" : "not yet";
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
      answerStatus = status;
      answerHeaders = responseHeaders;
      if (responseBytes > 0)
        answerBody = std::string(responseBytes, 'x');
      else if (body.empty() && echo)
        answerBody = call->request.body;
      else
        answerBody = body;
    }
    const bool keepAlive = call->keepAlive && !closeAfterAnswer;
    boost::system::error_code writeError;
    if (connection->framed) {
      std::string block;
      for (const auto& [name, value] : answerHeaders) {
        appendBigEndian(block, static_cast<std::uint32_t>(name.size()), 2);
        block += name;
        appendBigEndian(block, static_cast<std::uint32_t>(value.size()), 4);
        block += value;
      }
      std::string frame;
      appendBigEndian(frame, answerStatus, 4);
      appendBigEndian(frame, static_cast<std::uint32_t>(block.size()), 4);
      appendBigEndian(frame, static_cast<std::uint32_t>(answerBody.size()), 4);
      frame += block;
      frame += answerBody;
      auto [ec, written] = co_await asio::async_write(connection->socket, asio::buffer(frame), useTuple);
      (void)written;
      writeError = ec;
    } else {
      http::response<http::string_body> response{static_cast<http::status>(answerStatus), 11};
      for (const auto& [name, value] : answerHeaders) response.insert(name, value);
      response.body() = std::move(answerBody);
      response.keep_alive(keepAlive);
      response.prepare_payload();
      auto [ec, written] = co_await http::async_write(connection->socket, response, useTuple);
      (void)written;
      writeError = ec;
    }
    if (writeError || !keepAlive) break;
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
