#pragma once
// Servers for the load generator's tests: each runs its own io_context on a
// background thread, binds port 0 on 127.0.0.1 (or a Unix socket), and
// stops in its destructor.

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace tinyfaas::bench::testing {

class FakeHttpServer {
 public:
  enum class Mode {
    answer,          // 200 with the request body, keep-alive
    answerAndClose,  // 200, then closes the connection
    status500,       // 500 Internal Server Error, keep-alive
    never,           // reads requests, never answers
  };
  // Empty unixPath: TCP on 127.0.0.1, port 0.
  explicit FakeHttpServer(Mode mode, std::string unixPath = {});
  ~FakeHttpServer();

  std::uint16_t port() const { return port_; }
  std::uint64_t requests() const { return requests_.load(); }
  std::uint64_t connections() const { return connections_.load(); }

 private:
  Mode mode_;
  boost::asio::io_context io_{1};
  std::uint16_t port_ = 0;
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> connections_{0};
  std::thread thread_;
};

class FakeCoapServer {
 public:
  enum class Mode {
    piggybacked,  // ACK 2.05 echoing the payload (CON); NON 2.05 to a NON
    separate,     // empty ACK at once, then the 2.05 as its own CON message
    notFound,     // ACK 4.04
    silent,       // drops everything
  };
  explicit FakeCoapServer(Mode mode);
  ~FakeCoapServer();

  std::uint16_t port() const { return port_; }
  std::uint64_t requests() const { return requests_.load(); }
  // Empty ACKs received for the separate responses (mode separate).
  std::uint64_t acksReceived() const { return acks_.load(); }
  // The last request's Uri-Path segments joined with '/' and its payload.
  std::string lastPath() const;
  std::string lastPayload() const;

 private:
  Mode mode_;
  boost::asio::io_context io_{1};
  std::uint16_t port_ = 0;
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> acks_{0};
  mutable std::mutex mutex_;
  std::string lastPath_;
  std::string lastPayload_;
  std::thread thread_;
};

}  // namespace tinyfaas::bench::testing
