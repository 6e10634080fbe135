#pragma once
// The management API's base URL, as the operator types it.

#include <cstdint>
#include <string>
#include <string_view>

#include "cli/result.hpp"

namespace tinyfaas::cli {

struct HttpUrl {
  std::string host;  // without IPv6 brackets
  std::uint16_t port = 80;
  std::string basePath;  // "" or "/prefix" (no trailing slash), for a daemon behind a path-routing proxy

  // host[:port] as the Host header and messages spell it.
  std::string authority() const;
};

// Accepts http://HOST[:PORT][/PATH]. https is refused with a reason rather
// than silently sent in clear: the client speaks plain HTTP only for now.
Result<HttpUrl> parseHttpUrl(std::string_view url);

}  // namespace tinyfaas::cli
