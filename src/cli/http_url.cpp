#include "cli/http_url.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace tinyfaas::cli {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::string HttpUrl::authority() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  std::string out = ipv6 ? "[" + host + "]" : host;
  if (port != 80) out += ":" + std::to_string(port);
  return out;
}

Result<HttpUrl> parseHttpUrl(std::string_view url) {
  const std::string quoted = "\"" + std::string(url) + "\"";
  const auto schemeEnd = url.find("://");
  if (schemeEnd == std::string_view::npos) {
    return failure("invalid URL " + quoted + ": expected http://HOST[:PORT]");
  }
  const std::string scheme = lower(url.substr(0, schemeEnd));
  if (scheme == "https") {
    return failure("invalid URL " + quoted +
                      ": https is not supported yet; use http:// (e.g. through an SSH tunnel)");
  }
  if (scheme != "http") return failure("invalid URL " + quoted + ": only http:// is supported");

  std::string_view rest = url.substr(schemeEnd + 3);
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return failure("invalid URL " + quoted + ": a query or fragment makes no sense in a base URL");
  }
  const auto pathStart = rest.find('/');
  std::string_view authority = rest.substr(0, pathStart);
  std::string_view path = pathStart == std::string_view::npos ? std::string_view{} : rest.substr(pathStart);
  if (authority.find('@') != std::string_view::npos) {
    return failure("invalid URL " + quoted + ": user names and passwords are not supported");
  }

  HttpUrl parsed;
  std::string_view portText;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return failure("invalid URL " + quoted + ": unterminated [IPv6 address]");
    parsed.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (!after.starts_with(':')) return failure("invalid URL " + quoted + ": junk after the IPv6 address");
      portText = after.substr(1);
      if (portText.empty()) return failure("invalid URL " + quoted + ": empty port");
    }
  } else {
    const auto colon = authority.find(':');
    parsed.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      portText = authority.substr(colon + 1);
      if (portText.empty()) return failure("invalid URL " + quoted + ": empty port");
    }
  }
  if (parsed.host.empty()) return failure("invalid URL " + quoted + ": no host");
  if (!portText.empty()) {
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
    if (ec != std::errc{} || end != portText.data() + portText.size() || port == 0 || port > 65535) {
      return failure("invalid URL " + quoted + ": bad port \"" + std::string(portText) + "\"");
    }
    parsed.port = static_cast<std::uint16_t>(port);
  }
  while (path.ends_with('/')) path.remove_suffix(1);
  parsed.basePath = std::string(path);
  return parsed;
}

}  // namespace tinyfaas::cli
