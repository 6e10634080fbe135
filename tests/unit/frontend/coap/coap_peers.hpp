#pragma once
// Peers for the CoAP frontend tests: hand-built CoAP datagrams over a
// loopback UDP socket, and coap-client as a subprocess.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tinyfaas::test {

// ---- raw CoAP over UDP -------------------------------------------------------

enum : std::uint8_t { kCon = 0, kNon = 1, kAck = 2, kRst = 3 };
constexpr std::uint8_t code(unsigned cls, unsigned detail) { return static_cast<std::uint8_t>((cls << 5) | detail); }

struct Option {
  std::uint16_t number;
  std::string value;
};

struct Message {
  std::uint8_t type = kCon;
  std::uint8_t code = 0;
  std::uint16_t messageId = 0;
  std::string token;
  std::vector<Option> options;  // any order; encoded sorted
  std::string payload;
};

std::string encode(const Message& message);
std::optional<Message> decode(std::string_view datagram);
std::string codeText(std::uint8_t code);  // "2.05"

// A UDP socket bound to 127.0.0.1 and connected to the frontend.
class UdpPeer {
 public:
  explicit UdpPeer(std::uint16_t serverPort);
  ~UdpPeer();
  UdpPeer(const UdpPeer&) = delete;
  UdpPeer& operator=(const UdpPeer&) = delete;

  void send(std::string_view datagram) const;
  // The next datagram, or nothing after `timeout`.
  std::optional<std::string> receive(std::chrono::milliseconds timeout) const;

 private:
  int fd_ = -1;
};

// ---- coap-client ---------------------------------------------------------------

// Path of libcoap's coap-client (Debian ships it as coap-client-notls), or
// empty when it is not installed.
std::string coapClientPath();

struct ProcessResult {
  int exitCode = -1;  // -1: killed at the deadline
  std::string out;
  std::string err;
  std::chrono::milliseconds elapsed{0};
};

class Process {
 public:
  // Starts `argv` with stdout and stderr captured to files under `dir`.
  Process(const std::vector<std::string>& argv, const std::string& dir);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  // Waits at most `deadline`, then kills the child.
  ProcessResult wait(std::chrono::milliseconds deadline);

 private:
  pid_t pid_ = -1;
  std::string outPath_;
  std::string errPath_;
  std::chrono::steady_clock::time_point started_;
  bool reaped_ = false;
};

// The "d.dd ..." line coap-client prints on stderr for a 4.xx/5.xx answer.
std::string errorLine(const std::string& stderrText);

}  // namespace tinyfaas::test
