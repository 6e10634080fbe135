// The HTTP request path: the input is what a client sends on one connection
// (any number of pipelined requests, or garbage) to the real HTTP server with
// the function endpoint's handler and a fake invoker behind it. The server
// must answer or close, and never crash or hang.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "fake_invoker.hpp"
#include "frontend/http/http_frontend.hpp"
#include "tcp_exchange.hpp"

namespace {

struct Endpoint {
  boost::asio::io_context io;
  tinyfaas::fuzz::FakeInvoker invoker;
  std::unique_ptr<tinyfaas::HttpServer> server;

  Endpoint() {
    tinyfaas::HttpServerOptions options;
    options.address = "127.0.0.1";
    // Small limits, so that short inputs reach the limit paths too.
    options.maxBodyBytes = 4096;
    options.maxHeaderBytes = 2048;
    auto started = tinyfaas::startHttpFrontend(io.get_executor(), invoker, options);
    if (!started) {
      std::fprintf(stderr, "cannot start the HTTP endpoint: %s\n", started.error().c_str());
      std::abort();
    }
    server = std::move(*started);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Endpoint* endpoint = new Endpoint;  // lives for the whole run
  tinyfaas::fuzz::exchangeOverTcp(endpoint->io, endpoint->server->port(),
                                  std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
