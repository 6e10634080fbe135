#include "cli/invoke.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "cli/coap_client.hpp"
#include "cli/grpc_client.hpp"
#include "cli/http_client.hpp"
#include "cli/reply_text.hpp"
#include "core/function_name.hpp"

namespace tinyfaas::cli {
namespace {

// A function may compute for a while before answering over HTTP; CoAP
// clients on devices give up after a few seconds, and so does this one, to
// show what they would see.
constexpr double kHttpTimeoutSeconds = 60;
constexpr double kCoapTimeoutSeconds = 5;

Result<std::string> readAll(std::istream& in, const std::string& what) {
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return failure("cannot read " + what);
  return success(std::move(buffer).str());
}

Result<std::string> readInput(const InvokeOptions& options, const ClientIo& io) {
  // --data @FILE is --file FILE, as with curl.
  std::optional<std::string> fileName = options.file;
  if (options.data) {
    if (!options.data->starts_with('@')) return success(*options.data);
    fileName = options.data->substr(1);
  }
  if (fileName && *fileName != "-") {
    std::ifstream file(*fileName, std::ios::binary);
    if (!file) return failure(*fileName + ": cannot open for reading");
    return readAll(file, *fileName);
  }
  // A terminal on stdin means nobody piped anything in: waiting for the user
  // to type a payload and press Ctrl-D would look like a hang.
  if (fileName || !io.inIsTerminal) {
    return readAll(io.in, "standard input");
  }
  return success(std::string());
}

Result<std::uint16_t> endpointPort(const InvokeOptions& options, const ClientIo& io, const std::string& envName,
                                   std::uint16_t fallback) {
  if (options.port) {
    if (*options.port < 1 || *options.port > 65535) {
      return failure("--port " + std::to_string(*options.port) + ": expected 1-65535");
    }
    return static_cast<std::uint16_t>(*options.port);
  }
  const auto fromEnv = io.getEnv(envName);
  if (!fromEnv || fromEnv->empty()) return fallback;
  int port = 0;
  const auto [end, ec] = std::from_chars(fromEnv->data(), fromEnv->data() + fromEnv->size(), port);
  if (ec == std::errc{} && end == fromEnv->data() + fromEnv->size() && port == -1) {
    return failure(envName + "=-1 disables that endpoint; pass --port to call another one");
  }
  if (ec != std::errc{} || end != fromEnv->data() + fromEnv->size() || port < 1 || port > 65535) {
    return failure(envName + "=\"" + *fromEnv + "\": expected a port number");
  }
  return static_cast<std::uint16_t>(port);
}

std::string hostForUrl(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

int invokeHttp(const InvokeOptions& options, const std::string& host, std::uint16_t port,
               std::chrono::milliseconds timeout, std::string payload, const ClientIo& io) {
  HttpRequest request;
  request.method = HttpMethod::post;
  request.host = host;
  request.port = port;
  request.target = "/" + options.name;
  request.body = std::move(payload);
  request.timeout = timeout;
  request.bodyLimit = options.maxBodyBytes;
  for (const auto& header : options.headers) {
    const auto colon = header.find(':');
    std::string value = header.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    request.headers.emplace_back(header.substr(0, colon), std::move(value));
  }
  if (options.async) request.headers.emplace_back("X-tinyFaaS-Async", "true");

  const std::string where = "http://" + hostForUrl(host) + ":" + std::to_string(port);
  auto response = sendHttpRequest(request);
  if (!response) {
    const HttpError& error = response.error();
    switch (error.kind) {
      case HttpError::Kind::resolve:
        return io.fail(kExitFailure, "cannot reach the HTTP endpoint at " + where + ": " + error.detail);
      case HttpError::Kind::connect:
        return io.fail(kExitFailure, "cannot reach the HTTP endpoint at " + where + ": " + error.detail +
                                         " (is `tinyfaas serve` running?)");
      case HttpError::Kind::timeout:
        return io.fail(kExitFailure, "no answer from " + where + "/" + options.name + ": " + error.detail);
      case HttpError::Kind::exchange:
      case HttpError::Kind::tooLarge:
        return io.fail(kExitFailure, "bad reply from " + where + "/" + options.name + ": " + error.detail);
    }
  }
  // 200 for a result, 202 for --async; anything else is the daemon's or the
  // function's failure, and its body says why.
  if (response->status < 200 || response->status > 299) {
    return io.fail(kExitFailure, statusLine(response->status, response->reason, response->body));
  }
  // An asynchronous call: where its result will be (GET it later).
  if (response->status == 202 && response->location.starts_with("/")) {
    io.out << where << response->location << '\n';
    return kExitOk;
  }
  printBody(io.out, response->body, io.outIsTerminal);
  return kExitOk;
}

int invokeCoap(const InvokeOptions& options, const std::string& host, std::uint16_t port,
               std::chrono::milliseconds timeout, std::string payload, const ClientIo& io) {
  CoapRequest request;
  request.host = host;
  request.port = port;
  request.path = options.name;
  request.payload = std::move(payload);
  request.timeout = timeout;

  const std::string where = "coap://" + hostForUrl(host) + ":" + std::to_string(port);
  auto response = sendCoapPost(request);
  if (!response) {
    const CoapError& error = response.error();
    switch (error.kind) {
      case CoapError::Kind::resolve:
        return io.fail(kExitFailure, "cannot reach the CoAP endpoint at " + where + ": " + error.detail);
      case CoapError::Kind::unreachable:
        return io.fail(kExitFailure, "cannot reach the CoAP endpoint at " + where + ": " + error.detail +
                                         " (is `tinyfaas serve` running?)");
      case CoapError::Kind::timeout:
        // UDP gives no "refused" unless the host says so; silence is the
        // usual sign of a daemon that is not running.
        return io.fail(kExitFailure, "no answer from " + where + "/" + options.name + ": " + error.detail +
                                         " (is `tinyfaas serve` running?)");
      case CoapError::Kind::setup: return io.fail(kExitFailure, error.detail);
    }
  }
  if ((response->code >> 5) != 2) {
    return io.fail(kExitFailure, statusLine(coapCodeText(response->code), response->body));
  }
  printBody(io.out, response->body, io.outIsTerminal);
  return kExitOk;
}

int invokeGrpc(const InvokeOptions& options, const std::string& host, std::uint16_t port,
               std::chrono::milliseconds timeout, std::string payload, const ClientIo& io) {
  GrpcRequest request;
  request.host = host;
  request.port = port;
  request.function = options.name;
  request.payload = std::move(payload);
  request.timeout = timeout;
  request.maxMessageBytes = options.maxBodyBytes;
  for (const auto& header : options.headers) {
    const auto colon = header.find(':');
    std::string key = header.substr(0, colon);
    // gRPC metadata keys are lower case; the daemon capitalises them again.
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string value = header.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    request.metadata.emplace_back(std::move(key), std::move(value));
  }
  const GrpcReply reply = sendGrpcRequest(request);
  if (!reply.ok) return io.fail(kExitFailure, statusLine(reply.statusName, reply.body));
  printBody(io.out, reply.body, io.outIsTerminal);
  return kExitOk;
}

}  // namespace

int runInvoke(const InvokeOptions& options, const ClientIo& io) {
  if (!isValidFunctionName(options.name)) {
    return io.fail(kExitUsage, "invalid function name \"" + options.name + "\": use " + std::string(kFunctionNameRule));
  }
  const bool http = options.protocol == "http";
  const bool grpc = options.protocol == "grpc";
  if (!http && !grpc && options.protocol != "coap") {
    return io.fail(kExitUsage, "unknown protocol \"" + options.protocol + "\": use http, coap or grpc");
  }
  if (!http && options.async) return io.fail(kExitUsage, "--async works over http only");
  if (!http && !grpc && !options.headers.empty()) return io.fail(kExitUsage, "--header works over http and grpc only");
  for (const auto& header : options.headers) {
    const auto colon = header.find(':');
    if (colon == std::string::npos || colon == 0 || header.find_first_of("\r\n") != std::string::npos) {
      return io.fail(kExitUsage, "--header \"" + header + "\": expected \"Name: value\"");
    }
  }
  auto host = resolveEndpointHost(options.endpoint, options.management, io);
  if (!host) return io.fail(kExitUsage, host.error());
  if (host->empty()) return io.fail(kExitUsage, "the endpoint host must not be empty");

  const double seconds = options.timeoutSeconds.value_or(http || grpc ? kHttpTimeoutSeconds : kCoapTimeoutSeconds);
  if (!(seconds > 0) || seconds > 86'400) return io.fail(kExitUsage, "--timeout must be between 0 and 86400 seconds");
  const auto timeout = std::chrono::milliseconds(static_cast<long long>(std::ceil(seconds * 1000)));

  auto port = http   ? endpointPort(options, io, "HTTP_PORT", 8000)
              : grpc ? endpointPort(options, io, "GRPC_PORT", 9000)
                     : endpointPort(options, io, "COAP_PORT", 5683);
  if (!port) return io.fail(kExitUsage, port.error());

  auto payload = readInput(options, io);
  if (!payload) return io.fail(kExitFailure, payload.error());

  if (grpc) return invokeGrpc(options, *host, *port, timeout, std::move(*payload), io);
  return http ? invokeHttp(options, *host, *port, timeout, std::move(*payload), io)
              : invokeCoap(options, *host, *port, timeout, std::move(*payload), io);
}

}  // namespace tinyfaas::cli
