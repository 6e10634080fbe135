#pragma once
// An absolute URL as people type them on command lines
// (SCHEME://HOST[:PORT][/PATH][?QUERY]), parsed by Boost.URL, with the checks
// every caller wants: a host, no user info, a usable port.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/system/result.hpp>

namespace tinyfaas {

struct WebUrl {
  std::string scheme;                 // lower case
  std::string host;                   // without IPv6 brackets; may be empty (see below)
  std::optional<std::uint16_t> port;  // when the URL names one
  std::string path;                   // as written, may be empty
  std::optional<std::string> query;   // without the '?'
  bool hasFragment = false;
};

// Errors read `invalid URL "TEXT": REASON`. A host is required unless
// `allowEmptyHost` (for schemes like http+unix:///socket:/path).
boost::system::result<WebUrl, std::string> parseWebUrl(std::string_view url, bool allowEmptyHost = false);

// `url` as SCHEME://HOST[:PORT]/PATH for logs and error messages: without
// user name, password, query and fragment, which may hold secrets.
std::string urlWithoutSecrets(std::string_view url);

}  // namespace tinyfaas
