#pragma once
// The interface of the gRPC module, tinyfaas-grpc.so: the gRPC endpoint's
// server and the CLI's gRPC client. gRPC, protobuf and abseil are about
// 9 MB of a process's resident memory once loaded, so the binary holds
// neither them nor their headers: it loads the module when the first gRPC
// client connects, or when `tinyfaas invoke --protocol grpc` runs
// (util/module_loader.hpp). The module is built in frontend/grpc; this
// interface stands apart so that the CLI includes no frontend header.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/system/result.hpp>

#include "core/invocation.hpp"
#include "grpc_api/grpc_call.hpp"
#include "util/module_loader.hpp"

namespace tinyfaas {

// Runs a call and hands its result to the completion, which may be called
// on any thread. Called on gRPC's threads; must not block.
using CallDispatcher = std::function<void(Invocation, std::function<void(CallResult)>)>;

struct GrpcServerOptions {
  // Largest request and response message (serialized protobuf, so a few
  // bytes above the payload). Larger requests are refused by gRPC with
  // RESOURCE_EXHAUSTED before they reach a function.
  std::size_t maxMessageBytes = (1 << 20) + 1024;
  // Largest function input; a larger one inside a message that fits gets
  // RESOURCE_EXHAUSTED too.
  std::size_t maxPayloadBytes = 1 << 20;
  // Calls in flight at once, and the bytes of their inputs together; past
  // either calls get RESOURCE_EXHAUSTED at once.
  std::size_t maxInFlight = 1024;
  std::size_t maxInFlightBytes = 32u << 20;
};

// A gRPC server with no listener of its own: it serves the connections it
// is handed. Draining as in GrpcFrontend (frontend/grpc/grpc_frontend.hpp).
class GrpcServer {
 public:
  virtual ~GrpcServer() = default;
  // Serves the accepted, connected TCP socket `fd` (non-blocking), which
  // it owns from now on.
  virtual void adopt(int fd) = 0;
  virtual void stopAccepting() = 0;
  virtual std::size_t callsInFlight() const = 0;
  virtual void cutShort(std::string_view reason) = 0;
  virtual void stop() = 0;
};

struct GrpcModule {
  ModuleHeader header;
  boost::system::result<std::unique_ptr<GrpcServer>, std::string> (*createServer)(CallDispatcher dispatch,
                                                                                  GrpcServerOptions options);
  // Blocks the calling thread until the reply or the deadline.
  GrpcReply (*sendRequest)(const GrpcRequest& request);
};

// Inside the module only; the binary reaches them through GrpcModule.
namespace grpcmodule {
boost::system::result<std::unique_ptr<GrpcServer>, std::string> createServer(CallDispatcher dispatch,
                                                                             GrpcServerOptions options);
GrpcReply sendRequest(const GrpcRequest& request);
}  // namespace grpcmodule

}  // namespace tinyfaas
