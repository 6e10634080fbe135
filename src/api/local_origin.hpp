#pragma once
// Without tokens the management API has no authentication and listens on
// loopback, so what keeps a web page from driving it is this check: a
// browser sends any site's "simple" POSTs (Content-Type text/plain, no
// preflight) to 127.0.0.1, and a name an attacker rebinds to 127.0.0.1
// makes the page same-origin with the API (DNS rebinding). Browsers always
// send Host, and Origin on every POST and cross-origin request; curl and
// scripts send Host only.

#include <optional>
#include <string>
#include <string_view>

#include "net/http_server.hpp"

namespace tinyfaas {

// "localhost", a name under ".localhost" (browsers resolve those to
// loopback themselves, RFC 6761), or a loopback address (127.0.0.0/8, ::1,
// ::ffff:127.x.x.x); any case, with or without a trailing dot, IPv6 in
// brackets or not.
bool isLoopbackName(std::string_view host);

// Why `header` is refused, in one line, or nothing. Refused: a Host that is
// not a loopback name (its port is not checked; a missing Host, which no
// browser sends, is accepted); an Origin other than http://HOST:PORT with a
// loopback HOST and the PORT of the Host header; a Sec-Fetch-Site other
// than same-origin or none.
std::optional<std::string> foreignRequestReason(const HttpRequest& header);

}  // namespace tinyfaas
