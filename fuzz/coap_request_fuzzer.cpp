// The CoAP request path: the input is one or more datagrams (split at the
// separator below) a client sends to the real CoAP frontend, with a fake
// invoker behind it. libcoap parses each datagram (coap_pdu_parse) and hands
// what it accepts to our handlers: dispatch, duplicate detection, block-wise
// upload joining, piggy-backed and separate answers. The frontend must not
// crash, and the loop must come back to idle after each input.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "fake_invoker.hpp"
#include "frontend/coap/coap_frontend.hpp"

namespace {

// Between datagrams in one input (unlikely in a real CoAP header).
constexpr std::string_view kSeparator = "\xff\xfe\xfd";
constexpr int kMaxDatagrams = 16;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "coap_request_fuzzer: %s\n", what);
  std::abort();
}

struct Endpoint {
  boost::asio::io_context io;
  tinyfaas::fuzz::FakeInvoker invoker;
  std::unique_ptr<tinyfaas::CoapFrontend> frontend;
  int client = -1;

  Endpoint() {
    tinyfaas::CoapOptions options;
    options.address = "127.0.0.1";
    options.port = 0;
    options.maxPayloadBytes = 4096;
    options.libcoapLogLevel = 0;  // silence: the fuzzer sends garbage on purpose
    auto created = tinyfaas::CoapFrontend::create(io.get_executor(), invoker, options);
    if (!created) fail(created.error().c_str());
    frontend = std::move(*created);

    client = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(frontend->port());
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (client < 0 || ::connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
      fail("cannot connect the client socket");
  }

  // Runs the loop until it has nothing ready, reading the answers meanwhile.
  void settle() {
    char buffer[2048];
    for (int rounds = 0; rounds < 1000; ++rounds) {
      if (io.stopped()) io.restart();
      std::size_t handled = io.poll();
      while (::recv(client, buffer, sizeof buffer, 0) > 0) ++handled;
      if (handled == 0) return;
    }
    fail("the loop never came back to idle");
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Endpoint* endpoint = new Endpoint;  // lives for the whole run
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  for (int i = 0; i < kMaxDatagrams && !rest.empty(); ++i) {
    const std::size_t cut = rest.find(kSeparator);
    const std::string_view datagram = rest.substr(0, cut);
    rest = cut == std::string_view::npos ? std::string_view() : rest.substr(cut + kSeparator.size());
    ::send(endpoint->client, datagram.data(), datagram.size(), 0);
    endpoint->settle();
  }
  return 0;
}
