#pragma once
// `tinyfaas invoke`: calls a deployed function through the daemon's HTTP,
// CoAP or gRPC endpoint, as a device, web client or service would.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/cli_config.hpp"
#include "cli/client_io.hpp"

namespace tinyfaas::cli {

struct InvokeOptions {
  std::string name;
  std::optional<std::string> data;
  std::optional<std::string> file;  // "-" is stdin
  std::string protocol = "http";
  std::string endpoint;                  // --endpoint/--host; see resolveEndpointHost
  ManagementFlags management;            // --url: its host is the default endpoint
  std::optional<int> port;               // else $HTTP_PORT / $COAP_PORT / $GRPC_PORT, else 8000 / 5683 / 9000
  std::optional<double> timeoutSeconds;  // else 60 (http, grpc) / 5 (coap)
  bool async = false;
  // Largest reply accepted, and over grpc the largest message sent; above
  // the daemon's default --max-body-bytes (16 MiB).
  std::uint64_t maxBodyBytes = 64u << 20;
  std::vector<std::string> headers;  // "Name: value", http (headers) and grpc (metadata)
};

int runInvoke(const InvokeOptions& options, const ClientIo& io);

}  // namespace tinyfaas::cli
