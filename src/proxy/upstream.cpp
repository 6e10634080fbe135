#include "proxy/upstream.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <optional>
#include <utility>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "core/async.hpp"
#include "proxy/function_answer.hpp"
#include "proxy/handler_frame.hpp"

namespace tinyfaas {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using UnixStream = beast::basic_stream<asio::local::stream_protocol, asio::any_io_executor>;

struct Upstream::Connection {
  explicit Connection(asio::any_io_executor executor) : stream(std::move(executor)) {}
  UnixStream stream;
  beast::flat_buffer buffer;
  bool fresh = true;  // the framing's preface is still due
  std::chrono::steady_clock::time_point idleSince;
};

// One call handed to the handler: the request, encoded while the caller's
// invocation still exists, and the result once the handler answered. Shared
// by the caller, who stops waiting at the deadline, and run(), which may
// wait on through the grace period.
struct Upstream::Exchange {
  Exchange(asio::any_io_executor executor, Deadline deadline)
      : answered(std::move(executor), deadline), deadline(deadline) {}
  asio::steady_timer answered;  // expires at the deadline; cancelled once `result` is in
  Deadline deadline;
  http::request<http::string_body> request;  // HTTP handlers
  std::string frame;                         // framed handlers
  std::optional<CallResult> result;
};

namespace {

// A connection back in the pool for less than this is taken without the
// check below: under load that check was one syscall in five per call. A
// handler that closed it meanwhile fails the write before anything reached
// it (EPIPE on a Unix socket), and the call goes on a new connection.
constexpr std::chrono::seconds kRecentlyUsed{1};

// An idle pooled connection the handler closed (restart, keep-alive timeout)
// has its EOF waiting; one with unexpected bytes is out of step. Either is
// dropped before a call is written to it.
bool stillUsable(UnixStream& stream) {
  char byte = 0;
  const ssize_t n = ::recv(stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

CallResult timedOut() { return CallResult{CallStatus::timeout, "function call timed out"}; }

CallResult failure(const boost::system::error_code& ec, std::string_view what) {
  if (ec == beast::error::timeout) return timedOut();
  return CallResult{CallStatus::unavailable, std::string(what) + ec.message()};
}

// The HTTP/1.1 contract every handler implements.
http::request<http::string_body> httpRequest(const Invocation& invocation, std::chrono::milliseconds timeLeft) {
  http::request<http::string_body> request{http::verb::post, "/fn", 11};
  // Node's HTTP server answers 400 to an HTTP/1.1 request without Host.
  request.set(http::field::host, "localhost");
  for (const auto& [name, value] : invocation.headers) {
    if (name != kTimeLeftHeader) request.insert(name, value);
  }
  request.insert(kTimeLeftHeader, std::to_string(timeLeft.count()));
  request.body() = invocation.payload;
  request.prepare_payload();
  return request;
}

}  // namespace

Upstream::Upstream(asio::any_io_executor executor, std::string instanceId, std::filesystem::path socketPath,
                   UpstreamOptions options, StuckCallback onStuck)
    : executor_(std::move(executor)),
      instanceId_(std::move(instanceId)),
      socketPath_(std::move(socketPath)),
      options_(options),
      onStuck_(std::move(onStuck)),
      exchanges_(executor_) {}

Upstream::~Upstream() = default;

std::unique_ptr<Upstream::Connection> Upstream::takeIdle() {
  const auto now = std::chrono::steady_clock::now();
  while (!idle_.empty()) {
    std::unique_ptr<Connection> connection = std::move(idle_.back());
    idle_.pop_back();
    if (now - connection->idleSince < kRecentlyUsed || stillUsable(connection->stream)) return connection;
  }
  return nullptr;
}

asio::awaitable<CallResult> Upstream::call(const Invocation& invocation) {
  ++outstanding_;
  const Deadline deadline = std::chrono::steady_clock::now() + options_.callTimeout;
  const Turn turn = co_await waitTurn(deadline);
  if (turn != Turn::taken) {
    endCall();
    if (turn == Turn::timedOut) co_return timedOut();
    co_return CallResult{CallStatus::overloaded, "function overloaded: " + std::to_string(sending_) +
                                                     " calls running and " + std::to_string(waiting_.size()) +
                                                     " waiting on its instance"};
  }

  auto exchange = std::make_shared<Exchange>(executor_, deadline);
  const auto timeLeft =
      std::max(std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()),
               std::chrono::milliseconds(0));
  if (options_.framed) {
    exchange->frame = frame::encodeRequest(invocation, timeLeft);
  } else {
    exchange->request = httpRequest(invocation, timeLeft);
  }
  // The exchange runs on its own: at the deadline the caller is answered,
  // while the handler connection and the turn wait on for the late answer.
  // Counted, and keeping this Upstream alive, until it ends.
  exchanges_.spawn(executor_, run(*this, exchange), shared_from_this());
  co_await exchange->answered.async_wait(useTuple);
  if (!exchange->result) co_return timedOut();
  // An error answer at or past the deadline is the handler giving the call
  // up when the proxy does (the binary handler stops fn.sh at the time
  // X-Tinyfaas-Timeout-Ms gives it); read in the same round as the
  // deadline, it is still the timeout to the caller.
  if (exchange->result->status == CallStatus::functionError && std::chrono::steady_clock::now() >= deadline)
    co_return timedOut();
  co_return std::move(*exchange->result);
}

asio::awaitable<void> Upstream::run(Upstream& upstream, std::shared_ptr<Exchange> exchange) {
  const Deadline giveUp = exchange->deadline + upstream.options_.timeoutGrace;
  std::unique_ptr<Connection> connection = upstream.takeIdle();
  const bool pooled = connection != nullptr;
  Outcome outcome;
  CallResult result = co_await upstream.callOn(*exchange, giveUp, connection, outcome);
  // A pooled connection the handler closed between our check and the write
  // fails the write before the handler saw a whole request: the call never
  // ran, so it goes once more on a new socket. Anything later (no answer
  // after a complete write) is not retried: the function may have run.
  if (outcome.nothingSent && pooled) result = co_await upstream.callOn(*exchange, giveUp, connection, outcome);
  if (connection && upstream.idle_.size() < upstream.options_.maxIdleConnections) {
    connection->idleSince = std::chrono::steady_clock::now();
    upstream.idle_.push_back(std::move(connection));
  }
  upstream.endTurn();
  upstream.endCall();
  // Still no answer at the end of the grace: the function is still at work
  // (a busy loop, a sleep) that nobody waits for.
  if (result.status == CallStatus::timeout && !outcome.nothingSent && !upstream.stuck_) {
    upstream.stuck_ = true;
    if (upstream.onStuck_) upstream.onStuck_();
  }
  // Nothing reached the function: the proxy may hand it to another instance.
  result.retryable = outcome.nothingSent;
  exchange->result = std::move(result);
  exchange->answered.cancel();
}

asio::awaitable<Upstream::Turn> Upstream::waitTurn(Deadline deadline) {
  if (sending_ < options_.maxConcurrentCalls && waiting_.empty()) {
    ++sending_;
    co_return Turn::taken;
  }
  if (waiting_.size() >= options_.maxQueuedCalls) co_return Turn::queueFull;
  asio::steady_timer turn(executor_, deadline);
  waiting_.push_back(&turn);
  auto [ec] = co_await turn.async_wait(useTuple);
  // endTurn() took us off the queue and handed its turn over by cancelling.
  if (ec == asio::error::operation_aborted) co_return Turn::taken;
  const auto queued = std::find(waiting_.begin(), waiting_.end(), &turn);
  // Handed a turn just as the timeout passed: it is ours to use.
  if (queued == waiting_.end()) co_return Turn::taken;
  waiting_.erase(queued);
  co_return Turn::timedOut;
}

void Upstream::endCall() {
  if (--outstanding_ == 0) {
    for (auto* waiter : std::exchange(drainWaiters_, {})) waiter->cancel();
  }
}

asio::awaitable<void> Upstream::drained(Deadline deadline) {
  if (outstanding_ > 0) {
    asio::steady_timer timer(executor_, deadline);
    drainWaiters_.push_back(&timer);
    co_await timer.async_wait(useTuple);
    std::erase(drainWaiters_, &timer);  // still listed after the deadline
    if (outstanding_ > 0) co_return;
  }
  // A call's exchange ends right after it stops counting as outstanding.
  co_await exchanges_.wait();
}

void Upstream::endTurn() {
  if (waiting_.empty()) {
    --sending_;
    return;
  }
  asio::steady_timer* next = waiting_.front();
  waiting_.pop_front();
  next->cancel();
}

asio::awaitable<CallResult> Upstream::callOn(const Exchange& exchange, Deadline deadline,
                                             std::unique_ptr<Connection>& connection, Outcome& outcome) {
  outcome = Outcome{};
  if (!connection) {
    connection = std::make_unique<Connection>(executor_);
    connection->stream.expires_at(deadline);
    auto [ec] = co_await connection->stream.async_connect(asio::local::stream_protocol::endpoint(socketPath_.string()),
                                                          useTuple);
    if (ec) {
      connection.reset();
      outcome.nothingSent = true;
      co_return CallResult{CallStatus::unavailable, "cannot connect to function instance: " + ec.message()};
    }
  }
  // Not a conditional expression with two co_awaits: GCC 12 destroys its
  // result twice.
  CallResult result;
  if (options_.framed) {
    result = co_await exchangeFrame(exchange, deadline, *connection, outcome);
  } else {
    result = co_await exchangeHttp(exchange, deadline, *connection, outcome);
  }
  if (!outcome.reusable) connection.reset();
  co_return result;
}

namespace {

CallResult writeFailure(const boost::system::error_code& ec, Upstream::Outcome& outcome) {
  outcome.nothingSent = ec != beast::error::timeout;
  return failure(ec, "function instance connection failed: ");
}

asio::awaitable<boost::system::error_code> readAtLeast(UnixStream& stream, beast::flat_buffer& buffer,
                                                       std::size_t bytes) {
  while (buffer.size() < bytes) {
    auto [ec, n] =
        co_await stream.async_read_some(buffer.prepare(std::max<std::size_t>(bytes - buffer.size(), 4096)), useTuple);
    if (ec) co_return ec;
    buffer.commit(n);
  }
  co_return boost::system::error_code{};
}

}  // namespace

asio::awaitable<CallResult> Upstream::exchangeHttp(const Exchange& exchange, Deadline deadline, Connection& connection,
                                                   Outcome& outcome) {
  connection.stream.expires_at(deadline);
  auto [writeError, written] = co_await http::async_write(connection.stream, exchange.request, useTuple);
  (void)written;
  if (writeError) co_return writeFailure(writeError, outcome);

  http::response_parser<http::string_body> parser;
  parser.body_limit(options_.maxResponseBytes);
  parser.header_limit(kMaxHandlerHeaderBlockBytes);
  auto [readError, read] = co_await http::async_read(connection.stream, connection.buffer, parser, useTuple);
  (void)read;
  if (readError == http::error::body_limit)
    co_return CallResult{CallStatus::payloadTooLarge, "function response larger than the limit"};
  if (readError == http::error::header_limit) co_return functionHeadersTooLarge();
  if (readError) co_return failure(readError, "function instance failed during the call: ");

  auto response = parser.release();
  outcome.reusable = response.keep_alive();
  HeaderList headers;
  for (const auto& field : response) headers.emplace_back(field.name_string(), field.value());
  co_return functionAnswer(response.result_int(), std::move(headers), std::move(response.body()));
}

// The shipped runtimes' framing (proxy/handler_frame.hpp): no text to
// build or parse on either side.
asio::awaitable<CallResult> Upstream::exchangeFrame(const Exchange& exchange, Deadline deadline, Connection& connection,
                                                    Outcome& outcome) {
  const std::array<asio::const_buffer, 2> request{
      asio::buffer(frame::kPreface.data(), connection.fresh ? frame::kPreface.size() : 0),
      asio::buffer(exchange.frame)};
  connection.stream.expires_at(deadline);
  auto [writeError, written] = co_await asio::async_write(connection.stream, request, useTuple);
  (void)written;
  if (writeError) co_return writeFailure(writeError, outcome);
  connection.fresh = false;

  auto& buffer = connection.buffer;
  if (auto ec = co_await readAtLeast(connection.stream, buffer, frame::kResponseHeadBytes))
    co_return failure(ec, "function instance failed during the call: ");
  const frame::ResponseHead head =
      frame::decodeResponseHead({static_cast<const char*>(buffer.data().data()), frame::kResponseHeadBytes});
  if (head.bodyBytes > options_.maxResponseBytes)
    co_return CallResult{CallStatus::payloadTooLarge, "function response larger than the limit"};
  // Checked again, after decoding, by functionAnswer; this bound only keeps
  // a hostile block from being read into memory.
  if (head.headerBytes > kMaxHandlerHeaderBlockBytes) co_return functionHeadersTooLarge();
  const std::size_t total = frame::kResponseHeadBytes + head.headerBytes + head.bodyBytes;
  if (auto ec = co_await readAtLeast(connection.stream, buffer, total))
    co_return failure(ec, "function instance failed during the call: ");
  const char* data = static_cast<const char*>(buffer.data().data());
  std::optional<HeaderList> headers = frame::decodeHeaders({data + frame::kResponseHeadBytes, head.headerBytes});
  std::string body(data + frame::kResponseHeadBytes + head.headerBytes, head.bodyBytes);
  buffer.consume(total);
  if (!headers) co_return CallResult{CallStatus::unavailable, "function instance sent a malformed answer"};
  outcome.reusable = true;
  co_return functionAnswer(head.status, std::move(*headers), std::move(body));
}

}  // namespace tinyfaas
