#include "net/http_server.hpp"

#include <sstream>
#include <unordered_set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "core/async.hpp"

namespace tinyfaas {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

HttpResponse textResponse(const HttpRequest& request, http::status status, std::string body) {
  HttpResponse response{status, request.version()};
  response.keep_alive(request.keep_alive());
  if (!body.empty() && body.back() != '\n') body.push_back('\n');
  response.set(http::field::content_type, "text/plain; charset=utf-8");
  response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

namespace {

class BeastHttpServer final : public HttpServer, public std::enable_shared_from_this<BeastHttpServer> {
 public:
  BeastHttpServer(asio::any_io_executor executor, HttpServerOptions options, HttpHandler handler,
                  HttpStreamHandler streamHandler)
      : acceptor_(executor),
        options_(std::move(options)),
        handler_(std::move(handler)),
        streamHandler_(std::move(streamHandler)) {}

  boost::system::error_code listen() {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(options_.address, ec);
    if (ec) return ec;
    tcp::endpoint endpoint{address, options_.port};
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    return ec;
  }

  void start() {
    asio::co_spawn(acceptor_.get_executor(), acceptLoop(shared_from_this()), asio::detached);
  }

  std::uint16_t port() const override {
    boost::system::error_code ec;
    auto endpoint = acceptor_.local_endpoint(ec);
    return ec ? 0 : endpoint.port();
  }

  void stopAccepting() override {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    // Connections between requests end now, unless the next request has
    // already arrived; busy ones end after their answer.
    for (auto* stream : idle_) {
      boost::system::error_code ec;
      if (stream->socket().available(ec) == 0) stream->cancel();
    }
    for (auto* stream : streaming_) stream->socket().close(ignored);
  }

  std::size_t callsInFlight() const override { return handling_.size() + writing_; }

  void cutShort(std::string_view reason) override {
    for (Handling* handling : handling_) {
      HttpRequest request;
      request.version(handling->version);
      request.keep_alive(false);
      std::ostringstream wire;
      wire << textResponse(request, http::status::service_unavailable, std::string(reason));
      const std::string bytes = wire.str();
      // The session is suspended in its handler, so nothing else writes to
      // this socket; a non-blocking write of a few hundred bytes into an
      // idle socket goes out whole, and if the client stopped reading it
      // fails instead of stalling the loop. Either way the client sees the
      // connection end, never silence.
      auto& socket = handling->stream->socket();
      boost::system::error_code ec;
      socket.non_blocking(true, ec);
      if (!ec) asio::write(socket, asio::buffer(bytes), ec);
      socket.shutdown(tcp::socket::shutdown_both, ec);
      handling->cut = true;
    }
    handling_.clear();
  }

 private:
  static asio::awaitable<void> acceptLoop(std::shared_ptr<BeastHttpServer> self) {
    while (self->acceptor_.is_open()) {
      auto [ec, socket] = co_await self->acceptor_.async_accept(useTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;
        // Out of file descriptors and the like: back off instead of spinning.
        spdlog::warn("accept failed on port {}: {}", self->port(), ec.message());
        asio::steady_timer timer(self->acceptor_.get_executor(), std::chrono::milliseconds(50));
        co_await timer.async_wait(useTuple);
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(self->acceptor_.get_executor(), session(self, beast::tcp_stream(std::move(socket))),
                     [](std::exception_ptr error) {
                       // Handlers report expected failures as responses; an
                       // exception here is a bug, logged rather than lost.
                       if (!error) return;
                       try {
                         std::rethrow_exception(error);
                       } catch (const std::exception& e) {
                         spdlog::error("HTTP session failed: {}", e.what());
                       }
                     });
    }
  }

  static asio::awaitable<void> session(std::shared_ptr<BeastHttpServer> self, beast::tcp_stream stream) {
    beast::flat_buffer buffer;
    for (;;) {
      if (buffer.size() == 0) {
        // Between requests the idle timeout applies, and stopAccepting() may
        // end the wait.
        if (!self->acceptor_.is_open()) break;
        stream.expires_after(self->options_.idleTimeout);
        self->idle_.insert(&stream);
        auto [ec, n] = co_await stream.async_read_some(buffer.prepare(kFirstReadBytes), useTuple);
        self->idle_.erase(&stream);
        if (ec) break;
        buffer.commit(n);
      }
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(self->options_.maxHeaderBytes));
      parser.body_limit(self->options_.maxBodyBytes);

      // Once a request has started, all of it must arrive within the read timeout.
      stream.expires_after(self->options_.readTimeout);
      auto [ec, bytes] = co_await http::async_read(stream, buffer, parser, useTuple);
      (void)bytes;
      if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::connection_reset ||
          ec == asio::error::operation_aborted) {
        break;
      }
      if (ec) {
        // The client sent something we will not process; say why, then close,
        // because the rest of the stream cannot be trusted to be aligned.
        co_await writeRefusal(*self, stream, ec);
        break;
      }

      HttpRequest request = parser.release();
      if (self->streamHandler_) {
        self->streaming_.insert(&stream);
        const bool streamed = co_await self->streamHandler_(request, stream);
        self->streaming_.erase(&stream);
        if (streamed) break;
      }
      Handling handling{&stream, request.version()};
      HandlingGuard guard{*self, handling};
      HttpResponse response = co_await self->handler_(request);
      if (handling.cut) break;  // answered by cutShort() already
      guard.release();
      if (!self->acceptor_.is_open()) response.keep_alive(false);
      const bool keepAlive = response.keep_alive();
      stream.expires_after(self->options_.readTimeout);
      ++self->writing_;
      auto [writeError, written] = co_await http::async_write(stream, response, useTuple);
      --self->writing_;
      (void)written;
      if (writeError || !keepAlive) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  static asio::awaitable<void> writeRefusal(BeastHttpServer& self, beast::tcp_stream& stream,
                                            boost::system::error_code ec) {
    HttpRequest fallback;
    fallback.version(11);
    fallback.keep_alive(false);
    HttpResponse response;
    if (ec == http::error::header_limit) {
      response = textResponse(fallback, http::status::request_header_fields_too_large,
                              "request header fields larger than " + std::to_string(self.options_.maxHeaderBytes) +
                                  " bytes");
    } else if (ec == http::error::body_limit) {
      response = textResponse(fallback, http::status::payload_too_large,
                              "request larger than " + std::to_string(self.options_.maxBodyBytes) + " bytes");
    } else {
      response = textResponse(fallback, http::status::bad_request, "malformed HTTP request: " + ec.message());
    }
    stream.expires_after(self.options_.readTimeout);
    co_await http::async_write(stream, response, useTuple);
  }

  // A request whose handler runs; lives in the session's frame.
  struct Handling {
    beast::tcp_stream* stream;
    unsigned version;
    bool cut = false;
  };
  // Keeps handling_ free of frames that ended, by any path.
  struct HandlingGuard {
    BeastHttpServer& server;
    Handling& handling;
    bool armed = true;
    HandlingGuard(BeastHttpServer& s, Handling& h) : server(s), handling(h) { server.handling_.insert(&handling); }
    ~HandlingGuard() { release(); }
    void release() {
      if (armed) server.handling_.erase(&handling);
      armed = false;
    }
  };

  static constexpr std::size_t kFirstReadBytes = 4096;

  tcp::acceptor acceptor_;
  HttpServerOptions options_;
  HttpHandler handler_;
  HttpStreamHandler streamHandler_;
  std::unordered_set<beast::tcp_stream*> idle_;       // connections waiting for their next request
  std::unordered_set<beast::tcp_stream*> streaming_;  // connections a stream handler holds
  std::unordered_set<Handling*> handling_;            // requests whose handler runs
  std::size_t writing_ = 0;                           // answers being written
};

}  // namespace

boost::system::result<std::unique_ptr<HttpServer>, std::string> HttpServer::create(asio::any_io_executor executor,
                                                                                   HttpServerOptions options,
                                                                                   HttpHandler handler,
                                                                                   HttpStreamHandler streamHandler) {
  auto server =
      std::make_shared<BeastHttpServer>(std::move(executor), options, std::move(handler), std::move(streamHandler));
  if (auto ec = server->listen()) {
    return "cannot listen on " + options.address + ":" + std::to_string(options.port) + ": " + ec.message();
  }
  server->start();
  // The accept loop co-owns the server; the handle returned here only stops it.
  struct Handle final : HttpServer {
    std::shared_ptr<BeastHttpServer> server;
    explicit Handle(std::shared_ptr<BeastHttpServer> s) : server(std::move(s)) {}
    ~Handle() override { server->stopAccepting(); }
    std::uint16_t port() const override { return server->port(); }
    void stopAccepting() override { server->stopAccepting(); }
    std::size_t callsInFlight() const override { return server->callsInFlight(); }
    void cutShort(std::string_view reason) override { server->cutShort(reason); }
  };
  return std::unique_ptr<HttpServer>(std::make_unique<Handle>(std::move(server)));
}

}  // namespace tinyfaas
