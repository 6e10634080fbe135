#pragma once
// CoAP (RFC 7252) endpoint: GET/POST coap://HOST/NAME runs function NAME.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/result.hpp>

#include "core/drainable.hpp"
#include "core/invoker.hpp"

namespace tinyfaas {

struct CoapOptions {
  std::string address = "0.0.0.0";
  std::uint16_t port = 5683;
  std::size_t maxPayloadBytes = 1 << 20;
  // Kernel receive and send buffer of the UDP socket (0 keeps the system's
  // default, ~200 datagrams): bursts from many clients must not be dropped.
  std::size_t socketBufferBytes = 4u << 20;

  // How long a Confirmable request may wait for its result before it is
  // acknowledged with an empty ACK and answered later in a separate response.
  // Within the window the answer rides in the ACK (half the datagrams). Must
  // stay well below the clients' ACK_TIMEOUT (2 s by RFC 7252), or they
  // retransmit; duplicates are still handled correctly if they do.
  std::chrono::milliseconds piggybackWindow{1000};
  // Calls in flight at once; past it requests get 5.03 at once.
  std::size_t maxInFlight = 4096;
  // Block-wise (Block1) uploads being joined at once, and their bytes
  // together; past either a block gets 5.03 and its upload is dropped.
  std::size_t maxUploads = 64;
  std::size_t maxUploadBytes = 32u << 20;
  // A call still unanswered after this gets 5.04 and its late result is
  // dropped. A backstop only: the invoker has its own, shorter, call timeout.
  std::chrono::milliseconds callDeadline{std::chrono::minutes(5)};
  // Finished exchanges remembered to answer retransmitted requests without
  // running the function again (RFC 7252 4.5), and the response bytes they may
  // hold.
  std::size_t dedupEntries = 8192;
  std::size_t dedupBytes = 4u << 20;
  // Peers (address:port) libcoap keeps state for while they are idle.
  unsigned maxIdleSessions = 4096;
  // Until a source (address and port) has proven it receives what is sent
  // there (RFC 9175 Echo, see request_handling.cpp), answers to it are at most
  // three times the request's size, so that a forged source address cannot
  // turn a small request into a large answer to a victim. Off only in tests
  // of other behaviour.
  bool verifySources = true;
  // libcoap's own log threshold, a syslog level (4 = warning, 7 = debug).
  int libcoapLogLevel = 4;
};

// Counters since create(), for tests and metrics.
struct CoapStats {
  std::uint64_t calls = 0;        // functions invoked (incl. detached)
  std::uint64_t duplicates = 0;   // retransmitted requests answered from state
  std::uint64_t piggybacked = 0;  // answers sent inside the ACK
  std::uint64_t separate = 0;     // answers sent after an empty ACK, or NON
  std::uint64_t rejected = 0;     // answered at once with an error
  std::uint64_t verified = 0;     // sources that proved their address with an Echo value
  std::uint64_t inFlight = 0;     // calls running now
};

// Owned by, and only touched on, the data-plane thread that runs `executor`:
// libcoap 4.3.1 is not thread-safe, so its epoll fd is joined to that loop.
// create(), stop() and the destructor must run on that thread too (or before
// the loop runs). The Invoker must outlive every call the frontend started,
// i.e. stay alive until the executor stops running handlers.
//
// Draining: after stopAccepting() the socket stays open; a new request gets
// 5.03 at once (an answer, so the client does not retransmit for a minute),
// while retransmissions of calls in flight are handled as before and those
// calls are answered. delivering() holds while libcoap still retransmits a
// confirmable answer. An answer sent block-wise (RFC 7959) is not waited for:
// blocks the client asks for after stop() are lost.
class CoapFrontend : public Drainable {
 public:
  // The UDP port actually bound (useful when options.port was 0).
  virtual std::uint16_t port() const = 0;
  // Closes the socket at once; calls still in flight get no reply.
  virtual void stop() = 0;
  virtual CoapStats stats() const = 0;

  static boost::system::result<std::unique_ptr<CoapFrontend>, std::string> create(boost::asio::any_io_executor executor,
                                                                                  Invoker& invoker,
                                                                                  CoapOptions options);
};

}  // namespace tinyfaas
