#include "grpc_load.hpp"

// nghttp2 does HTTP/2 (framing, HPACK, flow control, stream states) and
// never touches the socket: bytes read go into nghttp2_session_mem_recv,
// which calls back per header, data chunk and closed stream; what it has to
// send comes out of nghttp2_session_mem_send and is written by one
// async_write at a time (writes asked for meanwhile are sent together).
//
// A call: its client submits a stream and sleeps on a timer set to its
// deadline; the connection fills in the call's Answer as frames arrive and
// cancels the timer when the stream closes or the connection breaks. A
// client woken by the deadline instead resets the stream.
//
// Messages are written and read with protobuf's wire-format primitives, not
// classes generated from tinyfaas.proto: the loader needs no gRPC stubs.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/stubs/common.h>
#include <google/protobuf/wire_format_lite.h>
#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "frontend/grpc/grpc_wire.hpp"
#include "frontend/grpc/nghttp2_text.hpp"

namespace tinyfaas::bench {
namespace asio = boost::asio;
using asio::ip::tcp;
using google::protobuf::internal::WireFormatLite;
using nghttp2text::field;
using nghttp2text::text;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr int kFunctionIdentifierField = 1;  // Data
constexpr int kDataField = 2;                // Data
constexpr int kResponseField = 1;            // Response
// Stream and connection windows: the largest answers (the daemon allows
// 1 MiB) need no WINDOW_UPDATE round trip on the way.
constexpr std::int32_t kWindow = 16 << 20;
constexpr std::size_t kReadBufferBytes = 16 * 1024;
// grpc-timeout allows at most 8 digits.
constexpr std::chrono::milliseconds::rep kMaxTimeoutMs = 99'999'999;

// A Data{functionIdentifier, data} as one length-prefixed message.
std::string encodeRequest(const std::string& function, const std::string& payload) {
  std::string message;
  {
    google::protobuf::io::StringOutputStream out(&message);
    google::protobuf::io::CodedOutputStream coded(&out);
    // proto3 leaves out empty strings.
    if (!function.empty()) WireFormatLite::WriteString(kFunctionIdentifierField, function, &coded);
    if (!payload.empty()) WireFormatLite::WriteString(kDataField, payload, &coded);
  }  // the stream gives back what it did not write on destruction
  return grpcwire::messagePrefix(static_cast<std::uint32_t>(message.size())) + message;
}

bool isResponse(std::string_view message) {
  google::protobuf::io::CodedInputStream input(reinterpret_cast<const std::uint8_t*>(message.data()),
                                               static_cast<int>(message.size()));
  std::string response;
  while (const std::uint32_t tag = input.ReadTag()) {
    const bool lengthDelimited = WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
    if (lengthDelimited && WireFormatLite::GetTagFieldNumber(tag) == kResponseField) {
      if (!WireFormatLite::ReadString(&input, &response)) return false;
    } else if (!WireFormatLite::SkipField(&input, tag)) {
      return false;
    }
  }
  // As generated code does: a proto3 string that is not UTF-8 fails the parse.
  return input.ConsumedEntireMessage() && google::protobuf::internal::IsStructurallyValidUTF8(response);
}

// The body of a unary answer: exactly one uncompressed Response message.
bool isResponseBody(std::string_view body) {
  const auto message = grpcwire::onlyMessage(body);
  return message && !message->compressed && isResponse(message->message);
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// grpc-message is percent-encoded; a '%' not followed by two hex digits
// stays as it is (gRPC's PROTOCOL-HTTP2.md).
std::string percentDecoded(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const int high = text[i] == '%' && i + 2 < text.size() ? hexValue(text[i + 1]) : -1;
    const int low = high >= 0 ? hexValue(text[i + 2]) : -1;
    if (low < 0) {
      out += text[i];
      continue;
    }
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

std::string timeoutHeader(std::chrono::milliseconds timeout) {
  return std::to_string(std::clamp<std::chrono::milliseconds::rep>(timeout.count(), 0, kMaxTimeoutMs)) + "m";
}

// What every call of a run sends, but the deadline.
struct RequestParts {
  std::string authority;
  std::string message;  // length-prefixed Data
};

// What came back on one call's stream, filled in by its connection.
struct Answer {
  bool closed = false;  // the stream is over, or the connection broke (lost)
  bool lost = false;
  std::string lostReason;
  std::uint32_t resetCode = NGHTTP2_NO_ERROR;  // the HTTP/2 error the stream closed with
  std::string httpStatus;
  std::optional<int> grpcStatus;
  std::string grpcMessage;  // percent-encoded
  std::string body;
};

// A call in flight: its answer, and the timer its client sleeps on until
// the deadline or until the connection cancels it.
struct Waiter {
  Waiter(const asio::any_io_executor& executor, Clock::time_point deadline) : wake(executor, deadline) {}
  Answer answer;
  asio::steady_timer wake;
};

}  // namespace

// One HTTP/2 connection, used by the clients of one loop only. Lives by
// shared_ptr: its reader holds it while the connection is open, a client
// while its call runs.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(const asio::any_io_executor& executor, std::shared_ptr<const RequestParts> request);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects in the background; calls may start at once.
  static std::shared_ptr<Connection> open(const asio::any_io_executor& executor, const tcp::endpoint& endpoint,
                                          std::shared_ptr<const RequestParts> request);
  // Neither broken nor told by the server (GOAWAY) to start no more streams.
  bool usable() const { return !broken_ && nghttp2_session_check_request_allowed(session_) != 0; }
  // The stream's id, or a negative nghttp2 error. The waiter must stay
  // until its answer is closed or cancel() has been called.
  std::int32_t start(Waiter& waiter, const std::string& timeout);
  // The client gave up on the call: RST_STREAM CANCEL.
  void cancel(std::int32_t id);

 private:
  struct Stream {
    Waiter* waiter = nullptr;
    std::size_t sent = 0;  // of the request message
  };
  friend struct Nghttp2Callbacks;

  static asio::awaitable<void> run(std::shared_ptr<Connection> self, tcp::endpoint endpoint);
  void onHeader(std::int32_t id, std::string_view name, std::string_view value);
  void onData(std::int32_t id, std::string_view bytes);
  void onStreamClose(std::int32_t id, std::uint32_t errorCode);
  ssize_t readRequest(std::int32_t id, std::uint8_t* buffer, std::size_t length, std::uint32_t* flags);
  void flush();
  // Ends every stream as lost and closes the socket.
  void fail(const std::string& reason);

  tcp::socket socket_;
  std::shared_ptr<const RequestParts> request_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<std::int32_t, Stream> streams_;
  std::string pending_;  // nghttp2's output not handed to the socket yet
  std::string writing_;  // the write in progress
  bool connected_ = false;
  bool broken_ = false;
};

// nghttp2's C callbacks, forwarding to the connection.
struct Nghttp2Callbacks {
  static Connection& of(void* user) { return *static_cast<Connection*>(user); }

  // Response headers and trailers alike: a trailers-only answer puts the
  // status in the headers.
  static int header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t nameLength,
                    const std::uint8_t* value, std::size_t valueLength, std::uint8_t, void* user) {
    if (frame->hd.type == NGHTTP2_HEADERS)
      of(user).onHeader(frame->hd.stream_id, text(name, nameLength), text(value, valueLength));
    return 0;
  }

  static int dataChunk(nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* data, std::size_t length,
                       void* user) {
    of(user).onData(id, text(data, length));
    return 0;
  }

  static int streamClosed(nghttp2_session*, std::int32_t id, std::uint32_t errorCode, void* user) {
    of(user).onStreamClose(id, errorCode);
    return 0;
  }

  static ssize_t readRequest(nghttp2_session*, std::int32_t id, std::uint8_t* buffer, std::size_t length,
                             std::uint32_t* flags, nghttp2_data_source*, void* user) {
    return of(user).readRequest(id, buffer, length, flags);
  }
};

Connection::Connection(const asio::any_io_executor& executor, std::shared_ptr<const RequestParts> request)
    : socket_(executor), request_(std::move(request)) {
  nghttp2_session_callbacks* callbacks = nullptr;
  if (nghttp2_session_callbacks_new(&callbacks) != 0) throw std::bad_alloc();
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &Nghttp2Callbacks::header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &Nghttp2Callbacks::dataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &Nghttp2Callbacks::streamClosed);
  const int created = nghttp2_session_client_new(&session_, callbacks, this);
  nghttp2_session_callbacks_del(callbacks);
  if (created != 0) throw std::bad_alloc();

  const std::array<nghttp2_settings_entry, 2> settings{{
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<std::uint32_t>(kWindow)},
  }};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kWindow);
}

Connection::~Connection() {
  // Waiters still listed belong to clients destroyed with their loop: the
  // session must not reach them while it is freed.
  streams_.clear();
  nghttp2_session_del(session_);
}

std::shared_ptr<Connection> Connection::open(const asio::any_io_executor& executor, const tcp::endpoint& endpoint,
                                             std::shared_ptr<const RequestParts> request) {
  auto connection = std::make_shared<Connection>(executor, std::move(request));
  asio::co_spawn(executor, run(connection, endpoint), asio::detached);
  return connection;
}

asio::awaitable<void> Connection::run(std::shared_ptr<Connection> self, tcp::endpoint endpoint) {
  auto [connectError] = co_await self->socket_.async_connect(endpoint, kTuple);
  if (connectError) {
    self->fail("connect: " + connectError.message());
    co_return;
  }
  boost::system::error_code ignored;
  self->socket_.set_option(tcp::no_delay(true), ignored);
  self->connected_ = true;
  self->flush();  // the preface, and the calls submitted while connecting
  std::array<std::uint8_t, kReadBufferBytes> buffer{};
  while (!self->broken_) {
    auto [readError, n] = co_await self->socket_.async_read_some(asio::buffer(buffer), kTuple);
    if (readError) {
      self->fail(readError == asio::error::eof ? "the server closed the connection" : "read: " + readError.message());
      co_return;
    }
    const ssize_t used = nghttp2_session_mem_recv(self->session_, buffer.data(), n);
    if (used < 0) {
      self->fail(std::string("HTTP/2: ") + nghttp2_strerror(static_cast<int>(used)));
      co_return;
    }
    self->flush();  // SETTINGS and PING acknowledgements, WINDOW_UPDATEs
  }
}

std::int32_t Connection::start(Waiter& waiter, const std::string& timeout) {
  const std::array headers{field(":method", "POST"),
                           field(":scheme", "http"),
                           field(":path", grpcwire::kRequestPath),
                           field(":authority", request_->authority),
                           field("content-type", "application/grpc"),
                           field("te", "trailers"),
                           field("grpc-timeout", timeout),
                           field("user-agent", "tinyfaas-bench")};
  nghttp2_data_provider body{};
  body.read_callback = &Nghttp2Callbacks::readRequest;
  const std::int32_t id = nghttp2_submit_request(session_, nullptr, headers.data(), headers.size(), &body, nullptr);
  if (id < 0) return id;
  streams_.emplace(id, Stream{&waiter});
  flush();
  return id;
}

void Connection::cancel(std::int32_t id) {
  if (streams_.erase(id) == 0 || broken_) return;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  flush();
}

void Connection::onHeader(std::int32_t id, std::string_view name, std::string_view value) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  Answer& answer = it->second.waiter->answer;
  if (name == ":status") {
    answer.httpStatus = value;
  } else if (name == "grpc-status") {
    int code = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), code);
    answer.grpcStatus = ec == std::errc() && end == value.data() + value.size() ? code : -1;
  } else if (name == "grpc-message") {
    answer.grpcMessage = value;
  }
}

void Connection::onData(std::int32_t id, std::string_view bytes) {
  auto it = streams_.find(id);
  if (it != streams_.end()) it->second.waiter->answer.body.append(bytes);
}

void Connection::onStreamClose(std::int32_t id, std::uint32_t errorCode) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;  // cancelled by its client
  Waiter& waiter = *it->second.waiter;
  streams_.erase(it);
  waiter.answer.closed = true;
  waiter.answer.resetCode = errorCode;
  waiter.wake.cancel();
}

ssize_t Connection::readRequest(std::int32_t id, std::uint8_t* buffer, std::size_t length, std::uint32_t* flags) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  const std::string& message = request_->message;
  std::size_t& sent = it->second.sent;
  const std::size_t n = std::min(length, message.size() - sent);
  std::copy_n(message.data() + sent, n, buffer);
  sent += n;
  if (sent == message.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

void Connection::flush() {
  if (!connected_ || broken_) return;
  for (;;) {
    const std::uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) return fail(std::string("HTTP/2: ") + nghttp2_strerror(static_cast<int>(n)));
    if (n == 0) break;
    pending_.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
  }
  if (!writing_.empty() || pending_.empty()) return;  // the write in progress picks pending_ up
  std::swap(writing_, pending_);
  asio::async_write(socket_, asio::buffer(writing_),
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      self->writing_.clear();
                      if (ec) return self->fail("write: " + ec.message());
                      self->flush();
                    });
}

void Connection::fail(const std::string& reason) {
  if (broken_) return;
  broken_ = true;
  for (auto& entry : streams_) {
    Answer& answer = entry.second.waiter->answer;
    answer.closed = true;
    answer.lost = true;
    answer.lostReason = reason;
    entry.second.waiter->wake.cancel();
  }
  streams_.clear();
  boost::system::error_code ignored;
  socket_.close(ignored);
}

namespace {

// The connections of one loop, touched only by its thread.
struct LoopConnections {
  std::vector<std::weak_ptr<Connection>> slots;
  std::size_t clients = 0;  // clients seen so far, dealt round-robin onto the slots
};

}  // namespace

struct GrpcPlan::Impl {
  tcp::endpoint endpoint;
  std::shared_ptr<const RequestParts> request;
  std::vector<LoopConnections> loops;

  // The slot's connection, (re)opened when there is none or it is unusable.
  std::shared_ptr<Connection> connection(LoopConnections& loop, std::size_t slot,
                                         const asio::any_io_executor& executor) const {
    auto connection = loop.slots[slot].lock();
    if (!connection || !connection->usable()) {
      connection = Connection::open(executor, endpoint, request);
      loop.slots[slot] = connection;
    }
    return connection;
  }
};

GrpcPlan::GrpcPlan(tcp::endpoint endpoint, std::string authority, const std::string& function,
                   const std::string& payload, unsigned connections, unsigned loops)
    : impl_(std::make_unique<Impl>()) {
  impl_->endpoint = endpoint;
  impl_->request = std::make_shared<RequestParts>(RequestParts{std::move(authority), encodeRequest(function, payload)});
  impl_->loops.resize(loops);
  for (unsigned i = 0; i < loops; ++i) {
    const unsigned share = connections / loops + (i < connections % loops ? 1 : 0);
    impl_->loops[i].slots.resize(std::max(1u, share));
  }
}

GrpcPlan::~GrpcPlan() = default;

namespace {

struct Verdict {
  bool ok = false;
  bool answered = false;  // the server replied, with success or an error status
  std::string error;
};

Verdict judge(const Answer& answer, std::chrono::milliseconds timeout) {
  if (!answer.closed) {
    return {false, false, "gRPC status 4: deadline exceeded (" + std::to_string(timeout.count()) + " ms)"};
  }
  if (answer.lost) return {false, false, "gRPC status 14: " + answer.lostReason};
  if (answer.grpcStatus == 0) {
    if (isResponseBody(answer.body)) return {true, true, {}};
    return {false, true, "gRPC status 0 with an answer that is not one Response message"};
  }
  if (answer.grpcStatus) {
    return {false, true,
            "gRPC status " + std::to_string(*answer.grpcStatus) + ": " + percentDecoded(answer.grpcMessage)};
  }
  // No status at all: a reset stream was not answered (REFUSED_STREAM is
  // the server saying it never began the call).
  if (answer.resetCode != NGHTTP2_NO_ERROR) {
    return {false, false, std::string("stream reset by the server: ") + nghttp2_http2_strerror(answer.resetCode)};
  }
  return {false, true, "an answer without grpc-status (HTTP status " + answer.httpStatus + ")"};
}

// One call on `connection`: its answer, not closed if none came by `deadline`.
asio::awaitable<Answer> callOnce(std::shared_ptr<Connection> connection, std::string timeout,
                                 Clock::time_point deadline) {
  Waiter waiter(co_await asio::this_coro::executor, deadline);
  const std::int32_t id = connection->start(waiter, timeout);
  if (id < 0) {
    waiter.answer.closed = true;
    waiter.answer.lost = true;
    waiter.answer.lostReason = std::string("cannot start a stream: ") + nghttp2_strerror(id);
    co_return std::move(waiter.answer);
  }
  // Sending may already have ended the stream (refused after a GOAWAY).
  if (!waiter.answer.closed) co_await waiter.wake.async_wait(kTuple);
  if (!waiter.answer.closed) connection->cancel(id);
  co_return std::move(waiter.answer);
}

}  // namespace

asio::awaitable<void> runGrpcClient(ClientJob& job, const GrpcPlan& plan, unsigned loop) {
  const auto executor = co_await asio::this_coro::executor;
  GrpcPlan::Impl& impl = plan.impl();
  LoopConnections& connections = impl.loops.at(loop);
  const std::size_t slot = connections.clients++ % connections.slots.size();
  const std::string timeout = timeoutHeader(job.timeout);
  for (std::uint32_t seq = 0; seq < job.calls; ++seq) {
    const auto start = Clock::now();
    if (!job.mayStart(start)) break;
    auto connection = impl.connection(connections, slot, executor);
    const Answer answer = co_await callOnce(std::move(connection), timeout, start + job.timeout);
    const Verdict verdict = judge(answer, job.timeout);
    if (!verdict.error.empty()) job.noteError(verdict.error);
    job.record(seq, start, Clock::now(), verdict.ok, verdict.answered);
  }
}

}  // namespace tinyfaas::bench
