#include "http_load.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <optional>
#include <type_traits>

namespace tinyfaas::bench {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// A peer that closed an idle keep-alive connection makes the next request
// fail before any byte of an answer: browsers and every HTTP client library
// retry that once on a new connection, and so do we. Anything later in the
// exchange is a failed call.
bool closedBeforeAnswer(const boost::system::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::eof;
}

template <class Protocol>
asio::awaitable<void> clientLoop(ClientJob& job, const HttpPlan& plan, typename Protocol::endpoint endpoint) {
  using Stream = beast::basic_stream<Protocol>;
  const auto executor = co_await asio::this_coro::executor;
  auto request = plan.request;
  std::optional<Stream> stream;
  beast::flat_buffer buffer;
  bool reused = false;  // the connection has already carried a complete exchange

  for (std::uint32_t seq = 0; seq < job.calls; ++seq) {
    const auto start = Clock::now();
    if (!job.mayStart(start)) break;
    bool ok = false;
    bool answered = false;
    // At most two attempts, and only a stale reused connection earns the second.
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!stream) {
        stream.emplace(executor);
        buffer.clear();
        reused = false;
      }
      // One deadline for connect, write and read together: basic_stream
      // keeps the expiry until it is changed.
      stream->expires_at(start + job.timeout);
      if (!reused && !stream->socket().is_open()) {
        auto [ec] = co_await stream->async_connect(endpoint, kTuple);
        if (ec) {
          job.noteError("connect: " + ec.message());
          stream.reset();
          break;
        }
        if constexpr (std::is_same_v<Protocol, asio::ip::tcp>) {
          boost::system::error_code ignored;
          stream->socket().set_option(asio::ip::tcp::no_delay(true), ignored);
        }
      }
      auto [writeError, written] = co_await http::async_write(*stream, request, kTuple);
      if (writeError) {
        const bool retry = reused && closedBeforeAnswer(writeError);
        if (!retry) job.noteError("write: " + writeError.message());
        stream.reset();
        if (retry) continue;
        break;
      }
      http::response_parser<http::string_body> parser;
      parser.body_limit(plan.maxResponseBytes);
      auto [readError, read] = co_await http::async_read(*stream, buffer, parser, kTuple);
      if (readError) {
        const bool retry = reused && closedBeforeAnswer(readError);
        if (!retry) job.noteError("read: " + readError.message());
        stream.reset();
        if (retry) continue;
        break;
      }
      const auto& response = parser.get();
      answered = true;
      ok = response.result_int() >= 200 && response.result_int() < 300;
      if (!ok) job.noteError("status " + std::to_string(response.result_int()));
      reused = response.keep_alive();
      if (!reused) stream.reset();
      break;
    }
    job.record(seq, start, Clock::now(), ok, answered);
  }
}

}  // namespace

asio::awaitable<void> runHttpClient(ClientJob& job, const HttpPlan& plan, asio::ip::tcp::endpoint endpoint) {
  return clientLoop<asio::ip::tcp>(job, plan, endpoint);
}

asio::awaitable<void> runHttpClient(ClientJob& job, const HttpPlan& plan,
                                    asio::local::stream_protocol::endpoint endpoint) {
  return clientLoop<asio::local::stream_protocol>(job, plan, endpoint);
}

}  // namespace tinyfaas::bench
