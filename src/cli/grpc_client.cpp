#include "cli/grpc_client.hpp"

#include "grpc_api/grpc_module.hpp"

namespace tinyfaas::cli {

GrpcReply sendGrpcRequest(const GrpcRequest& request) {
  auto module = loadModuleApi<GrpcModule>("grpc");
  if (!module) return {false, "UNAVAILABLE", "gRPC support is not available: " + module.error()};
  return (*module)->sendRequest(request);
}

}  // namespace tinyfaas::cli
