#pragma once
// gRPC endpoint: TinyFaaS.Request(Data{functionIdentifier, data}) runs the
// function and answers Response{response} (proto/tinyfaas.proto, upstream's
// wire contract), served over HTTP/2 by nghttp2 on the data plane
// (grpc_connection.hpp).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/result.hpp>

#include "core/drainable.hpp"
#include "core/invoker.hpp"
#include "frontend/grpc/grpc_connection.hpp"

namespace tinyfaas {

struct GrpcOptions {
  std::string address = "0.0.0.0";
  std::uint16_t port = 9000;
  // Message, payload, in-flight and stall limits (grpc_connection.hpp).
  // maxMessageBytes is serialized protobuf, a few bytes above the payload:
  // give it some slack over maxPayloadBytes.
  GrpcLimits limits;
  // Connections open at once; one beyond it is closed as soon as it is
  // accepted (its client sees UNAVAILABLE), so idle connections cannot take
  // the node's memory and descriptors.
  std::size_t maxConnections = 1024;
};

// Threads: everything runs on the data-plane executor, where the Invoker
// lives; create() and the destructor may run on any thread (the destructor
// hands the stop to the data plane), the Drainable methods and stop() on
// the data plane only. The Invoker must outlive every call the frontend
// started, i.e. stay alive until the executor stops running handlers.
//
// Draining: stopAccepting() closes the listener and tells connected clients
// (HTTP/2 GOAWAY) to open no new streams; calls in flight go on. A call that
// races in meanwhile is refused UNAVAILABLE. stop() answers what still runs
// UNAVAILABLE and closes every connection.
class GrpcFrontend : public Drainable {
 public:
  // The TCP port actually bound (useful when options.port was 0).
  virtual std::uint16_t port() const = 0;
  // Stops accepting calls; calls still running are answered UNAVAILABLE at
  // once and their results dropped when they arrive. Does not wait for
  // them.
  virtual void stop() = 0;

  static boost::system::result<std::unique_ptr<GrpcFrontend>, std::string> create(
      boost::asio::any_io_executor dataPlane, Invoker& invoker, GrpcOptions options);
};

}  // namespace tinyfaas
