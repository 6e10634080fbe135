#include "frontend/grpc/grpc_connection.hpp"

// nghttp2 does HTTP/2 (framing, HPACK, flow control, stream states); it
// never touches the socket. Bytes read go into nghttp2_session_mem_recv,
// which calls back per header, data chunk and frame; what it has to send
// comes out of nghttp2_session_mem_send and is written by one async_write at
// a time. Everything runs on the data plane, so a call costs no thread hop:
// gRPC's C++ library ran each call on its own threads, which took about
// 70 µs of CPU per call and 250 µs of added latency (bench/README.md).
//
// A stream's life: headers and data arrive (receiving), the request ends
// and becomes an Invocation (running), the answer or a refusal is submitted
// (answered), nghttp2 reports the stream closed and it is forgotten. A
// stream the client resets while it runs is forgotten at once, and its
// result is dropped when it comes.

#include <nghttp2/nghttp2.h>

#include <array>
#include <chrono>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "core/async.hpp"
#include "core/function_name.hpp"
#include "frontend/grpc/nghttp2_text.hpp"
#include "util/header_names.hpp"

namespace tinyfaas {

namespace asio = boost::asio;
using nghttp2text::field;
using nghttp2text::text;

namespace {

// Reasons travel in the grpc-message trailer; clients cap the size of
// headers they accept (8 KiB by default in gRPC), and a reason is one line.
constexpr std::size_t kMaxReasonBytes = 1024;
// Longest function name quoted back in a NOT_FOUND reason.
constexpr std::size_t kMaxQuotedName = 80;
// Concurrent calls on one connection; more wait in the client.
constexpr std::uint32_t kMaxStreamsPerConnection = 1024;
// A request's headers, all together; more resets the stream.
constexpr std::size_t kMaxHeaderBytes = 16 * 1024;
// Flow-control windows: one full-size message per stream without waiting
// for a WINDOW_UPDATE, and a few of them per connection.
constexpr std::int32_t kStreamWindow = (1 << 20) + 4096;
constexpr std::int32_t kConnectionWindow = 4 << 20;
constexpr std::size_t kReadBufferBytes = 16 * 1024;
// What an arriving stream is counted at before its headers and message:
// the stream's own bookkeeping here and in nghttp2.
constexpr std::size_t kStreamShare = 512;
// How long close() waits for its last answers to be written.
constexpr std::chrono::seconds kCloseDeadline{1};

std::string notFoundReason(std::string_view name) {
  std::string quoted(name.substr(0, kMaxQuotedName));
  if (quoted.size() < name.size()) {
    while (!quoted.empty() && (static_cast<unsigned char>(quoted.back()) & 0xC0) == 0x80) quoted.pop_back();
    quoted += "...";
  }
  return "function " + quoted + " not found";
}

bool isGrpcContentType(std::string_view type) {
  // application/grpc, application/grpc+proto, application/grpc;charset=...
  constexpr std::string_view kGrpc = "application/grpc";
  return type.starts_with(kGrpc) &&
         (type.size() == kGrpc.size() || type[kGrpc.size()] == '+' || type[kGrpc.size()] == ';');
}

}  // namespace

// nghttp2's C callbacks, forwarding to the connection.
struct Nghttp2Callbacks {
  static GrpcConnection& of(void* user) { return *static_cast<GrpcConnection*>(user); }

  static int beginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
      of(user).beginStream(frame->hd.stream_id);
    return 0;
  }

  static int header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t nameLength,
                    const std::uint8_t* value, std::size_t valueLength, std::uint8_t, void* user) {
    // Trailers a client sends after its message carry nothing we use.
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    return of(user).onHeader(frame->hd.stream_id, text(name, nameLength), text(value, valueLength));
  }

  static int dataChunk(nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* data, std::size_t length,
                       void* user) {
    return of(user).onData(id, text(data, length));
  }

  static int frameReceived(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    of(user).heardFrom_ = true;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
      of(user).onHeadersEnd(frame->hd.stream_id, (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0);
    const bool request = frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA;
    if (request && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) of(user).onRequestEnd(frame->hd.stream_id);
    return 0;
  }

  static int frameSent(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type == NGHTTP2_HEADERS && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0)
      of(user).onAnswerSent(frame->hd.stream_id);
    return 0;
  }

  static int streamClosed(nghttp2_session*, std::int32_t id, std::uint32_t, void* user) {
    of(user).onStreamClose(id);
    return 0;
  }

  // The answer's message, as much as the client's window takes, then the
  // trailers that end the stream.
  static ssize_t readResponse(nghttp2_session* session, std::int32_t id, std::uint8_t* buffer, std::size_t length,
                              std::uint32_t* flags, nghttp2_data_source* source, void*) {
    auto& stream = *static_cast<GrpcConnection::Stream*>(source->ptr);
    const std::size_t n = std::min(length, stream.response.size() - stream.responseSent);
    std::copy_n(stream.response.data() + stream.responseSent, n, buffer);
    stream.responseSent += n;
    if (stream.responseSent == stream.response.size()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
      const std::array trailers{field("grpc-status", "0")};
      if (nghttp2_submit_trailer(session, id, trailers.data(), trailers.size()) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return static_cast<ssize_t>(n);
  }
};

GrpcConnection::GrpcConnection(asio::ip::tcp::socket socket, std::shared_ptr<GrpcCalls> calls)
    : socket_(std::move(socket)),
      calls_(std::move(calls)),
      closeDeadline_(socket_.get_executor()),
      stallCheck_(socket_.get_executor()),
      running_(socket_.get_executor()) {
  nghttp2_session_callbacks* callbacks = nullptr;
  if (nghttp2_session_callbacks_new(&callbacks) != 0) throw std::bad_alloc();
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, &Nghttp2Callbacks::beginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &Nghttp2Callbacks::header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &Nghttp2Callbacks::dataChunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &Nghttp2Callbacks::frameReceived);
  nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, &Nghttp2Callbacks::frameSent);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &Nghttp2Callbacks::streamClosed);
  const int created = nghttp2_session_server_new(&session_, callbacks, this);
  nghttp2_session_callbacks_del(callbacks);
  if (created != 0) throw std::bad_alloc();

  const std::array<nghttp2_settings_entry, 3> settings{{
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxStreamsPerConnection},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<std::uint32_t>(kStreamWindow)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<std::uint32_t>(kMaxHeaderBytes)},
  }};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
}

GrpcConnection::~GrpcConnection() {
  // Streams still here hold budget; the endpoint outlives this connection.
  for (auto& entry : streams_) release(entry.second);
  nghttp2_session_del(session_);
}

asio::awaitable<void> GrpcConnection::serve() {
  auto self = shared_from_this();
  flush();  // our SETTINGS
  lastRead_ = std::chrono::steady_clock::now();
  watchForStalls();
  std::array<std::uint8_t, kReadBufferBytes> buffer{};
  while (!closing_ && (nghttp2_session_want_read(session_) != 0 || nghttp2_session_want_write(session_) != 0)) {
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buffer), useTuple);
    if (ec) break;
    lastRead_ = std::chrono::steady_clock::now();
    const ssize_t used = nghttp2_session_mem_recv(session_, buffer.data(), n);
    if (used < 0) {
      // Not HTTP/2 (or broken): nghttp2 queued a GOAWAY saying why.
      spdlog::debug("gRPC endpoint: closing a connection: {}", nghttp2_strerror(static_cast<int>(used)));
      closing_ = true;
    }
    flush();
    watchForStalls();
  }
  // The peer is gone or broke the protocol, or we are done with it. Calls
  // still running keep their streams (and budget) until their results come
  // and are dropped; the socket closes once our last write is out.
  closing_ = true;
  if (writing_.empty()) shutDownSocket();
}

void GrpcConnection::beginStream(std::int32_t id) {
  auto [it, added] = streams_.try_emplace(id);
  if (!added) return;
  ++arrivingStreams_;
  hold(it->second, kStreamShare);
}

bool GrpcConnection::hold(Stream& stream, std::size_t bytes) {
  const GrpcLimits& limits = calls_->limits;
  if (stream.overBudget || calls_->arriving + bytes > limits.maxMessageBytes + limits.maxInFlightBytes) {
    stream.overBudget = true;
    return false;
  }
  stream.held += bytes;
  calls_->arriving += bytes;
  return true;
}

// Refused only now: nghttp2 takes an answer once the stream is open.
void GrpcConnection::onHeadersEnd(std::int32_t id, bool requestEnds) {
  auto it = streams_.find(id);
  if (it == streams_.end() || !it->second.overBudget || it->second.state != Stream::State::receiving) return;
  if (requestEnds) {
    refuse(id, grpcwire::Code::resourceExhausted, "too many bytes in calls in flight");
  } else {
    refuseArriving(id, grpcwire::Code::resourceExhausted, "too many bytes in calls in flight");
  }
}

void GrpcConnection::setState(Stream& stream, Stream::State state) {
  if (stream.state == Stream::State::receiving && state != Stream::State::receiving) --arrivingStreams_;
  stream.state = state;
}

int GrpcConnection::onHeader(std::int32_t id, std::string_view name, std::string_view value) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return 0;
  Stream& stream = it->second;
  stream.headerBytes += name.size() + value.size();
  if (stream.headerBytes > kMaxHeaderBytes) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // resets the stream
  if (!hold(stream, name.size() + value.size())) return 0;  // refused at the headers' end
  if (name == ":method") {
    stream.method = value;
  } else if (name == ":path") {
    stream.path = value;
  } else if (name == "content-type") {
    stream.contentType = value;
  } else if (grpcwire::isForwarded(name)) {
    std::string canonical = canonicalHeaderName(name);
    if (!canonical.empty()) stream.metadata.emplace_back(std::move(canonical), std::string(value));
  }
  return 0;
}

int GrpcConnection::onData(std::int32_t id, std::string_view bytes) {
  auto it = streams_.find(id);
  if (it == streams_.end() || it->second.state != Stream::State::receiving) return 0;
  Stream& stream = it->second;
  const GrpcLimits& limits = calls_->limits;
  if (stream.body.size() + bytes.size() > limits.maxMessageBytes + grpcwire::kMessagePrefixBytes) {
    refuseArriving(id, grpcwire::Code::resourceExhausted,
                   "the request is larger than " + std::to_string(limits.maxMessageBytes) + " bytes");
    return 0;
  }
  if (!hold(stream, bytes.size())) {
    refuseArriving(id, grpcwire::Code::resourceExhausted, "too many bytes in calls in flight");
    return 0;
  }
  stream.body.append(bytes);
  return 0;
}

void GrpcConnection::onRequestEnd(std::int32_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end() || it->second.state != Stream::State::receiving) return;
  Stream& stream = it->second;
  using grpcwire::Code;
  if (stream.method != "POST") return refuse(id, Code::unimplemented, "gRPC calls are POST requests");
  if (!isGrpcContentType(stream.contentType))
    return refuse(id, Code::unimplemented, "content-type must be application/grpc");
  if (stream.path != grpcwire::kRequestPath)
    return refuse(id, Code::unimplemented,
                  "unknown method " + stream.path + " (this endpoint serves TinyFaaS/Request)");

  auto parsed = grpcwire::parseRequestBody(stream.body);
  if (!parsed.data) return refuse(id, parsed.refusal.code, parsed.refusal.reason);
  grpcwire::Data& data = *parsed.data;
  if (!isValidFunctionName(data.functionIdentifier))
    return refuse(id, Code::notFound, notFoundReason(data.functionIdentifier));
  const GrpcLimits& limits = calls_->limits;
  if (data.data.size() > limits.maxPayloadBytes)
    return refuse(id, Code::resourceExhausted,
                  "payload larger than " + std::to_string(limits.maxPayloadBytes) + " bytes");
  if (calls_->refusing) return refuse(id, Code::unavailable, "tinyFaaS is shutting down");
  if (calls_->running >= limits.maxInFlight) return refuse(id, Code::resourceExhausted, "too many calls in flight");
  if (data.data.size() > limits.maxInFlightBytes - calls_->inputBytes)
    return refuse(id, Code::resourceExhausted, "too many bytes in calls in flight");

  release(stream);  // the request's bytes; the input's are counted from here
  setState(stream, Stream::State::running);
  stream.function = data.functionIdentifier;
  const std::size_t inputBytes = data.data.size();
  ++calls_->running;
  ++calls_->unanswered;
  calls_->inputBytes += inputBytes;
  Invocation invocation{std::move(data.functionIdentifier), std::move(data.data), std::move(stream.metadata)};
  running_.spawn(socket_.get_executor(), run(id, std::move(invocation), inputBytes), shared_from_this());
}

asio::awaitable<void> GrpcConnection::run(std::int32_t id, Invocation invocation, std::size_t inputBytes) {
  CallResult result = co_await calls_->invoker.invoke(std::move(invocation));
  --calls_->running;
  calls_->inputBytes -= inputBytes;
  answer(id, std::move(result));
}

void GrpcConnection::answer(std::int32_t id, CallResult result) {
  auto it = streams_.find(id);
  if (it == streams_.end() || it->second.state != Stream::State::running) return;  // reset or cut short
  Stream& stream = it->second;
  const grpcwire::Code code = grpcwire::statusOf(result);
  if (code != grpcwire::Code::ok) {
    if (result.status == CallStatus::notFound) result.body = notFoundReason(stream.function);
    return respond(id, stream, code, result.body);
  }
  // Response.response is a proto3 string: every client's parser would
  // reject the answer.
  if (!grpcwire::isValidUtf8(result.body)) {
    return respond(id, stream, grpcwire::Code::internal,
                   "the function's output is not valid UTF-8 (Response.response is a protobuf string)");
  }
  stream.response = grpcwire::encodeResponse(result.body);
  if (stream.response.size() > calls_->limits.maxMessageBytes + grpcwire::kMessagePrefixBytes) {
    stream.response.clear();
    return respond(id, stream, grpcwire::Code::resourceExhausted,
                   "the function's output is larger than " + std::to_string(calls_->limits.maxMessageBytes) + " bytes");
  }
  release(stream);
  setState(stream, Stream::State::answered);
  const std::array headers{field(":status", "200"), field("content-type", "application/grpc"),
                           field("grpc-accept-encoding", "identity")};
  nghttp2_data_provider body{};
  body.source.ptr = &stream;
  body.read_callback = &Nghttp2Callbacks::readResponse;
  if (nghttp2_submit_response(session_, id, headers.data(), headers.size(), &body) != 0) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
  }
  scheduleFlush();
}

void GrpcConnection::refuse(std::int32_t id, grpcwire::Code code, std::string_view reason) {
  auto it = streams_.find(id);
  if (it != streams_.end()) respond(id, it->second, code, reason);
}

void GrpcConnection::refuseArriving(std::int32_t id, grpcwire::Code code, std::string_view reason) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  respond(id, it->second, code, reason);
  it->second.resetAfterAnswer = true;
}

// The client is still sending its request: once it has the answer, tell it
// to stop (RFC 9113 8.1), as gRPC's own servers do after an early answer.
// Not sooner: a reset that arrives first is all the client sees.
void GrpcConnection::onAnswerSent(std::int32_t id) {
  auto it = streams_.find(id);
  if (it != streams_.end() && it->second.resetAfterAnswer)
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR);
}

// A status without a message: gRPC's trailers-only answer.
void GrpcConnection::respond(std::int32_t id, Stream& stream, grpcwire::Code code, std::string_view reason) {
  release(stream);
  setState(stream, Stream::State::answered);
  const std::string status = std::to_string(static_cast<int>(code));
  const std::string message = grpcwire::statusMessage(reason, kMaxReasonBytes);
  const std::array headers{field(":status", "200"), field("content-type", "application/grpc"),
                           field("grpc-status", status), field("grpc-message", message)};
  if (nghttp2_submit_response(session_, id, headers.data(), headers.size(), nullptr) != 0)
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
  scheduleFlush();
}

// Gives back what the stream holds of the endpoint's budget.
void GrpcConnection::release(Stream& stream) {
  calls_->arriving -= stream.held;
  stream.held = 0;
  stream.body.clear();
  stream.body.shrink_to_fit();
  if (stream.state == Stream::State::running) --calls_->unanswered;
}

void GrpcConnection::onStreamClose(std::int32_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  release(it->second);
  setState(it->second, Stream::State::answered);
  streams_.erase(it);
}

void GrpcConnection::drain() {
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                        NGHTTP2_NO_ERROR, nullptr, 0);
  scheduleFlush();
}

void GrpcConnection::cutShort(std::string_view reason) {
  for (auto& [id, stream] : streams_) {
    if (stream.state == Stream::State::running) respond(id, stream, grpcwire::Code::unavailable, reason);
  }
}

void GrpcConnection::close(std::string_view reason) {
  cutShort(reason);
  drain();
  closing_ = true;
  closeDeadline_.expires_after(kCloseDeadline);
  closeDeadline_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->shutDownSocket();
  });
}

void GrpcConnection::scheduleFlush() {
  if (flushScheduled_) return;
  flushScheduled_ = true;
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    self->flushScheduled_ = false;
    self->flush();
  });
}

void GrpcConnection::flush() {
  if (!socket_.is_open()) return;  // late answers to a peer that is gone
  for (;;) {
    const std::uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      // nghttp2 cannot go on (out of memory): what it wrote so far goes out,
      // then the connection ends.
      spdlog::warn("gRPC endpoint: closing a connection: {}", nghttp2_strerror(static_cast<int>(n)));
      closing_ = true;
      break;
    }
    if (n == 0) break;
    pending_.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
  }
  if (!writing_.empty()) return;  // the write in progress picks pending_ up
  const bool done = closing_ || (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0);
  if (pending_.empty()) {
    if (done) shutDownSocket();
    return;
  }
  std::swap(writing_, pending_);
  asio::async_write(socket_, asio::buffer(writing_),
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      self->writing_.clear();
                      if (ec) {
                        self->closing_ = true;
                        self->pending_.clear();
                        self->shutDownSocket();
                        return;
                      }
                      self->flush();
                    });
}

void GrpcConnection::watchForStalls() {
  if (stallCheckArmed_ || !owesBytes() || !socket_.is_open()) return;
  stallCheckArmed_ = true;
  stallCheck_.expires_at(lastRead_ + calls_->limits.stallTimeout);
  stallCheck_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    self->stallCheckArmed_ = false;
    if (ec || !self->owesBytes()) return;
    if (std::chrono::steady_clock::now() - self->lastRead_ >= self->calls_->limits.stallTimeout) {
      // A client dripping its preface or a request (or sending nothing)
      // would hold its share of the connections and bytes for good.
      spdlog::debug("gRPC endpoint: closing a connection that stalled mid-request");
      self->shutDownSocket();
      return;
    }
    self->watchForStalls();
  });
}

void GrpcConnection::shutDownSocket() {
  closeDeadline_.cancel();
  stallCheck_.cancel();
  boost::system::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace tinyfaas
