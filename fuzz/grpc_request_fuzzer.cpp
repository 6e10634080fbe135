// The gRPC request path: the input is what a client sends on one connection
// (the HTTP/2 preface, frames, or garbage) to the real gRPC endpoint with a
// fake invoker behind it. nghttp2 parses the frames and our callbacks turn
// streams into calls and answers. The endpoint must answer or close, and
// never crash or hang.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "fake_invoker.hpp"
#include "frontend/grpc/grpc_frontend.hpp"
#include "tcp_exchange.hpp"

namespace {

struct Endpoint {
  boost::asio::io_context io;
  tinyfaas::fuzz::FakeInvoker invoker;
  std::unique_ptr<tinyfaas::GrpcFrontend> frontend;

  Endpoint() {
    tinyfaas::GrpcOptions options;
    options.address = "127.0.0.1";
    options.port = 0;
    // Small limits, so that short inputs reach the limit paths too.
    options.limits.maxMessageBytes = 4096;
    options.limits.maxPayloadBytes = 2048;
    options.limits.maxInFlight = 4;
    options.limits.maxInFlightBytes = 8192;
    auto created = tinyfaas::GrpcFrontend::create(io.get_executor(), invoker, options);
    if (!created) {
      std::fprintf(stderr, "cannot start the gRPC endpoint: %s\n", created.error().c_str());
      std::abort();
    }
    frontend = std::move(*created);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Endpoint* endpoint = new Endpoint;  // lives for the whole run
  tinyfaas::fuzz::exchangeOverTcp(endpoint->io, endpoint->frontend->port(),
                                  std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
