#pragma once
// One call to a tinyFaaS gRPC endpoint (upstream's TinyFaaS/Request), through
// the gRPC module (grpc_api/grpc_module.hpp), loaded on first use.

#include "grpc_api/grpc_call.hpp"

namespace tinyfaas::cli {

// Blocks the calling thread until the reply or the deadline.
GrpcReply sendGrpcRequest(const GrpcRequest& request);

}  // namespace tinyfaas::cli
