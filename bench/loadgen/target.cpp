#include "target.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include "util/web_url.hpp"

namespace tinyfaas::bench {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::string_view protocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::http: return "http";
    case Protocol::httpUnix: return "http+unix";
    case Protocol::coap: return "coap";
    case Protocol::grpc: return "grpc";
  }
  return "?";
}

boost::system::result<Target, std::string> parseTarget(std::string_view url) {
  const std::string quoted = "\"" + std::string(url) + "\"";
  auto parsed = parseWebUrl(url, /*allowEmptyHost=*/true);
  if (!parsed) return parsed.error();

  Target target;
  target.url = std::string(url);
  if (parsed->scheme == "http+unix") {
    // The socket path itself may contain ':' but not ":/" in practice;
    // splitting at the last ":/" keeps "/run/a:b/handler.sock:/fn" working.
    const std::string_view rest = parsed->path;
    const auto split = rest.rfind(":/");
    if (!parsed->host.empty() || parsed->port || !rest.starts_with('/') || split == std::string_view::npos) {
      return "invalid URL " + quoted + ": expected http+unix:///ABSOLUTE/SOCKET/PATH:/REQUEST-PATH";
    }
    target.protocol = Protocol::httpUnix;
    target.socketPath = std::string(rest.substr(0, split));
    target.path = std::string(rest.substr(split + 1));
    if (parsed->query) target.path += "?" + *parsed->query;
    return target;
  }
  if (parsed->scheme == "http") {
    target.protocol = Protocol::http;
    target.port = 80;
  } else if (parsed->scheme == "coap") {
    target.protocol = Protocol::coap;
    target.port = 5683;
  } else if (parsed->scheme == "grpc") {
    target.protocol = Protocol::grpc;
    target.port = 9000;
  } else {
    return "invalid URL " + quoted + ": scheme must be http, coap, grpc or http+unix";
  }
  if (parsed->host.empty()) return "invalid URL " + quoted + ": no host";
  target.host = std::move(parsed->host);
  target.port = parsed->port.value_or(target.port);

  if (target.protocol == Protocol::grpc) {
    // gRPC names the function in the message, not in a path.
    std::string_view function = parsed->path;
    while (function.starts_with('/')) function.remove_prefix(1);
    if (function.empty() || parsed->query || function.find('/') != std::string_view::npos) {
      return "invalid URL " + quoted + ": expected grpc://HOST:PORT/FUNCTION";
    }
    target.path = std::string(function);
  } else {
    target.path = parsed->path.empty() ? "/" : parsed->path;
    if (parsed->query) target.path += "?" + *parsed->query;
  }
  return target;
}

bool isLoopbackHost(std::string_view host) {
  const std::string name = lower(host);
  if (name == "localhost" || name == "localhost.") return true;
  const std::string text(host);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&v6)) return v6.s6_addr[12] == 127;
  }
  return false;
}

boost::system::result<void, std::string> checkTargetAllowed(const Target& target, bool allowRemote) {
  // A Unix socket is on this host by construction.
  if (target.protocol == Protocol::httpUnix || allowRemote || isLoopbackHost(target.host)) return {};
  return "refusing to load " + target.host +
         ": only loopback targets (127.0.0.0/8, ::1, localhost) unless --allow-remote is given";
}

}  // namespace tinyfaas::bench
