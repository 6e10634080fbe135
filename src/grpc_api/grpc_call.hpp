#pragma once
// One call to a tinyFaaS gRPC endpoint (upstream's TinyFaaS/Request) as the
// gRPC module's client sends it for `tinyfaas invoke --protocol grpc`. Plain
// data, so the CLI can fill it in without gRPC's headers.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tinyfaas {

struct GrpcRequest {
  std::string host;
  std::uint16_t port = 9000;
  std::string function;
  std::string payload;  // a proto3 string: the endpoint refuses non-UTF-8
  std::vector<std::pair<std::string, std::string>> metadata;
  std::chrono::milliseconds timeout{60'000};
  // gRPC's own default is 4 MiB each way, below what the daemon serves.
  std::size_t maxMessageBytes = 64u << 20;
};

struct GrpcReply {
  bool ok = false;
  std::string statusName;  // "NOT_FOUND", ... when !ok
  std::string body;        // the response, or the status message
};

}  // namespace tinyfaas
