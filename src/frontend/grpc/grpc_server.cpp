// The gRPC endpoint's server, inside the gRPC module (grpc_api/grpc_module.hpp).
//
// How a call travels, and why.
//
// gRPC's callback API runs TinyFaaS.Request on one of gRPC's own threads and
// lets us answer later, from any thread, with ServerUnaryReactor::Finish. So
// Request only parses the message, validates the name, copies the metadata
// into an Invocation and hands it to the dispatcher, which runs it on the
// data plane; no gRPC thread ever waits for a function, and a slow call holds
// nothing but its own reactor.
//
// The method is registered "raw" (bytes in, bytes out) and the messages are
// parsed and serialized here: with generated message types, gRPC 1.51
// answers a request protobuf cannot parse (a string field that is not UTF-8)
// with UNIMPLEMENTED, as if the method did not exist; here it gets
// INVALID_ARGUMENT. It also lets the payload move into the Invocation
// instead of being copied out of a const message.
//
// Every call must be finished exactly once, or gRPC never calls OnDone and
// Server::Shutdown() waits for it forever. Three parties may want to finish a
// call: the data plane when the result arrives, gRPC through OnCancel (the
// client gave up, its deadline passed, or the server is shutting down), and
// stop(). An atomic flag in the call decides who wins; the others drop their
// answer. The result may arrive long after the frontend and the gRPC server
// are gone (a call keeps running on the data plane after stop()), so the
// completion holds only a shared reference to the call and its table, never
// to the frontend.
//
// stop() must not need the data plane: the daemon calls it on the data-plane
// thread, and Shutdown() blocks until every call is finished. So the calls in
// flight live in a table shared with the gRPC threads (one mutex, two short
// critical sections per call), and stop() closes the table and answers every
// call in it itself before shutting the server down.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <exception>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <grpcpp/server_posix.h>

#include "core/function_name.hpp"
#include "frontend/grpc/grpc_log.hpp"
#include "grpc_api/grpc_module.hpp"
#include "tinyfaas.grpc.pb.h"
#include "util/header_names.hpp"

namespace tinyfaas {
namespace {

namespace pb = openfogstack::tinyfaas::tinyfaas;

// Reasons travel in the grpc-message trailer; clients cap the size of
// headers they accept (8 KiB by default in gRPC), and a reason is one line.
constexpr std::size_t kMaxReasonBytes = 1024;
// Longest function name quoted back in a NOT_FOUND reason.
constexpr std::size_t kMaxQuotedName = 80;
// Concurrent calls on one HTTP/2 connection; more wait in the client.
constexpr std::size_t kMaxStreamsPerConnection = 1024;

// Cuts `text` to at most `limit` bytes without splitting a UTF-8 sequence
// (clients decode the status message as UTF-8).
std::string capped(std::string text, std::size_t limit) {
  if (text.size() <= limit) return text;
  std::size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  text.resize(end);
  return text;
}

// RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool isValidUtf8(std::string_view text) {
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      if (c == 0xE0) low = 0xA0;   // overlong
      if (c == 0xED) high = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      if (c == 0xF0) low = 0x90;   // overlong
      if (c == 0xF4) high = 0x8F;  // above U+10FFFF
    } else {
      return false;
    }
    if (n - i < length) return false;
    const auto second = static_cast<unsigned char>(text[i + 1]);
    if (second < low || second > high) return false;
    for (std::size_t k = 2; k < length; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return false;
    }
    i += length;
  }
  return true;
}

// Metadata that describes the gRPC transport, not the call: pseudo-headers
// (":authority"), content-type and te (always "application/grpc" and
// "trailers"), gRPC's own keys (grpc-timeout, grpc-accept-encoding, ...), and
// binary values (*-bin), which are not text a function could use.
bool isForwarded(std::string_view key) {
  if (key.empty() || key.front() == ':') return false;
  if (key == "content-type" || key == "te") return false;
  if (key.starts_with("grpc-")) return false;
  if (key.ends_with("-bin")) return false;
  return true;
}

HeaderList headersOf(const grpc::CallbackServerContext& context) {
  HeaderList headers;
  const auto& metadata = context.client_metadata();
  headers.reserve(metadata.size());
  for (const auto& [key, value] : metadata) {
    const std::string_view name(key.data(), key.size());
    if (!isForwarded(name)) continue;
    std::string canonical = canonicalHeaderName(name);
    if (canonical.empty()) continue;
    headers.emplace_back(std::move(canonical), std::string(value.data(), value.size()));
  }
  return headers;
}

std::string notFoundReason(std::string_view name) {
  std::string quoted = capped(std::string(name), kMaxQuotedName);
  if (quoted.size() < name.size()) quoted += "...";
  return "function " + quoted + " not found";
}

grpc::StatusCode toStatusCode(CallStatus status) {
  switch (status) {
    case CallStatus::ok: return grpc::StatusCode::OK;
    case CallStatus::notFound: return grpc::StatusCode::NOT_FOUND;
    case CallStatus::functionError: return grpc::StatusCode::INTERNAL;
    case CallStatus::unavailable: return grpc::StatusCode::UNAVAILABLE;
    case CallStatus::timeout: return grpc::StatusCode::DEADLINE_EXCEEDED;
    case CallStatus::overloaded: return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case CallStatus::payloadTooLarge: return grpc::StatusCode::RESOURCE_EXHAUSTED;
  }
  return grpc::StatusCode::INTERNAL;
}

// The status a function chose, as google.rpc.Code maps HTTP (code.proto):
// a 2xx is the function's output, anything else its error with the body as
// the message.
grpc::StatusCode toStatusCode(unsigned code) {
  if (code >= 200 && code < 300) return grpc::StatusCode::OK;
  switch (code) {
    case 400: return grpc::StatusCode::INVALID_ARGUMENT;
    case 401: return grpc::StatusCode::UNAUTHENTICATED;
    case 403: return grpc::StatusCode::PERMISSION_DENIED;
    case 404: return grpc::StatusCode::NOT_FOUND;
    case 409: return grpc::StatusCode::ABORTED;
    case 412: return grpc::StatusCode::FAILED_PRECONDITION;
    case 416: return grpc::StatusCode::OUT_OF_RANGE;
    case 429: return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case 499: return grpc::StatusCode::CANCELLED;
    case 501: return grpc::StatusCode::UNIMPLEMENTED;
    case 503: return grpc::StatusCode::UNAVAILABLE;
    case 504: return grpc::StatusCode::DEADLINE_EXCEEDED;
    default: break;
  }
  if (code >= 400 && code < 500) return grpc::StatusCode::FAILED_PRECONDITION;
  if (code >= 500) return grpc::StatusCode::INTERNAL;
  return grpc::StatusCode::UNKNOWN;  // 3xx: gRPC has no redirects
}

grpc::StatusCode toStatusCode(const CallResult& result) {
  return result.code != 0 ? toStatusCode(result.code) : toStatusCode(result.status);
}

class CallTable;

// One RPC. Created on a gRPC thread; finish() may run on any thread, once.
// Owned by itself (self_) until gRPC calls OnDone, and by whoever still holds
// a reference (the data-plane completion, the table) after that.
class Call final : public grpc::ServerUnaryReactor {
 public:
  Call(std::shared_ptr<CallTable> table, grpc::ByteBuffer* response) : table_(std::move(table)), response_(response) {}

  static std::shared_ptr<Call> start(std::shared_ptr<CallTable> table, grpc::ByteBuffer* response) {
    auto call = std::make_shared<Call>(std::move(table), response);
    call->self_ = call;
    return call;
  }

  // Sends the answer unless the call was already answered; `body` is the
  // output for OK, else the status message.
  void finish(grpc::StatusCode code, std::string body);

  void OnCancel() override { finish(grpc::StatusCode::CANCELLED, "call cancelled"); }

  // gRPC's last word on this call: it no longer touches the reactor or the
  // response. Whoever else still holds the call only reads finished_.
  void OnDone() override { auto last = std::move(self_); }

 private:
  std::shared_ptr<CallTable> table_;
  grpc::ByteBuffer* response_;  // gRPC's, valid until Finish
  std::atomic<bool> finished_{false};
  std::shared_ptr<Call> self_;
};

// The calls in flight, shared by the gRPC threads (admit), whoever finishes a
// call (remove) and stop() (close). Outlives the frontend while calls do.
class CallTable {
 public:
  enum class Admission { admitted, stopping, full, fullBytes };

  CallTable(std::size_t limit, std::size_t byteLimit) : limit_(limit), byteLimit_(byteLimit) {}

  // `bytes`: the call's input, held until the call is finished.
  Admission admit(const std::shared_ptr<Call>& call, std::size_t bytes) {
    std::lock_guard lock(mutex_);
    if (closed_) return Admission::stopping;
    if (calls_.size() >= limit_) return Admission::full;
    if (bytes > byteLimit_ - bytes_) return Admission::fullBytes;
    calls_.emplace(call.get(), Entry{call, bytes});
    bytes_ += bytes;
    return Admission::admitted;
  }

  void remove(const Call* call) {
    std::lock_guard lock(mutex_);
    if (auto it = calls_.find(call); it != calls_.end()) {
      bytes_ -= it->second.bytes;
      calls_.erase(it);
    }
  }

  std::size_t size() {
    std::lock_guard lock(mutex_);
    return calls_.size();
  }

  // Refuses further calls.
  void refuse() {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }

  // Refuses further calls and hands over those in flight.
  std::vector<std::shared_ptr<Call>> close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    std::vector<std::shared_ptr<Call>> pending;
    pending.reserve(calls_.size());
    for (auto& [key, entry] : calls_) pending.push_back(std::move(entry.call));
    calls_.clear();
    bytes_ = 0;
    return pending;
  }

 private:
  struct Entry {
    std::shared_ptr<Call> call;
    std::size_t bytes;
  };
  std::mutex mutex_;
  bool closed_ = false;
  const std::size_t limit_;
  const std::size_t byteLimit_;
  std::size_t bytes_ = 0;  // inputs of the calls in calls_
  std::unordered_map<const Call*, Entry> calls_;
};

void Call::finish(grpc::StatusCode code, std::string body) {
  if (finished_.exchange(true, std::memory_order_acq_rel)) return;
  table_->remove(this);
  if (code == grpc::StatusCode::OK) {
    // Response.response is a proto3 string: protobuf would log an error per
    // message and every client's parser would reject the answer.
    if (!isValidUtf8(body)) {
      Finish(grpc::Status(grpc::StatusCode::INTERNAL,
                          "the function's output is not valid UTF-8 (Response.response is a protobuf string)"));
      return;
    }
    pb::Response message;
    message.set_response(std::move(body));
    bool ownBuffer = false;
    Finish(grpc::SerializationTraits<pb::Response>::Serialize(message, response_, &ownBuffer));
    return;
  }
  Finish(grpc::Status(code, capped(std::move(body), kMaxReasonBytes)));
}

// Runs on gRPC's threads; never blocks.
class Service final : public pb::TinyFaaS::WithRawCallbackMethod_Request<pb::TinyFaaS::Service> {
 public:
  Service(CallDispatcher dispatch, std::shared_ptr<CallTable> table, std::size_t maxPayloadBytes)
      : dispatch_(std::move(dispatch)), table_(std::move(table)), maxPayloadBytes_(maxPayloadBytes) {}

  grpc::ServerUnaryReactor* Request(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                    grpc::ByteBuffer* response) override {
    auto call = Call::start(table_, response);
    pb::Data data;
    grpc::ByteBuffer bytes(*request);  // shares the slices; parsing consumes it
    if (!grpc::SerializationTraits<pb::Data>::Deserialize(&bytes, &data).ok()) {
      call->finish(grpc::StatusCode::INVALID_ARGUMENT,
                   "the request is not a TinyFaaS Data message (its strings must be UTF-8)");
      return call.get();
    }
    const std::string name = data.functionidentifier();
    if (!isValidFunctionName(name)) {
      call->finish(grpc::StatusCode::NOT_FOUND, notFoundReason(name));
      return call.get();
    }
    if (data.data().size() > maxPayloadBytes_) {
      call->finish(grpc::StatusCode::RESOURCE_EXHAUSTED,
                   "payload larger than " + std::to_string(maxPayloadBytes_) + " bytes");
      return call.get();
    }
    switch (table_->admit(call, data.data().size())) {
      case CallTable::Admission::admitted: break;
      case CallTable::Admission::stopping:
        call->finish(grpc::StatusCode::UNAVAILABLE, "tinyFaaS is shutting down");
        return call.get();
      case CallTable::Admission::full:
        call->finish(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many calls in flight");
        return call.get();
      case CallTable::Admission::fullBytes:
        call->finish(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many bytes in calls in flight");
        return call.get();
    }

    Invocation invocation{name, std::move(*data.mutable_data()), headersOf(*context)};
    dispatch_(std::move(invocation), [call, name](CallResult result) {
      if (result.status == CallStatus::notFound) result.body = notFoundReason(name);
      call->finish(toStatusCode(result), std::move(result.body));
    });
    return call.get();
  }

 private:
  CallDispatcher dispatch_;
  std::shared_ptr<CallTable> table_;
  std::size_t maxPayloadBytes_;
};

class GrpcServerImpl final : public GrpcServer {
 public:
  GrpcServerImpl(std::unique_ptr<Service> service, std::shared_ptr<CallTable> table,
                 std::unique_ptr<grpc::Server> server)
      : service_(std::move(service)), table_(std::move(table)), server_(std::move(server)) {}

  ~GrpcServerImpl() override { stop(); }

  void adopt(int fd) override { grpc::AddInsecureChannelFromFd(server_.get(), fd); }

  void stopAccepting() override {
    if (draining_.joinable() || stopped_) return;
    // Calls that race in meanwhile get UNAVAILABLE.
    table_->refuse();
    // Shutdown() sends GOAWAY on every connection at once, then blocks
    // until every call is finished: on a thread of its own, since the calls
    // finish on the data plane, which may be the caller.
    draining_ = std::thread([server = server_.get()] { server->Shutdown(); });
  }

  std::size_t callsInFlight() const override { return table_->size(); }

  void cutShort(std::string_view reason) override {
    for (const auto& call : table_->close()) call->finish(grpc::StatusCode::UNAVAILABLE, std::string(reason));
  }

  void stop() override {
    if (stopped_) return;
    stopped_ = true;
    cutShort("tinyFaaS is shutting down");
    // Every call is answered now, or is being answered by a gRPC thread, so
    // a Shutdown() already waiting returns; else an immediate deadline
    // cancels whatever raced in (OnCancel answers those). Either way this
    // returns as soon as gRPC has delivered the OnDones.
    if (draining_.joinable()) {
      draining_.join();
    } else {
      server_->Shutdown(std::chrono::system_clock::now());
    }
    server_->Wait();
  }

 private:
  // Declared before server_: the server is destroyed first and calls into
  // the service until it is.
  std::unique_ptr<Service> service_;
  std::shared_ptr<CallTable> table_;
  std::unique_ptr<grpc::Server> server_;
  bool stopped_ = false;
  std::thread draining_;  // runs Shutdown() after stopAccepting()
};

int clampToInt(std::size_t value) { return static_cast<int>(std::min<std::size_t>(value, INT_MAX)); }

}  // namespace

boost::system::result<std::unique_ptr<GrpcServer>, std::string> grpcmodule::createServer(CallDispatcher dispatch,
                                                                                         GrpcServerOptions options) {
  grpcfe::routeGrpcLogsToSpdlog();

  auto table = std::make_shared<CallTable>(std::max<std::size_t>(options.maxInFlight, 1), options.maxInFlightBytes);
  auto service = std::make_unique<Service>(std::move(dispatch), table, options.maxPayloadBytes);

  grpc::ServerBuilder builder;
  builder.RegisterService(service.get());
  builder.SetMaxReceiveMessageSize(clampToInt(options.maxMessageBytes));
  builder.SetMaxSendMessageSize(clampToInt(options.maxMessageBytes));
  // The table bounds calls overall; this keeps one connection from taking
  // all of them (a client queues its calls beyond it instead of failing).
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, clampToInt(kMaxStreamsPerConnection));

  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) return std::string("gRPC could not start its server");
  return std::unique_ptr<GrpcServer>(
      std::make_unique<GrpcServerImpl>(std::move(service), std::move(table), std::move(server)));
}

}  // namespace tinyfaas
