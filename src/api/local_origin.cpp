#include "api/local_origin.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/url/parse.hpp>

namespace tinyfaas {

namespace http = boost::beast::http;

namespace {

std::string lowered(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// HOST[:PORT] or [V6][:PORT] split into the host (brackets kept) and the
// port; nullopt when malformed. `defaultPort` when it names none.
struct Authority {
  std::string_view host;
  unsigned port;
};

std::optional<Authority> splitAuthority(std::string_view text, unsigned defaultPort) {
  std::string_view host = text;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(0, close + 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
    }
  } else if (const auto colon = text.find(':'); colon != std::string_view::npos) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (port.find(':') != std::string_view::npos) return std::nullopt;
  }
  if (host.empty()) return std::nullopt;
  unsigned number = defaultPort;
  if (!port.empty()) {
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
    if (ec != std::errc() || end != port.data() + port.size() || number > 65535) return std::nullopt;
  }
  return Authority{host, number};
}

// Keeps a reason one short line whatever the client sent.
std::string quoted(std::string_view value) {
  constexpr std::size_t kMax = 100;
  std::string out(value.substr(0, kMax));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return "'" + out + (value.size() > kMax ? "...'" : "'");
}

}  // namespace

bool isLoopbackName(std::string_view host) {
  std::string name = lowered(host);
  if (name.size() >= 2 && name.front() == '[' && name.back() == ']') {
    name = name.substr(1, name.size() - 2);
  } else if (!name.empty() && name.back() == '.') {
    name.pop_back();
  }
  if (name == "localhost" || name.ends_with(".localhost")) return true;
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(name, ec);
  if (ec) return false;
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6()).is_loopback();
  return address.is_loopback();
}

std::optional<std::string> foreignRequestReason(const HttpRequest& header) {
  constexpr std::string_view why = " (without --token-file the API serves only local clients)";
  std::optional<Authority> host;
  if (auto it = header.find(http::field::host); it != header.end()) {
    host = splitAuthority(it->value(), 80);
    if (!host || !isLoopbackName(host->host))
      return "Host " + quoted(it->value()) + " is not a loopback name or address: refused" + std::string(why);
  }
  if (auto it = header.find(http::field::origin); it != header.end()) {
    const std::string_view origin = it->value();
    auto url = boost::urls::parse_absolute_uri(origin);
    const bool local = url && host && url->scheme_id() == boost::urls::scheme::http && !url->has_userinfo() &&
                       url->encoded_path().empty() && !url->has_query() && !url->has_fragment() &&
                       isLoopbackName(url->encoded_host()) &&
                       (url->has_port() ? url->port_number() : 80u) == host->port;
    if (!local) return "cross-origin request refused: Origin " + quoted(origin) + " is not this API" + std::string(why);
  }
  if (auto it = header.find("Sec-Fetch-Site"); it != header.end()) {
    if (!boost::beast::iequals(it->value(), "same-origin") && !boost::beast::iequals(it->value(), "none"))
      return "cross-origin request refused: Sec-Fetch-Site " + quoted(it->value()) + std::string(why);
  }
  return std::nullopt;
}

}  // namespace tinyfaas
