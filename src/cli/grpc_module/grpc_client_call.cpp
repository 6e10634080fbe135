// The CLI's gRPC client (cli/grpc_client.hpp), inside the gRPC module.

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <climits>

#include "grpc_api/grpc_module.hpp"
#include "tinyfaas.grpc.pb.h"

namespace tinyfaas {

namespace {

std::string statusName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    default: return "status " + std::to_string(static_cast<int>(code));
  }
}

}  // namespace

GrpcReply grpcmodule::sendRequest(const GrpcRequest& request) {
  const std::string host = request.host.find(':') != std::string::npos ? "[" + request.host + "]" : request.host;
  grpc::ChannelArguments limits;
  const int maxBytes = static_cast<int>(std::min<std::size_t>(request.maxMessageBytes, INT_MAX));
  limits.SetMaxReceiveMessageSize(maxBytes);
  limits.SetMaxSendMessageSize(maxBytes);
  auto channel =
      grpc::CreateCustomChannel(host + ":" + std::to_string(request.port), grpc::InsecureChannelCredentials(), limits);
  auto stub = openfogstack::tinyfaas::tinyfaas::TinyFaaS::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + request.timeout);
  for (const auto& [key, value] : request.metadata) context.AddMetadata(key, value);
  openfogstack::tinyfaas::tinyfaas::Data data;
  data.set_functionidentifier(request.function);
  data.set_data(request.payload);
  openfogstack::tinyfaas::tinyfaas::Response response;
  const grpc::Status status = stub->Request(&context, data, &response);
  if (status.ok()) return {true, "OK", response.response()};
  return {false, statusName(status.error_code()), status.error_message()};
}

}  // namespace tinyfaas
