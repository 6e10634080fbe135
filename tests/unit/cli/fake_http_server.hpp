#pragma once
// An HTTP server on 127.0.0.1, port 0, in its own thread, that records each
// request and answers with a canned reply: the management API or a function
// endpoint as far as the client can tell.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tinyfaas::cli::test {

struct RecordedRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

class FakeHttpServer {
 public:
  enum class Behaviour {
    answer,  // with the canned reply
    silent,  // read the request, never answer (for deadline tests)
    hangUp,  // read the request, close the connection
  };
  explicit FakeHttpServer(unsigned status = 200, std::string body = "", Behaviour behaviour = Behaviour::answer,
                          std::vector<std::pair<std::string, std::string>> headers = {});
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;
  ~FakeHttpServer();

  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Requests seen so far. The server records a request before it answers,
  // so after a synchronous client call returns, its request is here.
  std::vector<RecordedRequest> requests() const;

 private:
  boost::asio::awaitable<void> acceptLoop();
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);

  boost::asio::io_context context_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  unsigned status_;
  std::string body_;
  Behaviour behaviour_;
  std::vector<std::pair<std::string, std::string>> headers_;  // sent with the canned reply
  mutable std::mutex mutex_;
  std::vector<RecordedRequest> requests_;
  std::thread thread_;
};

// A loopback port nothing listens on: bound, read, released.
std::uint16_t unusedPort();

}  // namespace tinyfaas::cli::test
