#pragma once
// A stand-in for a function handler: HTTP/1.1 or, on a connection that
// opens with its preface, the proxy's framing (proxy/handler_frame.hpp) on a
// Unix socket, served by coroutines on the test's io_context. It answers
// GET /health and POST /fn (every frame is one) the way the shipped
// runtimes do, and can be told to fail, stall, send huge
// answers or drop its connections, while counting what it saw.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace tinyfaas::test {

struct FakeRequest {
  std::string method;                                        // a frame: POST
  std::string target;                                        // a frame: /fn
  std::vector<std::pair<std::string, std::string>> headers;  // as received
  std::string body;
};

// Lives on the thread running its executor, like everything it serves.
class FakeHandler : public std::enable_shared_from_this<FakeHandler> {
 public:
  enum class Mode {
    answer,  // status and body below (body empty and echo: the request body)
    never,   // read the call, never answer (until stop())
    gated,   // answer once openGate() was called
    hangUp,  // read the call, close the connection without a byte
  };

  // Binds `socket`; throws when it cannot (a broken test setup, not a case).
  static std::shared_ptr<FakeHandler> start(boost::asio::any_io_executor executor, std::filesystem::path socket,
                                            std::string name = "fake");
  ~FakeHandler();

  // Behaviour of POST /fn; may change between calls.
  Mode mode = Mode::answer;
  unsigned status = 200;
  std::string body;
  bool echo = true;
  std::vector<std::pair<std::string, std::string>> responseHeaders;  // added to every answer to POST /fn
  std::size_t responseBytes = 0;                                     // non-zero: answer this many 'x' instead
  bool closeAfterAnswer = false;                                     // Connection: close on every answer
  // GET /health answers 200 "OK" when true, 503 otherwise.
  bool healthy = true;

  void openGate();
  // Closes every connection that is waiting for its next request, as a
  // handler does when its keep-alive timeout fires.
  void closeIdleConnections();
  // Closes the listener and every connection, and removes the socket file.
  void stop();

  const std::filesystem::path& socketPath() const { return socket_; }
  const std::string& name() const { return name_; }
  std::size_t acceptedConnections() const { return accepted_; }
  std::size_t openConnections() const { return connections_.size(); }
  std::size_t fnCalls() const { return fnCalls_; }
  std::size_t healthChecks() const { return healthChecks_; }
  std::size_t inFlight() const { return inFlight_; }
  const std::vector<FakeRequest>& requests() const { return requests_; }
  bool stopped() const { return stopped_; }

 private:
  struct Connection;
  struct Call {
    FakeRequest request;
    bool keepAlive = true;
  };
  FakeHandler(boost::asio::any_io_executor executor, std::filesystem::path socket, std::string name);
  boost::asio::awaitable<void> acceptLoop();
  boost::asio::awaitable<void> serve(std::shared_ptr<Connection> connection);
  // The next request on `connection`; nullopt when it ended.
  boost::asio::awaitable<std::optional<Call>> readCall(Connection& connection, boost::beast::flat_buffer& buffer);
  boost::asio::awaitable<void> waitWhile(bool (FakeHandler::*condition)() const);
  bool gateClosed() const { return !gateOpen_ && !stopped_; }
  bool running() const { return !stopped_; }

  boost::asio::any_io_executor executor_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::filesystem::path socket_;
  std::string name_;
  boost::asio::steady_timer wake_;  // cancelled whenever a waiter's condition may have changed
  std::set<std::shared_ptr<Connection>> connections_;
  std::vector<FakeRequest> requests_;
  std::size_t accepted_ = 0;
  std::size_t fnCalls_ = 0;
  std::size_t healthChecks_ = 0;
  std::size_t inFlight_ = 0;
  bool gateOpen_ = false;
  bool stopped_ = false;
};

}  // namespace tinyfaas::test
