#pragma once
// A small HTTP/1.1 server on Boost.Beast, shared by the function endpoint and
// the management API: accept, then one coroutine per connection reading
// requests with a header and body limit and a timeout on every read. What a
// client can make it hold is bounded per server: connections, bytes of
// request bodies, and the time a header may take.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/system/result.hpp>

#include "core/drainable.hpp"

namespace tinyfaas {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;
using HttpHandler = std::function<boost::asio::awaitable<HttpResponse>(HttpRequest&)>;
// Answers a request with a stream rather than one body (following logs): it
// writes the whole reply itself, and the connection closes after it. Returns
// false, having written nothing, for a request it does not take.
using HttpStreamHandler = std::function<boost::asio::awaitable<bool>(HttpRequest&, boost::beast::tcp_stream&)>;
// Looks at a request's header (its body still empty) before any body byte is
// read. An answer refuses the request: it is sent, and the connection closes
// without the body being read.
using HttpHeaderCheck = std::function<std::optional<HttpResponse>(const HttpRequest& header)>;

struct HttpServerOptions {
  // A numeric address (`::` is dual-stack), or "localhost": 127.0.0.1 and ::1.
  std::string address = "0.0.0.0";
  std::uint16_t port = 0;
  std::size_t maxBodyBytes = 16 << 20;
  std::size_t maxHeaderBytes = 16 << 10;
  // Connections open at once. Beyond it, the connection that has waited
  // longest for its next request (idle, or still sending its header) is
  // closed to make room; when every connection is busy the newcomer gets
  // 503 and is closed.
  std::size_t maxConnections = 1024;
  // Bytes of request bodies being read or handled at once: a declared
  // Content-Length counts from the header on, a chunked body as it arrives.
  // A request that does not fit gets 503 and its connection closes.
  std::size_t maxBodyBytesInFlight = 64 << 20;
  // How long a keep-alive connection may sit idle; how long a request's
  // header may take from its first byte (a client dripping it is cut off);
  // how long its body may take, and the answer's write.
  std::chrono::seconds idleTimeout{120};
  std::chrono::seconds headerTimeout{5};
  std::chrono::seconds readTimeout{30};
};

// Builds a plain-text response with the one-line reason every error carries.
HttpResponse textResponse(const HttpRequest& request, boost::beast::http::status status, std::string body);

// Lives on the thread running its executor. stopAccepting() closes the
// listener; open connections end after their current request, streams at
// once. cutShort() answers requests whose handler still runs with 503 and
// closes their connections. closeConnections() (after a drain) also ends
// every connection still open, so that no session outlives the server's
// loop; a session whose handler still runs ends once it returns. close()
// does that and returns once every session and accept loop has ended.
class HttpServer : public Drainable {
 public:
  virtual std::uint16_t port() const = 0;
  virtual void closeConnections() = 0;
  virtual boost::asio::awaitable<void> close() = 0;

  static boost::system::result<std::unique_ptr<HttpServer>, std::string> create(boost::asio::any_io_executor executor,
                                                                                HttpServerOptions options,
                                                                                HttpHandler handler,
                                                                                HttpStreamHandler streamHandler = {},
                                                                                HttpHeaderCheck headerCheck = {});
};

}  // namespace tinyfaas
