#pragma once
// A client of the Docker Engine REST API over the engine's Unix socket.
//
// Like workerd's container client: a fresh connection per request (the
// engine is local and cheap to reach; no pool to go stale when it restarts),
// a deadline on every request, and a size cap on every response body that is
// read into memory. Follow-streams (logs, the /wait long-poll) are read
// piecewise so their memory stays bounded whatever their length.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <list>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/system/result.hpp>

namespace tinyfaas::docker {

struct EngineResponse {
  unsigned status = 0;
  std::string body;
  std::string contentType;

  // True when the status is one of `accepted`. Call sites list each accepted
  // code with the reason it is fine there.
  bool is(std::initializer_list<unsigned> accepted) const;
  // The engine's own explanation ({"message": "..."}), else the body, on one
  // line and capped, for error messages.
  std::string message() const;
};

using EngineResult = boost::system::result<EngineResponse, std::string>;

// Why requests fail once EngineClient::closeAll() ran.
inline constexpr std::string_view kShuttingDown = "tinyFaaS is shutting down";

struct RequestOptions {
  // Deadline for the whole exchange (connect, send, receive). For streams it
  // covers everything up to the response header: a follow-stream lasts as
  // long as its container and ends when the container does.
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  // Cap on a body read into memory (inspect answers are a few KiB).
  std::size_t maxBodyBytes = 1u << 20;
  std::string contentType = "application/json";
};

// Ends a stream early by closing its connection. Lives on the client's thread.
class StreamCanceller {
 public:
  void cancel();
  bool cancelled() const { return cancelled_; }

 private:
  friend class EngineClient;
  bool cancelled_ = false;
  std::function<void()> close_;  // set while the stream's connection is open
};

// Lives on the thread of its executor; requests may overlap.
class EngineClient {
 public:
  // `apiPrefix` pins the API version (v1.41 = Docker 20.10, which Debian 12
  // ships); newer engines still serve it.
  EngineClient(boost::asio::any_io_executor executor, std::filesystem::path socket, std::string apiPrefix = "/v1.41");

  const std::filesystem::path& socket() const { return socket_; }

  // One request with an optional body. Any HTTP status is a response; only
  // transport failures (engine not running, timeout, oversized body) are
  // errors, phrased for the operator.
  boost::asio::awaitable<EngineResult> request(boost::beast::http::verb method, std::string target, std::string body,
                                               RequestOptions options);
  // Overloads rather than default arguments: GCC 12 destroys a coroutine's
  // defaulted by-value arguments twice (a double free we hit).
  boost::asio::awaitable<EngineResult> request(boost::beast::http::verb method, std::string target) {
    return request(method, std::move(target), std::string(), RequestOptions());
  }
  boost::asio::awaitable<EngineResult> request(boost::beast::http::verb method, std::string target, std::string body) {
    return request(method, std::move(target), std::move(body), RequestOptions());
  }

  // Sends a file as the request body (image import), without loading it.
  boost::asio::awaitable<EngineResult> upload(boost::beast::http::verb method, std::string target,
                                              std::filesystem::path file, RequestOptions options);

  // A request whose 2xx body is handed to `onData` piece by piece as it
  // arrives (chunked encoding already undone); the returned response then
  // has an empty body. A non-2xx body is read whole (capped) into the
  // response. Cancelling ends it with the response so far, not an error.
  boost::asio::awaitable<EngineResult> stream(boost::beast::http::verb method, std::string target,
                                              std::function<void(std::string_view)> onData, RequestOptions options,
                                              std::shared_ptr<StreamCanceller> canceller);

  // Shutdown: closes every connection open now; they and every later
  // request fail with "tinyFaaS is shutting down". Meant for a client of its
  // own (runtime image builds): container stops still need theirs.
  void closeAll();

 private:
  class OpenConnection;
  static std::string shuttingDown(std::string_view what);
  std::string failure(std::string_view what, std::string why) const;

  template <class Request>
  boost::asio::awaitable<EngineResult> exchange(Request& request, const RequestOptions& options);

  boost::asio::any_io_executor executor_;
  std::filesystem::path socket_;
  std::string apiPrefix_;
  std::list<std::function<void()>> open_;  // one closer per open connection
  bool closed_ = false;
};

// DOCKER_HOST ("unix:///run/docker.sock") or a plain socket path to a socket
// path; "" means the default /var/run/docker.sock. Other schemes (tcp://,
// ssh://) are refused: the engine must be local.
boost::system::result<std::filesystem::path, std::string> parseDockerHost(std::string_view host);

// Percent-encodes a query-string value (RFC 3986 unreserved characters kept).
std::string encodeQueryValue(std::string_view value);

}  // namespace tinyfaas::docker
