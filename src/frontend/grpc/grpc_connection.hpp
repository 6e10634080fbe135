#pragma once
// One client connection of the gRPC endpoint: HTTP/2 by nghttp2, served on
// the data plane, each TinyFaaS.Request stream turned into an Invocation.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/invoker.hpp"
#include "frontend/grpc/grpc_wire.hpp"
#include "util/async_sync.hpp"

struct nghttp2_session;

namespace tinyfaas {

struct GrpcLimits {
  // Largest request and response message (serialized protobuf).
  std::size_t maxMessageBytes = (1 << 20) + 1024;
  // Largest function input.
  std::size_t maxPayloadBytes = 1 << 20;
  // Calls in flight at once, and the bytes of their inputs together; past
  // either calls get RESOURCE_EXHAUSTED at once. Requests still arriving may
  // hold maxMessageBytes more, all connections together.
  std::size_t maxInFlight = 1024;
  std::size_t maxInFlightBytes = 32u << 20;
  // How long a connection may go without sending a byte while it owes us
  // its HTTP/2 preface or the rest of a request; then it is closed. An idle
  // connection with no request under way may stay (gRPC channels do).
  std::chrono::milliseconds stallTimeout{30'000};
};

// What the endpoint's connections share. Data plane only.
struct GrpcCalls {
  GrpcCalls(Invoker& invoker, GrpcLimits limits) : invoker(invoker), limits(limits) {}
  Invoker& invoker;
  const GrpcLimits limits;
  // Calls handed to the invoker, and their inputs, until the invoker
  // returns: a call whose client reset its stream still runs and still
  // counts, so resetting cannot start more than maxInFlight at once.
  std::size_t running = 0;
  std::size_t inputBytes = 0;
  std::size_t unanswered = 0;  // calls running whose client still waits
  // Requests not complete yet: their headers, message bytes and a fixed
  // share per stream, bounded by maxInFlightBytes + maxMessageBytes.
  std::size_t arriving = 0;
  bool refusing = false;  // draining: calls that arrive now get UNAVAILABLE
};

// Lives by shared_from_this while serve() runs or a call of it does. Every
// method runs on the data plane.
class GrpcConnection : public std::enable_shared_from_this<GrpcConnection> {
 public:
  GrpcConnection(boost::asio::ip::tcp::socket socket, std::shared_ptr<GrpcCalls> calls);
  ~GrpcConnection();
  GrpcConnection(const GrpcConnection&) = delete;
  GrpcConnection& operator=(const GrpcConnection&) = delete;

  // Serves until the client leaves, the connection breaks, or it is done
  // after drain() or close().
  boost::asio::awaitable<void> serve();
  // GOAWAY: the client opens no new streams; those begun are answered, then
  // the connection ends.
  void drain();
  // Answers every call of this connection still running UNAVAILABLE with
  // `reason`; their results are dropped when they arrive.
  void cutShort(std::string_view reason);
  // cutShort, GOAWAY, then the connection ends once that is written (within
  // a second even if the client does not read).
  void close(std::string_view reason);

 private:
  struct Stream {
    enum class State { receiving, running, answered };
    State state = State::receiving;
    std::string method;
    std::string path;
    std::string contentType;
    HeaderList metadata;
    std::size_t headerBytes = 0;
    std::string body;
    std::size_t held = 0;     // counted in calls_->arriving
    bool overBudget = false;  // refused once its headers are in
    std::string function;     // once running
    std::string response;     // the answer's message, sent as the client's window allows
    std::size_t responseSent = 0;
    bool resetAfterAnswer = false;  // answered before the request was complete
  };
  friend struct Nghttp2Callbacks;

  void beginStream(std::int32_t id);
  void setState(Stream& stream, Stream::State state);
  // Counts `bytes` more of an arriving request against the budget; false
  // (and the stream marked over budget) when they do not fit.
  bool hold(Stream& stream, std::size_t bytes);
  void onHeadersEnd(std::int32_t id, bool requestEnds);
  int onHeader(std::int32_t id, std::string_view name, std::string_view value);
  int onData(std::int32_t id, std::string_view bytes);
  void onRequestEnd(std::int32_t id);
  void onStreamClose(std::int32_t id);

  boost::asio::awaitable<void> run(std::int32_t id, Invocation invocation, std::size_t inputBytes);
  void answer(std::int32_t id, CallResult result);
  void refuse(std::int32_t id, grpcwire::Code code, std::string_view reason);
  void refuseArriving(std::int32_t id, grpcwire::Code code, std::string_view reason);
  void onAnswerSent(std::int32_t id);
  void respond(std::int32_t id, Stream& stream, grpcwire::Code code, std::string_view reason);
  void release(Stream& stream);

  // Writes what nghttp2 has to send; coalesced to one write per turn of the
  // data plane.
  void scheduleFlush();
  void flush();
  void shutDownSocket();
  // Arms the stall check while the client owes us bytes.
  void watchForStalls();
  bool owesBytes() const { return !heardFrom_ || arrivingStreams_ > 0; }

  boost::asio::ip::tcp::socket socket_;
  std::shared_ptr<GrpcCalls> calls_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<std::int32_t, Stream> streams_;
  std::string pending_;  // nghttp2's output not handed to the socket yet
  std::string writing_;  // the write in progress
  bool flushScheduled_ = false;
  bool closing_ = false;
  boost::asio::steady_timer closeDeadline_;
  bool heardFrom_ = false;           // a whole frame arrived (the preface was fine)
  std::size_t arrivingStreams_ = 0;  // streams in State::receiving
  std::chrono::steady_clock::time_point lastRead_;
  boost::asio::steady_timer stallCheck_;  // set at most once per stallTimeout, not per read
  bool stallCheckArmed_ = false;
  WaitGroup running_;  // the calls' coroutines
};

}  // namespace tinyfaas
