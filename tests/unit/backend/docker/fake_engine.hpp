#pragma once
// A stand-in for the Docker engine: HTTP on a Unix socket, where each
// connection gets the next scripted answer as raw bytes, written in the
// pieces given (with a pause between them) so that the client sees
// responses, chunks and log frames cut at any byte. Records the requests.

#include <chrono>
#include <deque>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>

namespace tinyfaas::test {

struct EngineExchange {
  std::vector<std::string> pieces;  // written in order
  std::chrono::milliseconds pause{0};
  bool holdOpen = false;  // keep the connection after the last piece (a follow-stream)
  bool silent = false;    // read the request, never answer
};

struct RecordedRequest {
  std::string method;
  std::string target;
  std::string host;
  std::string contentType;
  std::string body;
};

// Lives on the thread running its executor.
class FakeEngine : public std::enable_shared_from_this<FakeEngine> {
 public:
  static std::shared_ptr<FakeEngine> start(boost::asio::any_io_executor executor, std::filesystem::path socket);
  ~FakeEngine();

  void script(EngineExchange exchange) { script_.push_back(std::move(exchange)); }
  // A whole answer in one piece.
  void answer(unsigned status, const std::string& body, const std::string& contentType = "application/json");
  const std::vector<RecordedRequest>& requests() const { return requests_; }
  void stop();

 private:
  FakeEngine(boost::asio::any_io_executor executor, std::filesystem::path socket);
  void accept();
  boost::asio::awaitable<void> serve(boost::asio::local::stream_protocol::socket socket);

  boost::asio::any_io_executor executor_;
  std::filesystem::path path_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::deque<EngineExchange> script_;
  std::vector<RecordedRequest> requests_;
  std::vector<std::weak_ptr<boost::asio::local::stream_protocol::socket>> held_;
};

// "HTTP/1.1 <status> X\r\n...\r\n\r\n" with Content-Length.
std::string rawResponse(unsigned status, const std::string& body, const std::string& contentType = "application/json");
// The header of a chunked response, and one chunk.
std::string chunkedHeader(unsigned status, const std::string& contentType);
std::string chunk(const std::string& data);
// A log frame: stream id, three zero bytes, 32-bit big-endian length, payload.
std::string logFrame(int stream, const std::string& payload);

}  // namespace tinyfaas::test
