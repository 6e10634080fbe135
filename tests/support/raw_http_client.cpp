#include "raw_http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>

#include "core/async.hpp"
#include "test_support.hpp"

namespace tinyfaas::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

boost::system::error_code RawHttpClient::connect(std::uint16_t port) {
  stream_.expires_after(kDeadline);
  return run(io_, [this, port]() -> asio::awaitable<boost::system::error_code> {
    auto [ec] = co_await stream_.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), useTuple);
    co_return ec;
  }());
}

boost::system::error_code RawHttpClient::send(const std::string& bytes) {
  stream_.expires_after(kDeadline);
  return run(io_, [this, &bytes]() -> asio::awaitable<boost::system::error_code> {
    auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(bytes), useTuple);
    (void)n;
    co_return ec;
  }());
}

std::optional<RawResponse> RawHttpClient::read() {
  stream_.expires_after(kDeadline);
  return run(io_, [this]() -> asio::awaitable<std::optional<RawResponse>> {
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    auto [ec, n] = co_await http::async_read(stream_, buffer_, parser, useTuple);
    (void)n;
    if (ec) co_return std::nullopt;
    co_return parser.release();
  }());
}

bool RawHttpClient::closedByServer() {
  if (buffer_.size() > 0) return false;
  stream_.expires_after(std::chrono::seconds(5));
  return run(io_, [this]() -> asio::awaitable<bool> {
    char byte = 0;
    auto [ec, n] = co_await stream_.async_read_some(asio::buffer(&byte, 1), useTuple);
    co_return n == 0 && (ec == asio::error::eof || ec == asio::error::connection_reset);
  }());
}

std::string rawRequest(const std::string& method, const std::string& target, const std::string& body,
                       const std::string& extraHeaders) {
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extraHeaders;
  if (!body.empty() || method == "POST") request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return request + "\r\n" + body;
}

}  // namespace tinyfaas::test
