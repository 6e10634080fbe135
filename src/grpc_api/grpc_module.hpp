#pragma once
// The interface of the gRPC module, tinyfaas-grpc.so: the CLI's gRPC client
// (`tinyfaas invoke --protocol grpc`). gRPC, abseil and the generated stubs
// are about 9 MB of a process's resident memory once loaded, so the binary
// holds none of them: the CLI loads the module when it needs it
// (util/module_loader.hpp). The daemon's endpoint does not use gRPC's
// library (frontend/grpc). The module is built in cli/grpc_module; this
// interface stands apart so that the CLI's code includes no gRPC header.

#include "grpc_api/grpc_call.hpp"
#include "util/module_loader.hpp"

namespace tinyfaas {

struct GrpcModule {
  ModuleHeader header;
  // Blocks the calling thread until the reply or the deadline.
  GrpcReply (*sendRequest)(const GrpcRequest& request);
};

// Inside the module only; the binary reaches it through GrpcModule.
namespace grpcmodule {
GrpcReply sendRequest(const GrpcRequest& request);
}  // namespace grpcmodule

}  // namespace tinyfaas
