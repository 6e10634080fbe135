#include "cli/http_url.hpp"

#include "util/web_url.hpp"

namespace tinyfaas::cli {

std::string HttpUrl::authority() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  std::string out = ipv6 ? "[" + host + "]" : host;
  if (port != 80) out += ":" + std::to_string(port);
  return out;
}

Result<HttpUrl> parseHttpUrl(std::string_view url) {
  auto parsed = parseWebUrl(url);
  if (!parsed) return failure(parsed.error());
  const std::string quoted = "\"" + std::string(url) + "\"";
  if (parsed->scheme == "https") {
    return failure("invalid URL " + quoted + ": https is not supported yet; use http:// (e.g. through an SSH tunnel)");
  }
  if (parsed->scheme != "http") return failure("invalid URL " + quoted + ": only http:// is supported");
  if (parsed->query || parsed->hasFragment) {
    return failure("invalid URL " + quoted + ": a query or fragment makes no sense in a base URL");
  }
  HttpUrl out;
  out.host = std::move(parsed->host);
  out.port = parsed->port.value_or(80);
  std::string_view path = parsed->path;
  while (path.ends_with('/')) path.remove_suffix(1);
  out.basePath = std::string(path);
  return out;
}

}  // namespace tinyfaas::cli
