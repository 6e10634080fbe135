#include "net/http_server.hpp"

#include <array>
#include <deque>
#include <list>
#include <sstream>
#include <unordered_set>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "core/async.hpp"
#include "net/listen_socket.hpp"
#include "util/async_sync.hpp"

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

// The bytes of `response` on the wire.
std::string wireBytes(const HttpResponse& response) {
  std::ostringstream wire;
  wire << response;
  return wire.str();
}

// Writes a few hundred bytes without waiting and shuts the socket down. Used
// where nothing else writes to the socket: a non-blocking write of that much
// into an idle socket goes out whole, and if the client stopped reading it
// fails instead of stalling the loop. Either way the client sees the
// connection end, never silence.
void sendAndShutdown(tcp::socket& socket, const std::string& bytes) {
  boost::system::error_code ec;
  socket.non_blocking(true, ec);
  if (!ec) asio::write(socket, asio::buffer(bytes), ec);
  socket.shutdown(tcp::socket::shutdown_both, ec);
}

bool expectsContinue(const HttpRequest& header) {
  auto it = header.find(http::field::expect);
  return it != header.end() && header.version() >= 11 && beast::iequals(it->value(), "100-continue");
}

class BeastHttpServer final : public HttpServer, public std::enable_shared_from_this<BeastHttpServer> {
 public:
  BeastHttpServer(asio::any_io_executor executor, HttpServerOptions options, HttpHandler handler,
                  HttpStreamHandler streamHandler, HttpHeaderCheck headerCheck)
      : executor_(executor),
        tasks_(executor),
        options_(std::move(options)),
        handler_(std::move(handler)),
        streamHandler_(std::move(streamHandler)),
        headerCheck_(std::move(headerCheck)) {}

  // "localhost" is both loopback addresses (::1 only where the host has
  // IPv6), on one port.
  boost::system::error_code listen() {
    const bool both = options_.address == "localhost";
    for (const char* text :
         both ? std::vector<const char*>{"127.0.0.1", "::1"} : std::vector<const char*>{options_.address.c_str()}) {
      boost::system::error_code ec;
      auto address = asio::ip::make_address(text, ec);
      if (ec) return ec;
      const bool first = acceptors_.empty();
      const std::uint16_t port = first ? options_.port : this->port();
      ec = listenOn(acceptors_.emplace_back(executor_), tcp::endpoint{address, port});
      if (ec && first) return ec;
      if (ec) {
        spdlog::info("not listening on [::1]:{} ({}): IPv4 loopback only", port, ec.message());
        acceptors_.pop_back();
      }
    }
    return {};
  }

  // The tasks keep the server alive: the handle may go before they end.
  void start() {
    for (tcp::acceptor& acceptor : acceptors_) tasks_.spawn(acceptLoop(*this, acceptor), shared_from_this());
  }

  std::uint16_t port() const override {
    boost::system::error_code ec;
    auto endpoint = acceptors_.front().local_endpoint(ec);
    return ec ? 0 : endpoint.port();
  }

  void stopAccepting() override {
    boost::system::error_code ignored;
    accepting_ = false;
    for (tcp::acceptor& acceptor : acceptors_) acceptor.close(ignored);
    // Connections between requests end now, unless the next request has
    // already arrived; busy ones end after their answer.
    for (Connection* connection : waiting_) {
      boost::system::error_code ec;
      if (connection->betweenRequests && connection->stream.socket().available(ec) == 0) connection->stream.cancel();
    }
    for (auto* stream : streaming_) stream->socket().close(ignored);
  }

  std::size_t callsInFlight() const override { return handling_.size() + writing_; }

  void closeConnections() override {
    stopAccepting();
    tasks_.cancel();  // ends an accept loop's backoff and starts no session
    // Pending reads and writes end with operation_aborted; so do the sessions.
    for (Connection* connection : open_) connection->stream.close();
  }

  asio::awaitable<void> close() override {
    closeConnections();
    co_await tasks_.join();
  }

  void cutShort(std::string_view reason) override {
    for (Handling* handling : handling_) {
      HttpRequest request;
      request.version(handling->version);
      request.keep_alive(false);
      // The session is suspended in its handler, so nothing else writes to
      // this socket.
      sendAndShutdown(handling->stream->socket(),
                      wireBytes(textResponse(request, http::status::service_unavailable, std::string(reason))));
      handling->cut = true;
    }
    handling_.clear();
  }

 private:
  // One accepted connection; lives in its session's frame.
  struct Connection {
    explicit Connection(tcp::socket socket) : stream(std::move(socket)) {}
    beast::tcp_stream stream;
    // In waiting_ while it has no whole request header: idle between
    // requests, or still sending a header.
    std::list<Connection*>::iterator waitingAt;
    bool waiting = false;
    bool betweenRequests = false;  // not a byte of the next request yet
    bool evicted = false;          // closed to make room; no longer counted
  };

  // Counts a connection from accept to the end of its session, and keeps
  // waiting_ free of frames that ended, by any path.
  struct Registration {
    Registration(BeastHttpServer& s, Connection& c) : server(s), connection(c) { server.open_.insert(&connection); }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    BeastHttpServer& server;
    Connection& connection;
    ~Registration() {
      server.open_.erase(&connection);
      server.stopWaiting(connection);
      if (!connection.evicted) --server.connections_;
    }
  };

  void startWaiting(Connection& connection) {
    if (connection.waiting) return;
    connection.waitingAt = waiting_.insert(waiting_.end(), &connection);
    connection.waiting = true;
  }

  void stopWaiting(Connection& connection) {
    if (!connection.waiting) return;
    waiting_.erase(connection.waitingAt);
    connection.waiting = false;
  }

  // Closes the connection that has waited longest for a request (not one
  // whose bytes have arrived and wait to be read) to make room for a new
  // one. False when every connection is busy.
  bool evictOldestWaiting() {
    for (Connection* connection : waiting_) {
      boost::system::error_code ec;
      if (connection->stream.socket().available(ec) > 0) continue;
      stopWaiting(*connection);
      connection->evicted = true;
      --connections_;
      // Its pending read ends with operation_aborted and the session exits.
      connection->stream.socket().close(ec);
      return true;
    }
    return false;
  }

  static asio::awaitable<void> acceptLoop(BeastHttpServer& self, tcp::acceptor& acceptor) {
    while (acceptor.is_open()) {
      auto [ec, socket] = co_await acceptor.async_accept(useTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;
        // Out of file descriptors and the like: back off instead of spinning.
        spdlog::warn("accept failed on port {}: {}", self.port(), ec.message());
        const bool slept = co_await self.tasks_.sleep(std::chrono::milliseconds(50));
        if (!slept) co_return;
        continue;
      }
      // Accepted just as the connections were closed: it closes too.
      if (self.tasks_.cancelled()) co_return;
      if (self.connections_ >= self.options_.maxConnections && !self.evictOldestWaiting()) {
        // Answered rather than left in the listen queue: the client learns
        // at once that the node is busy instead of timing out.
        sendAndShutdown(socket, self.busyAnswer_);
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      // Counted here, not when the session starts: co_spawn runs it later,
      // and connections accepted meanwhile must see it.
      ++self.connections_;
      self.tasks_.spawn(session(self, std::move(socket)), self.shared_from_this());
    }
  }

  // Bytes of one request's body counted against maxBodyBytesInFlight until
  // the request is answered.
  struct BodyBytes {
    BeastHttpServer& server;
    std::size_t held = 0;
    ~BodyBytes() { server.bodyBytesInFlight_ -= held; }
    bool growTo(std::size_t total) {
      if (total <= held) return true;
      if (total - held > server.options_.maxBodyBytesInFlight - server.bodyBytesInFlight_) return false;
      server.bodyBytesInFlight_ += total - held;
      held = total;
      return true;
    }
  };

  enum class Outcome { request, closed };

  // Reads one request: the header (checked before any body byte is read),
  // then the body. Refusals are answered here; `closed` ends the connection.
  static asio::awaitable<Outcome> readRequest(BeastHttpServer& self, Connection& connection, beast::flat_buffer& buffer,
                                              http::request_parser<http::string_body>& parser, BodyBytes& body) {
    auto& stream = connection.stream;
    self.startWaiting(connection);
    if (buffer.size() == 0) {
      // Between requests the idle timeout applies, and stopAccepting() may
      // end the wait.
      if (!self.accepting_) co_return Outcome::closed;
      connection.betweenRequests = true;
      stream.expires_after(self.options_.idleTimeout);
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(kFirstReadBytes), useTuple);
      connection.betweenRequests = false;
      if (ec) co_return Outcome::closed;
      buffer.commit(n);
    }
    parser.header_limit(static_cast<std::uint32_t>(self.options_.maxHeaderBytes));
    parser.body_limit(self.options_.maxBodyBytes);
    // From its first byte, the header must arrive within the header timeout.
    stream.expires_after(self.options_.headerTimeout);
    auto [headerError, headerBytes] = co_await http::async_read_header(stream, buffer, parser, useTuple);
    (void)headerBytes;
    self.stopWaiting(connection);
    if (headerError) co_return co_await readFailed(self, stream, headerError);

    if (self.headerCheck_) {
      if (std::optional<HttpResponse> refusal = self.headerCheck_(parser.get())) {
        co_await refuse(stream, std::move(*refusal));
        co_return Outcome::closed;
      }
    }
    if (auto length = parser.content_length(); length && !body.growTo(*length)) {
      co_await refuse(stream, self.bodiesBusy(parser.get()));
      co_return Outcome::closed;
    }
    if (parser.is_done()) co_return Outcome::request;
    stream.expires_after(self.options_.readTimeout);
    if (expectsContinue(parser.get())) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      auto [ec, n] = co_await asio::async_write(stream, asio::buffer(kContinue), useTuple);
      (void)n;
      if (ec) co_return Outcome::closed;
    }
    while (!parser.is_done()) {
      auto [ec, n] = co_await http::async_read_some(stream, buffer, parser, useTuple);
      (void)n;
      if (ec) co_return co_await readFailed(self, stream, ec);
      // A chunked body counts as it grows.
      if (!parser.content_length() && !body.growTo(parser.get().body().size())) {
        co_await refuse(stream, self.bodiesBusy(parser.get()));
        co_return Outcome::closed;
      }
    }
    co_return Outcome::request;
  }

  static asio::awaitable<Outcome> readFailed(BeastHttpServer& self, beast::tcp_stream& stream,
                                             boost::system::error_code ec) {
    // The client left, or took too long (the stream is closed then).
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted || ec == asio::error::eof || ec == asio::error::bad_descriptor) {
      co_return Outcome::closed;
    }
    // The client sent something we will not process; say why, then close,
    // because the rest of the stream cannot be trusted to be aligned.
    co_await refuse(stream, self.refusalFor(ec));
    co_return Outcome::closed;
  }

  static asio::awaitable<void> session(BeastHttpServer& self, tcp::socket socket) {
    try {
      co_await serve(self, std::move(socket));
    } catch (const std::exception& e) {
      // Handlers report expected failures as responses; an exception here
      // is a bug, logged rather than lost.
      spdlog::error("HTTP session failed: {}", e.what());
    }
  }

  static asio::awaitable<void> serve(BeastHttpServer& self, tcp::socket socket) {
    Connection connection(std::move(socket));
    Registration registration{self, connection};
    auto& stream = connection.stream;
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      BodyBytes body{self};
      if (co_await readRequest(self, connection, buffer, parser, body) == Outcome::closed) break;

      HttpRequest request = parser.release();
      if (self.streamHandler_) {
        self.streaming_.insert(&stream);
        const bool streamed = co_await self.streamHandler_(request, stream);
        self.streaming_.erase(&stream);
        if (streamed) break;
      }
      Handling handling{&stream, request.version()};
      HandlingGuard guard{self, handling};
      HttpResponse response = co_await self.handler_(request);
      if (handling.cut) break;  // answered by cutShort() already
      guard.release();
      if (!self.accepting_) response.keep_alive(false);
      const bool keepAlive = response.keep_alive();
      stream.expires_after(self.options_.readTimeout);
      ++self.writing_;
      auto [writeError, written] = co_await http::async_write(stream, response, useTuple);
      --self.writing_;
      (void)written;
      if (writeError || !keepAlive) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  HttpResponse refusalFor(boost::system::error_code ec) const {
    HttpRequest fallback;
    fallback.version(11);
    fallback.keep_alive(false);
    if (ec == http::error::header_limit) {
      return textResponse(fallback, http::status::request_header_fields_too_large,
                          "request header fields larger than " + std::to_string(options_.maxHeaderBytes) + " bytes");
    }
    if (ec == http::error::body_limit) {
      return textResponse(fallback, http::status::payload_too_large,
                          "request larger than " + std::to_string(options_.maxBodyBytes) + " bytes");
    }
    return textResponse(fallback, http::status::bad_request, "malformed HTTP request: " + ec.message());
  }

  HttpResponse bodiesBusy(const HttpRequest& header) const {
    auto response = textResponse(header, http::status::service_unavailable,
                                 "too many request bodies in flight (at most " +
                                     std::to_string(options_.maxBodyBytesInFlight) + " bytes at once); try again");
    response.set(http::field::retry_after, "1");
    return response;
  }

  // Sends a refusal and closes the connection without reading the rest of
  // the request.
  static asio::awaitable<void> refuse(beast::tcp_stream& stream, HttpResponse response) {
    response.keep_alive(false);
    stream.expires_after(kRefusalTime);
    auto [ec, n] = co_await http::async_write(stream, response, useTuple);
    (void)n;
    if (ec) co_return;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    // Closing with unread bytes makes the kernel send a reset, which can
    // destroy the answer before the client reads it. So what the client
    // still sends is read and dropped, briefly and up to a bound.
    stream.expires_after(kLingerTime);
    std::array<char, 4096> sink;
    for (std::size_t dropped = 0; dropped < kLingerBytes;) {
      auto [readError, read] = co_await stream.async_read_some(asio::buffer(sink), useTuple);
      if (readError) break;
      dropped += read;
    }
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
  static constexpr std::chrono::seconds kRefusalTime{5};  // a refusal is a few hundred bytes
  static constexpr std::chrono::seconds kLingerTime{1};
  static constexpr std::size_t kLingerBytes = 1 << 20;

  asio::any_io_executor executor_;
  TaskGroup tasks_;                      // the accept loops and the sessions
  std::deque<tcp::acceptor> acceptors_;  // one, or two for "localhost"
  bool accepting_ = true;
  HttpServerOptions options_;
  HttpHandler handler_;
  HttpStreamHandler streamHandler_;
  HttpHeaderCheck headerCheck_;
  const std::string busyAnswer_ = [this] {
    HttpRequest request;
    request.keep_alive(false);
    auto response = textResponse(
        request, http::status::service_unavailable,
        "too many connections (at most " + std::to_string(options_.maxConnections) + " at once); try again");
    response.set(http::field::retry_after, "1");
    return wireBytes(response);
  }();
  std::size_t connections_ = 0;                       // accepted and not yet closed
  std::unordered_set<Connection*> open_;              // sessions running, evicted ones too
  std::list<Connection*> waiting_;                    // without a whole request header, longest waiting first
  std::unordered_set<beast::tcp_stream*> streaming_;  // connections a stream handler holds
  std::unordered_set<Handling*> handling_;            // requests whose handler runs
  std::size_t writing_ = 0;                           // answers being written
  std::size_t bodyBytesInFlight_ = 0;
};

}  // namespace

boost::system::result<std::unique_ptr<HttpServer>, std::string> HttpServer::create(asio::any_io_executor executor,
                                                                                   HttpServerOptions options,
                                                                                   HttpHandler handler,
                                                                                   HttpStreamHandler streamHandler,
                                                                                   HttpHeaderCheck headerCheck) {
  auto server = std::make_shared<BeastHttpServer>(std::move(executor), options, std::move(handler),
                                                  std::move(streamHandler), std::move(headerCheck));
  if (auto ec = server->listen()) {
    return "cannot listen on " + formatListenAddress(options.address, options.port) + ": " + ec.message();
  }
  server->start();
  // The accept loops and sessions co-own the server; the handle returned
  // here only stops it.
  struct Handle final : HttpServer {
    std::shared_ptr<BeastHttpServer> server;
    explicit Handle(std::shared_ptr<BeastHttpServer> s) : server(std::move(s)) {}
    ~Handle() override { server->stopAccepting(); }
    std::uint16_t port() const override { return server->port(); }
    void stopAccepting() override { server->stopAccepting(); }
    std::size_t callsInFlight() const override { return server->callsInFlight(); }
    void cutShort(std::string_view reason) override { server->cutShort(reason); }
    void closeConnections() override { server->closeConnections(); }
    asio::awaitable<void> close() override { return server->close(); }
  };
  return std::unique_ptr<HttpServer>(std::make_unique<Handle>(std::move(server)));
}

}  // namespace tinyfaas
