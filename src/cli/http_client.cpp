#include "cli/http_client.hpp"

#include <exception>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <cctype>

namespace tinyfaas::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

std::string describe(const beast::error_code& ec, std::chrono::milliseconds timeout) {
  if (ec == beast::error::timeout) {
    const auto ms = timeout.count();
    return "timed out after " + (ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms");
  }
  std::string text = ec.message();
  // Asio spells some messages as sentences ("Connection refused"); errors
  // here end up inside a longer one-line message.
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  while (!text.empty() && (text.back() == '.' || text.back() == '\n')) text.pop_back();
  return text;
}

// Hands a 2xx reply's body to request.onBody as it arrives, until the server
// ends it; no deadline, no size limit.
asio::awaitable<void> streamBody(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                 http::response_parser<http::string_body>& headerParser, const HttpRequest& request,
                                 Result<HttpResponse, HttpError>& result) {
  http::response_parser<http::buffer_body> parser(std::move(headerParser));
  HttpResponse response{parser.get().result_int(),
                        std::string(parser.get().reason()),
                        {},
                        std::string(parser.get()[http::field::location])};
  stream.expires_never();
  char piece[4096];
  while (!parser.is_done()) {
    parser.get().body().data = piece;
    parser.get().body().size = sizeof piece;
    // read_some: hand on what came, rather than wait for a full piece.
    auto [ec, bytes] = co_await http::async_read_some(stream, buffer, parser, kNoThrow);
    (void)bytes;
    if (ec == http::error::need_buffer) ec = {};
    const std::size_t got = sizeof piece - parser.get().body().size;
    if (got > 0) request.onBody(std::string_view(piece, got));
    if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
      result = failure(HttpError{HttpError::Kind::exchange, "connection closed before the end of the reply"});
      co_return;
    }
    if (ec) {
      result = failure(HttpError{HttpError::Kind::exchange, describe(ec, request.timeout)});
      co_return;
    }
  }
  result = std::move(response);
}

// Reads the reply to the request being written on `stream`.
asio::awaitable<void> readReply(beast::tcp_stream& stream, const HttpRequest& request,
                                Result<HttpResponse, HttpError>& result) {
  const auto fail = [&](HttpError::Kind kind, std::string detail) {
    result = failure(HttpError{kind, std::move(detail)});
  };
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(request.bodyLimit);
  beast::error_code readError;
  if (request.onBody) {
    auto [headerError, headerBytes] = co_await http::async_read_header(stream, buffer, parser, kNoThrow);
    (void)headerBytes;
    readError = headerError;
    const unsigned status = parser.get().result_int();
    if (!readError && status >= 200 && status <= 299) {
      co_await streamBody(stream, buffer, parser, request, result);
      co_return;
    }
  }
  if (!readError) {
    auto [bodyError, read] = co_await http::async_read(stream, buffer, parser, kNoThrow);
    (void)read;
    readError = bodyError;
  }
  if (readError == http::error::body_limit) {
    fail(HttpError::Kind::tooLarge, "reply larger than " + std::to_string(request.bodyLimit) + " bytes");
    co_return;
  }
  if (readError == beast::error::timeout) {
    fail(HttpError::Kind::timeout, describe(readError, request.timeout));
    co_return;
  }
  if (readError == http::error::end_of_stream || readError == http::error::partial_message) {
    fail(HttpError::Kind::exchange, "connection closed before a complete reply");
    co_return;
  }
  if (readError) {
    fail(HttpError::Kind::exchange, describe(readError, request.timeout));
    co_return;
  }

  auto& reply = parser.get();
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  result = HttpResponse{reply.result_int(), std::string(reply.reason()), std::move(reply.body()),
                        std::string(reply[http::field::location])};
}

asio::awaitable<void> exchange(const HttpRequest& request, Result<HttpResponse, HttpError>& result) {
  auto executor = co_await asio::this_coro::executor;
  const auto fail = [&](HttpError::Kind kind, std::string detail) {
    result = failure(HttpError{kind, std::move(detail)});
  };

  // Name resolution is not under the deadline: getaddrinfo cannot be
  // cancelled, and the management URL is nearly always an address or a name
  // in /etc/hosts.
  tcp::resolver resolver(executor);
  auto [resolveError, endpoints] =
      co_await resolver.async_resolve(request.host, std::to_string(request.port), kNoThrow);
  if (resolveError) {
    fail(HttpError::Kind::resolve,
         "cannot resolve host " + request.host + ": " + describe(resolveError, request.timeout));
    co_return;
  }

  beast::tcp_stream stream(executor);
  stream.expires_after(request.timeout);
  auto [connectError, endpoint] = co_await stream.async_connect(endpoints, kNoThrow);
  if (connectError) {
    fail(HttpError::Kind::connect, describe(connectError, request.timeout));
    co_return;
  }

  http::request<http::string_body> message{request.method == HttpMethod::post ? http::verb::post : http::verb::get,
                                           request.target, 11};
  const bool ipv6 = request.host.find(':') != std::string::npos;
  message.set(http::field::host, (ipv6 ? "[" + request.host + "]" : request.host) + ":" + std::to_string(request.port));
  message.set(http::field::user_agent, "tinyfaas-cli");
  if (!request.contentType.empty()) message.set(http::field::content_type, request.contentType);
  for (const auto& [name, value] : request.headers) message.set(name, value);
  message.body() = request.body;
  message.prepare_payload();

  // Read while writing: a daemon that refuses a request by its header (413
  // for a body above its --max-body-bytes) answers and closes before the
  // body is sent. The write then fails with a broken pipe, and the answer
  // that says why must have been read as it came.
  beast::error_code writeError;
  auto send = [&]() -> asio::awaitable<void> {
    auto [ec, written] = co_await http::async_write(stream, message, kNoThrow);
    (void)written;
    writeError = ec;
    // The read ends the exchange: with the reply, an error or the deadline.
    asio::steady_timer never(executor, asio::steady_timer::time_point::max());
    co_await never.async_wait(kNoThrow);
  };
  co_await (readReply(stream, request, result) || send());
  if (!result && writeError && result.error().kind == HttpError::Kind::exchange) {
    fail(writeError == beast::error::timeout ? HttpError::Kind::timeout : HttpError::Kind::exchange,
         describe(writeError, request.timeout));
  }
}

}  // namespace

Result<HttpResponse, HttpError> sendHttpRequest(const HttpRequest& request) {
  Result<HttpResponse, HttpError> result = failure(HttpError{HttpError::Kind::exchange, "not sent"});
  asio::io_context context;
  asio::co_spawn(context, exchange(request, result), [](std::exception_ptr error) {
    if (error) std::rethrow_exception(error);
  });
  context.run();
  return result;
}

}  // namespace tinyfaas::cli
