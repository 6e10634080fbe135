#include "proxy/upstream.hpp"

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "core/async.hpp"

namespace tinyfaas {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using UnixStream = beast::basic_stream<asio::local::stream_protocol, asio::any_io_executor>;

struct Upstream::Connection {
  explicit Connection(asio::any_io_executor executor) : stream(std::move(executor)) {}
  UnixStream stream;
  beast::flat_buffer buffer;
  bool reused = false;
};

Upstream::Upstream(asio::any_io_executor executor, std::string instanceId, std::filesystem::path socketPath,
                   UpstreamOptions options)
    : executor_(std::move(executor)),
      instanceId_(std::move(instanceId)),
      socketPath_(std::move(socketPath)),
      options_(options) {}

Upstream::~Upstream() = default;

asio::awaitable<CallResult> Upstream::call(const Invocation& invocation) {
  outstanding_.fetch_add(1, std::memory_order_relaxed);
  struct Done {
    std::atomic<std::size_t>& counter;
    ~Done() { counter.fetch_sub(1, std::memory_order_relaxed); }
  } done{outstanding_};

  // A pooled connection may have been closed by the handler while idle; that
  // shows as EOF or reset before any response byte, and then the request was
  // never processed, so it is safe to send it once more on a fresh socket.
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<Connection> connection;
    if (!idle_.empty()) {
      connection = std::move(idle_.back());
      idle_.pop_back();
    }
    bool retryable = false;
    CallResult result = co_await callOnce(invocation, connection, retryable);
    if (connection && idle_.size() < options_.maxIdleConnections) {
      connection->reused = true;
      idle_.push_back(std::move(connection));
    }
    if (!retryable) co_return result;
  }
  co_return CallResult{CallStatus::unavailable, "function instance closed the connection"};
}

asio::awaitable<CallResult> Upstream::callOnce(const Invocation& invocation, std::unique_ptr<Connection>& connection,
                                               bool& retryable) {
  if (!connection) {
    connection = std::make_unique<Connection>(executor_);
    connection->stream.expires_after(options_.callTimeout);
    auto [ec] = co_await connection->stream.async_connect(
        asio::local::stream_protocol::endpoint(socketPath_.string()), useTuple);
    if (ec) {
      connection.reset();
      co_return CallResult{CallStatus::unavailable, "cannot connect to function instance: " + ec.message(), true};
    }
  }

  http::request<http::string_body> request{http::verb::post, "/fn", 11};
  // Node's HTTP server answers 400 to an HTTP/1.1 request without Host.
  request.set(http::field::host, "localhost");
  for (const auto& [name, value] : invocation.headers) request.insert(name, value);
  request.body() = invocation.payload;
  request.prepare_payload();

  connection->stream.expires_after(options_.callTimeout);
  auto [writeError, written] = co_await http::async_write(connection->stream, request, useTuple);
  (void)written;
  if (writeError) {
    retryable = connection->reused;
    connection.reset();
    if (writeError == beast::error::timeout) co_return CallResult{CallStatus::timeout, "function call timed out"};
    co_return CallResult{CallStatus::unavailable, "function instance connection failed: " + writeError.message()};
  }

  http::response_parser<http::string_body> parser;
  parser.body_limit(options_.maxResponseBytes);
  auto [readError, read] = co_await http::async_read(connection->stream, connection->buffer, parser, useTuple);
  (void)read;
  if (readError) {
    retryable = connection->reused && !parser.got_some() &&
                (readError == http::error::end_of_stream || readError == asio::error::connection_reset);
    connection.reset();
    if (readError == beast::error::timeout) co_return CallResult{CallStatus::timeout, "function call timed out"};
    if (readError == http::error::body_limit)
      co_return CallResult{CallStatus::payloadTooLarge, "function response larger than the limit"};
    co_return CallResult{CallStatus::unavailable, "function instance failed during the call: " + readError.message()};
  }

  auto response = parser.release();
  if (!response.keep_alive()) connection.reset();
  if (response.result() == http::status::ok) co_return CallResult{CallStatus::ok, std::move(response.body())};
  std::string reason = std::move(response.body());
  if (reason.empty()) reason = "function failed with status " + std::to_string(response.result_int());
  co_return CallResult{CallStatus::functionError, std::move(reason)};
}

}  // namespace tinyfaas
