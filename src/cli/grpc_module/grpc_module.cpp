// The gRPC module's entry point (grpc_api/grpc_module.hpp, util/module_loader.hpp).

#include "grpc_api/grpc_module.hpp"

namespace {

constexpr tinyfaas::GrpcModule kModule{
    {TINYFAAS_VERSION},
    &tinyfaas::grpcmodule::sendRequest,
};

}  // namespace

TINYFAAS_MODULE_EXPORT const void* tinyfaas_module_grpc() { return &kModule; }
