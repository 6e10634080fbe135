#include "fake_engine.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "core/async.hpp"

namespace tinyfaas::test {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using local = asio::local::stream_protocol;

std::shared_ptr<FakeEngine> FakeEngine::start(asio::any_io_executor executor, std::filesystem::path socket) {
  std::shared_ptr<FakeEngine> engine(new FakeEngine(std::move(executor), std::move(socket)));
  engine->accept();
  return engine;
}

FakeEngine::FakeEngine(asio::any_io_executor executor, std::filesystem::path socket)
    : executor_(executor), path_(std::move(socket)), acceptor_(executor) {
  std::filesystem::remove(path_);
  acceptor_.open(local());
  acceptor_.bind(local::endpoint(path_.string()));
  acceptor_.listen();
}

FakeEngine::~FakeEngine() { stop(); }

void FakeEngine::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (auto& weak : held_) {
    if (auto socket = weak.lock()) socket->close(ignored);
  }
  std::error_code removed;
  std::filesystem::remove(path_, removed);
}

void FakeEngine::answer(unsigned status, const std::string& body, const std::string& contentType) {
  script(EngineExchange{{rawResponse(status, body, contentType)}, {}, false, false});
}

void FakeEngine::accept() {
  acceptor_.async_accept([self = shared_from_this()](boost::system::error_code ec, local::socket socket) {
    if (ec) return;
    asio::co_spawn(self->executor_, self->serve(std::move(socket)), asio::detached);
    self->accept();
  });
}

asio::awaitable<void> FakeEngine::serve(local::socket socket) {
  auto self = shared_from_this();
  boost::beast::flat_buffer buffer;
  http::request_parser<http::string_body> parser;
  parser.body_limit(256u << 20);
  auto [readError, read] = co_await http::async_read(socket, buffer, parser, useTuple);
  (void)read;
  if (readError) co_return;
  const auto& request = parser.get();
  requests_.push_back({std::string(request.method_string()), std::string(request.target()),
                       std::string(request[http::field::host]), std::string(request[http::field::content_type]),
                       request.body()});
  if (script_.empty()) {
    co_await asio::async_write(socket, asio::buffer(rawResponse(500, R"({"message":"nothing scripted"})")), useTuple);
    co_return;
  }
  EngineExchange exchange = std::move(script_.front());
  script_.pop_front();
  auto held = std::make_shared<local::socket>(std::move(socket));
  held_.push_back(held);
  if (exchange.silent) {
    char byte;
    co_await held->async_read_some(asio::buffer(&byte, 1), useTuple);
    co_return;
  }
  for (std::size_t i = 0; i < exchange.pieces.size(); ++i) {
    if (i > 0 && exchange.pause.count() > 0) {
      asio::steady_timer pause(executor_, exchange.pause);
      co_await pause.async_wait(useTuple);
    }
    auto [ec, n] = co_await asio::async_write(*held, asio::buffer(exchange.pieces[i]), useTuple);
    (void)n;
    if (ec) co_return;
  }
  if (exchange.holdOpen) {
    // Until the client hangs up (or stop()).
    char byte;
    co_await held->async_read_some(asio::buffer(&byte, 1), useTuple);
  }
}

std::string rawResponse(unsigned status, const std::string& body, const std::string& contentType) {
  return "HTTP/1.1 " + std::to_string(status) + " Whatever\r\nContent-Type: " + contentType +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

std::string chunkedHeader(unsigned status, const std::string& contentType) {
  return "HTTP/1.1 " + std::to_string(status) + " OK\r\nContent-Type: " + contentType +
         "\r\nTransfer-Encoding: chunked\r\n\r\n";
}

std::string chunk(const std::string& data) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}

std::string logFrame(int stream, const std::string& payload) {
  std::string frame(8, '\0');
  frame[0] = static_cast<char>(stream);
  const auto n = static_cast<std::uint32_t>(payload.size());
  frame[4] = static_cast<char>(n >> 24);
  frame[5] = static_cast<char>(n >> 16);
  frame[6] = static_cast<char>(n >> 8);
  frame[7] = static_cast<char>(n);
  return frame + payload;
}

}  // namespace tinyfaas::test
