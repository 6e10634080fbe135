#include "manager/health_probe.hpp"

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "core/async.hpp"

namespace tinyfaas {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

asio::awaitable<bool> probeHealth(asio::any_io_executor executor, std::filesystem::path socket,
                                  std::chrono::milliseconds timeout) {
  beast::basic_stream<asio::local::stream_protocol, asio::any_io_executor> stream(executor);
  stream.expires_after(timeout);
  auto [connectError] =
      co_await stream.async_connect(asio::local::stream_protocol::endpoint(socket.string()), useTuple);
  if (connectError) co_return false;
  http::request<http::empty_body> request{http::verb::get, "/health", 11};
  // Node's HTTP server answers 400 to an HTTP/1.1 request without Host.
  request.set(http::field::host, "localhost");
  request.keep_alive(false);
  auto [writeError, written] = co_await http::async_write(stream, request, useTuple);
  (void)written;
  if (writeError) co_return false;
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(4096);
  auto [readError, read] = co_await http::async_read(stream, buffer, parser, useTuple);
  (void)read;
  co_return !readError && parser.get().result() == http::status::ok;
}

}  // namespace tinyfaas
