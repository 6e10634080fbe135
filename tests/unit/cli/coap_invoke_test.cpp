// `tinyfaas invoke --protocol coap` against a fake CoAP endpoint: a plain UDP
// socket that decodes one request (RFC 7252, section 3) and answers it
// piggybacked, so the test does not lean on libcoap to check libcoap.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "cli/coap_client.hpp"
#include "cli_runner.hpp"

namespace tinyfaas::cli {
namespace {

using test::runCli;

struct CoapMessage {
  unsigned type = 0;  // 0 CON, 1 NON, 2 ACK, 3 RST
  std::uint8_t code = 0;
  std::uint16_t messageId = 0;
  std::string token;
  std::vector<std::pair<unsigned, std::string>> options;
  std::string payload;
};

std::optional<CoapMessage> decode(const std::string& datagram) {
  if (datagram.size() < 4 || (static_cast<unsigned char>(datagram[0]) >> 6) != 1) return std::nullopt;
  CoapMessage m;
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(datagram[i]); };
  m.type = (byte(0) >> 4) & 3;
  const std::size_t tokenLength = byte(0) & 0x0F;
  m.code = byte(1);
  m.messageId = static_cast<std::uint16_t>(byte(2) << 8 | byte(3));
  std::size_t at = 4;
  if (tokenLength > 8 || at + tokenLength > datagram.size()) return std::nullopt;
  m.token = datagram.substr(at, tokenLength);
  at += tokenLength;
  unsigned number = 0;
  const auto extended = [&](unsigned nibble) -> std::optional<unsigned> {
    if (nibble < 13) return nibble;
    if (nibble == 13 && at < datagram.size()) return 13 + byte(at++);
    if (nibble == 14 && at + 1 < datagram.size()) {
      const unsigned v = 269 + (byte(at) << 8 | byte(at + 1));
      at += 2;
      return v;
    }
    return std::nullopt;
  };
  while (at < datagram.size()) {
    if (byte(at) == 0xFF) {
      m.payload = datagram.substr(at + 1);
      break;
    }
    const unsigned head = byte(at++);
    const auto delta = extended(head >> 4);
    const auto length = extended(head & 0x0F);
    if (!delta || !length || at + *length > datagram.size()) return std::nullopt;
    number += *delta;
    m.options.emplace_back(number, datagram.substr(at, *length));
    at += *length;
  }
  return m;
}

// Answers each confirmable request with a piggybacked ACK carrying `code`
// and `payload`, or stays silent.
class FakeCoapServer {
 public:
  FakeCoapServer(std::uint8_t code, std::string payload, bool silent = false)
      : code_(code), payload_(std::move(payload)), silent_(silent) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      throw std::runtime_error("cannot bind a UDP socket");
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  FakeCoapServer(const FakeCoapServer&) = delete;
  FakeCoapServer& operator=(const FakeCoapServer&) = delete;
  ~FakeCoapServer() {
    // shutdown() wakes the blocked recvfrom.
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }

  std::uint16_t port() const { return port_; }
  std::vector<CoapMessage> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  void serve() {
    for (;;) {
      char buffer[65536];
      sockaddr_storage peer{};
      socklen_t peerLength = sizeof peer;
      const ssize_t got = ::recvfrom(fd_, buffer, sizeof buffer, 0, reinterpret_cast<sockaddr*>(&peer), &peerLength);
      if (got <= 0) return;
      auto request = decode(std::string(buffer, static_cast<std::size_t>(got)));
      if (!request) continue;
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(*request);
      }
      if (silent_ || request->type != 0) continue;
      std::string reply;
      reply += static_cast<char>(0x40 | 0x20 | request->token.size());  // version 1, ACK
      reply += static_cast<char>(code_);
      reply += static_cast<char>(request->messageId >> 8);
      reply += static_cast<char>(request->messageId & 0xFF);
      reply += request->token;
      if (!payload_.empty()) reply += '\xFF' + payload_;
      ::sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer), peerLength);
    }
  }

  std::uint8_t code_;
  std::string payload_;
  bool silent_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  mutable std::mutex mutex_;
  std::vector<CoapMessage> requests_;
  std::thread thread_;
};

constexpr std::uint8_t kContent = 2 << 5 | 5;
constexpr std::uint8_t kNotFound = 4 << 5 | 4;
constexpr unsigned kUriPath = 11;

std::vector<std::string> invokeArgs(std::uint16_t port, std::vector<std::string> extra) {
  std::vector<std::string> args{"invoke", "echo",      "--protocol", "coap",
                                "--host", "127.0.0.1", "--port",     std::to_string(port)};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST(CoapInvoke, PostsToTheFunctionsPathAndPrintsTheResult) {
  FakeCoapServer server(kContent, "olleh");
  const auto run = runCli(invokeArgs(server.port(), {"--data", "hello"}));
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(run.out, "olleh");
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].type, 0u);    // confirmable
  EXPECT_EQ(requests[0].code, 0x02);  // POST
  EXPECT_EQ(requests[0].payload, "hello");
  std::vector<std::string> path;
  for (const auto& [number, value] : requests[0].options) {
    if (number == kUriPath) path.push_back(value);
  }
  EXPECT_EQ(path, std::vector<std::string>{"echo"});
}

TEST(CoapInvoke, ErrorCodeGoesToStderrWithExit1) {
  FakeCoapServer server(kNotFound, "no function echo");
  const auto run = runCli(invokeArgs(server.port(), {"--data", "x"}));
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(run.err, "tinyfaas: 4.04 Not Found: no function echo\n");
}

TEST(CoapInvoke, PortComesFromCoapPort) {
  FakeCoapServer server(kContent, "");
  test::CliEnvironment environment;
  environment.vars["COAP_PORT"] = std::to_string(server.port());
  const auto run = runCli({"invoke", "echo", "-p", "coap", "--host", "127.0.0.1"}, environment);
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(CoapInvoke, SilenceEndsAtTheTimeout) {
  FakeCoapServer server(kContent, "", /*silent=*/true);
  const auto run = runCli(invokeArgs(server.port(), {"--data", "x", "--timeout", "0.3"}));
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_EQ(run.err, "tinyfaas: no answer from coap://127.0.0.1:" + std::to_string(server.port()) +
                         "/echo: no answer within 300 ms (is `tinyfaas serve` running?)\n");
}

TEST(CoapInvoke, ClosedPortIsUnreachable) {
  // Bind and release a UDP port so the kernel answers with ICMP "port
  // unreachable".
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  ::close(fd);
  const auto port = ntohs(address.sin_port);

  const auto run = runCli(invokeArgs(port, {"--data", "x"}));
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_EQ(run.err, "tinyfaas: cannot reach the CoAP endpoint at coap://127.0.0.1:" + std::to_string(port) +
                         ": connection refused (is `tinyfaas serve` running?)\n");
}

TEST(CoapCodeText, SpellsClassDetailAndPhrase) {
  EXPECT_EQ(coapCodeText(kContent), "2.05 Content");
  EXPECT_EQ(coapCodeText(kNotFound), "4.04 Not Found");
  EXPECT_EQ(coapCodeText(5 << 5 | 0), "5.00 Internal Server Error");
}

}  // namespace
}  // namespace tinyfaas::cli
