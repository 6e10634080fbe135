#include "util/web_url.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <boost/url/parse.hpp>

namespace tinyfaas {

boost::system::result<WebUrl, std::string> parseWebUrl(std::string_view url, bool allowEmptyHost) {
  const auto invalid = [&](std::string_view reason) {
    return boost::system::result<WebUrl, std::string>{
        boost::system::in_place_error, "invalid URL \"" + std::string(url) + "\": " + std::string(reason)};
  };
  const auto parsed = boost::urls::parse_uri(url);
  // "localhost:8080" is a valid URI (scheme "localhost"), but not what anyone means.
  if (!parsed || !parsed->has_authority()) return invalid("expected SCHEME://HOST[:PORT][/PATH]");
  if (parsed->has_userinfo()) return invalid("user names and passwords are not supported");

  WebUrl out;
  out.scheme = std::string(parsed->scheme());
  std::transform(out.scheme.begin(), out.scheme.end(), out.scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  out.host = parsed->host_address();
  if (out.host.empty() && !allowEmptyHost) return invalid("no host");
  if (parsed->has_port()) {
    const std::string_view text = parsed->port();
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || port == 0 || port > 65535)
      return invalid("port must be 1-65535");
    out.port = static_cast<std::uint16_t>(port);
  }
  out.path = std::string(parsed->encoded_path());
  // Boost.URL 1.81 lets "http://x:8a" through as port 8, path "a".
  if (!out.path.empty() && !out.path.starts_with('/')) return invalid("junk after HOST[:PORT]");
  if (parsed->has_query()) out.query = std::string(parsed->encoded_query());
  out.hasFragment = parsed->has_fragment();
  return out;
}

std::string urlWithoutSecrets(std::string_view url) {
  const auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return "(a malformed URL)";
  std::string out = std::string(parsed->scheme()) + ":";
  if (parsed->has_authority()) out += "//" + std::string(parsed->encoded_host_and_port());
  return out + std::string(parsed->encoded_path());
}

}  // namespace tinyfaas
