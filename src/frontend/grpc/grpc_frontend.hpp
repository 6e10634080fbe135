#pragma once
// gRPC endpoint: TinyFaaS.Request(Data{functionIdentifier, data}) runs the
// function and answers Response{response} (proto/tinyfaas.proto, upstream's
// wire contract). The port is bound at create(); gRPC itself lives in the
// gRPC module (grpc_api/grpc_module.hpp), loaded when the first client connects, so a
// node no gRPC client talks to never maps gRPC's libraries.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/result.hpp>

#include "core/drainable.hpp"
#include "core/invoker.hpp"

namespace tinyfaas {

struct GrpcModule;

struct GrpcOptions {
  std::string address = "0.0.0.0";
  std::uint16_t port = 9000;
  // Largest request and response message (serialized protobuf, so a few
  // bytes above the payload: give it some slack over the body limit).
  // Larger requests are refused by gRPC with RESOURCE_EXHAUSTED before they
  // reach a function.
  std::size_t maxMessageBytes = (1 << 20) + 1024;
  // Largest function input, as on the other endpoints; a larger one inside
  // a message that fits gets RESOURCE_EXHAUSTED too.
  std::size_t maxPayloadBytes = 1 << 20;
  // Calls in flight at once, and the bytes of their inputs together; past
  // either calls get RESOURCE_EXHAUSTED at once.
  std::size_t maxInFlight = 1024;
  std::size_t maxInFlightBytes = 32u << 20;
  // Connections open at once; one beyond it is closed as soon as it is
  // accepted (its client sees UNAVAILABLE), so idle connections cannot take
  // the node's memory and descriptors.
  std::size_t maxConnections = 1024;
  // The gRPC module to serve with; null loads tinyfaas-grpc.so on the
  // first connection. (Tests pass the module's code linked in.)
  const GrpcModule* module = nullptr;
};

// Threads: the listener runs on the data-plane executor; the module is
// loaded on a thread of its own (about 40 ms), while the data plane goes on
// serving. gRPC runs the service on its own
// threads. They only turn a call into an Invocation and post it to the
// data-plane executor, where the
// Invoker runs it (the Invoker is only ever touched there); the answer is
// sent from the data plane. The calls in flight are shared by both sides
// under one mutex, so that stop() can answer them without the data plane.
// create(), stop() and the destructor may run on any thread, the data-plane
// thread included, but not concurrently with each other. The Invoker must
// outlive every call the frontend started, i.e. stay alive until the
// executor stops running handlers.
//
// Draining: stopAccepting() closes the listener and tells connected clients
// (HTTP/2 GOAWAY) to open no new streams; calls in flight go on. A call
// that races in meanwhile is refused (UNAVAILABLE, or CANCELLED by gRPC's
// own shutdown). stop() after it answers what still runs, then waits for
// gRPC to finish.
class GrpcFrontend : public Drainable {
 public:
  // The TCP port actually bound (useful when options.port was 0).
  virtual std::uint16_t port() const = 0;
  // Stops accepting calls; calls still running are answered UNAVAILABLE at
  // once and their results dropped when they arrive. Does not wait for the
  // data plane, so it is safe to call on the data-plane thread.
  virtual void stop() = 0;

  static boost::system::result<std::unique_ptr<GrpcFrontend>, std::string> create(
      boost::asio::any_io_executor dataPlane, Invoker& invoker, GrpcOptions options);
};

}  // namespace tinyfaas
