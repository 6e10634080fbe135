#pragma once
// A small HTTP/1.1 server on Boost.Beast, shared by the function endpoint and
// the management API: accept, then one coroutine per connection reading
// requests with a header and body limit and a timeout on every read.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
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

struct HttpServerOptions {
  std::string address = "0.0.0.0";
  std::uint16_t port = 0;
  std::size_t maxBodyBytes = 16 << 20;
  std::size_t maxHeaderBytes = 16 << 10;
  // How long a keep-alive connection may sit idle, and how long one request
  // may take to arrive once it started.
  std::chrono::seconds idleTimeout{120};
  std::chrono::seconds readTimeout{30};
};

// Builds a plain-text response with the one-line reason every error carries.
HttpResponse textResponse(const HttpRequest& request, boost::beast::http::status status, std::string body);

// Lives on the thread running its executor. stopAccepting() closes the
// listener; open connections end after their current request, streams at
// once. cutShort() answers requests whose handler still runs with 503 and
// closes their connections.
class HttpServer : public Drainable {
 public:
  virtual std::uint16_t port() const = 0;

  static boost::system::result<std::unique_ptr<HttpServer>, std::string> create(boost::asio::any_io_executor executor,
                                                                                HttpServerOptions options,
                                                                                HttpHandler handler,
                                                                                HttpStreamHandler streamHandler = {});
};

}  // namespace tinyfaas
