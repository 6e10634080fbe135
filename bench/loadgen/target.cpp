#include "target.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace tinyfaas::bench {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
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
  const auto schemeEnd = url.find("://");
  if (schemeEnd == std::string_view::npos) return "invalid URL " + quoted + ": expected SCHEME://...";
  const std::string scheme = lower(url.substr(0, schemeEnd));
  std::string_view rest = url.substr(schemeEnd + 3);

  Target target;
  target.url = std::string(url);
  if (scheme == "http+unix") {
    // The socket path itself may contain ':' but not ":/" in practice;
    // splitting at the last ":/" keeps "/run/a:b/handler.sock:/fn" working.
    const auto split = rest.rfind(":/");
    if (!rest.starts_with('/') || split == std::string_view::npos || split == 0) {
      return "invalid URL " + quoted + ": expected http+unix:///ABSOLUTE/SOCKET/PATH:/REQUEST-PATH";
    }
    target.protocol = Protocol::httpUnix;
    target.socketPath = std::string(rest.substr(0, split));
    target.path = std::string(rest.substr(split + 1));
    return target;
  }
  if (scheme == "http") {
    target.protocol = Protocol::http;
    target.port = 80;
  } else if (scheme == "coap") {
    target.protocol = Protocol::coap;
    target.port = 5683;
  } else if (scheme == "grpc") {
    target.protocol = Protocol::grpc;
    target.port = 9000;
  } else {
    return "invalid URL " + quoted + ": scheme must be http, coap, grpc or http+unix";
  }

  if (const auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  const auto pathStart = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, pathStart);
  std::string path = pathStart == std::string_view::npos ? "/" : std::string(rest.substr(pathStart));
  if (path.starts_with('?')) path.insert(0, "/");
  if (authority.find('@') != std::string_view::npos) return "invalid URL " + quoted + ": user info is not supported";

  std::string_view portText;
  bool hasPort = false;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return "invalid URL " + quoted + ": unterminated [IPv6 address]";
    target.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (!after.starts_with(':')) return "invalid URL " + quoted + ": junk after the IPv6 address";
      portText = after.substr(1);
      hasPort = true;
    }
  } else {
    const auto colon = authority.find(':');
    target.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      portText = authority.substr(colon + 1);
      hasPort = true;
    }
  }
  if (target.host.empty()) return "invalid URL " + quoted + ": no host";
  if (hasPort) {
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
    if (portText.empty() || ec != std::errc{} || end != portText.data() + portText.size() || port == 0 || port > 65535) {
      return "invalid URL " + quoted + ": port must be 1-65535";
    }
    target.port = static_cast<std::uint16_t>(port);
  }

  if (target.protocol == Protocol::grpc) {
    // gRPC names the function in the message, not in a path.
    std::string_view function = path;
    while (function.starts_with('/')) function.remove_prefix(1);
    if (function.empty() || function.find_first_of("/?") != std::string_view::npos) {
      return "invalid URL " + quoted + ": expected grpc://HOST:PORT/FUNCTION";
    }
    target.path = std::string(function);
  } else {
    target.path = std::move(path);
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
