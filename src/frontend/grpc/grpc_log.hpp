#pragma once
// gRPC's and protobuf's log lines, routed into spdlog.

namespace tinyfaas::grpcfe {

// Installs the handlers (process-wide: each library has one). Idempotent and
// thread-safe; the first call wins.
void routeGrpcLogsToSpdlog();

}  // namespace tinyfaas::grpcfe
