#pragma once
// A TCP client for wire-level tests of the HTTP server: it sends whatever
// bytes it is given (valid HTTP or not) and parses what comes back, on the
// test's io_context, with a deadline on every read.

#include <cstdint>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/system/error_code.hpp>

namespace tinyfaas::test {

using RawResponse = boost::beast::http::response<boost::beast::http::string_body>;

class RawHttpClient {
 public:
  explicit RawHttpClient(boost::asio::io_context& io) : io_(io), stream_(io) {}

  // Each runs on the io_context until done (or the deadline) and returns.
  boost::system::error_code connect(std::uint16_t port);
  boost::system::error_code send(const std::string& bytes);
  // nullopt when the connection ended (or failed) before a whole response.
  std::optional<RawResponse> read();
  // True when the server closed the connection (EOF or reset) with nothing
  // more to read; false if bytes arrived or nothing happened for a while.
  bool closedByServer();

  std::optional<RawResponse> roundTrip(const std::string& bytes) {
    if (send(bytes)) return std::nullopt;
    return read();
  }

 private:
  boost::asio::io_context& io_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
};

// "GET /path HTTP/1.1" with a Host header and the given extra header lines.
std::string rawRequest(const std::string& method, const std::string& target, const std::string& body = "",
                       const std::string& extraHeaders = "");

}  // namespace tinyfaas::test
