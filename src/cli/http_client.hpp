#pragma once
// One synchronous HTTP/1.1 exchange over TCP, bounded in time and size. The
// management client and `invoke --protocol http` both go through it.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/result.hpp"

namespace tinyfaas::cli {

enum class HttpMethod { get, post };

struct HttpRequest {
  HttpMethod method = HttpMethod::get;
  std::string host;
  std::uint16_t port = 80;
  std::string target = "/";  // path and query, already percent-encoded
  std::string body;
  std::string contentType;  // sent only when non-empty
  std::vector<std::pair<std::string, std::string>> headers;
  // One deadline for connecting, sending and reading the whole reply.
  std::chrono::milliseconds timeout{10'000};
  std::uint64_t bodyLimit = 64 * 1024 * 1024;
  // When set, a 2xx reply's body goes here piece by piece as it arrives (a
  // followed log), unbounded in size and time: the deadline then covers only
  // connecting, sending and the reply's header. Other replies' bodies land in
  // HttpResponse::body as usual.
  std::function<void(std::string_view)> onBody;
};

struct HttpResponse {
  unsigned status = 0;
  std::string reason;
  std::string body;
  std::string location;  // the Location header (an asynchronous call's /calls/ID), if any
};

struct HttpError {
  enum class Kind {
    resolve,   // the host name did not resolve
    connect,   // no connection (refused, unreachable, timed out while connecting)
    timeout,   // connected, but no complete reply before the deadline
    exchange,  // connected, but the peer broke the exchange or spoke no HTTP
    tooLarge,  // the reply body exceeded bodyLimit
  };
  Kind kind;
  std::string detail;  // lower-case, no trailing period: "connection refused"
};

// Blocks the calling thread (it runs its own io_context). The error is what
// went wrong with the exchange; any HTTP status, 4xx and 5xx included, is a
// response for the caller to judge.
Result<HttpResponse, HttpError> sendHttpRequest(const HttpRequest& request);

}  // namespace tinyfaas::cli
