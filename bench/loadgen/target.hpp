#pragma once
// What a load run is aimed at: parsed from a URL on the command line.

#include <boost/system/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace tinyfaas::bench {

enum class Protocol { http, httpUnix, coap, grpc };

std::string_view protocolName(Protocol protocol);

struct Target {
  Protocol protocol = Protocol::http;
  std::string host;  // without IPv6 brackets; empty for http+unix
  std::uint16_t port = 0;
  std::string path;        // http, http+unix: request target ("/fn?x=1"); coap: "/a/b?q"; grpc: function name
  std::string socketPath;  // http+unix only
  std::string url;         // as given, for reports
};

// Accepted forms:
//   http://HOST[:PORT]/PATH        (port 80 by default)
//   coap://HOST[:PORT]/PATH        (port 5683)
//   grpc://HOST[:PORT]/FUNCTION    (port 9000, tinyFaaS' default)
//   http+unix:///abs/path.sock:/PATH   (a handler's Unix socket; PATH after the last ":/")
boost::system::result<Target, std::string> parseTarget(std::string_view url);

// True for literal loopback addresses (127.0.0.0/8, ::1, ::ffff:127.x.y.z)
// and the name "localhost". Deliberately no DNS: a name that merely resolves
// to loopback today is not trusted to do so tomorrow.
bool isLoopbackHost(std::string_view host);

// Loopback targets always pass; anything else only with allowRemote.
// Returns a one-line reason when refused.
boost::system::result<void, std::string> checkTargetAllowed(const Target& target, bool allowRemote);

}  // namespace tinyfaas::bench
