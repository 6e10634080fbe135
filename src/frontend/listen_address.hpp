#pragma once
// A frontend's listen address (numeric IPv4 or IPv6, no names), and how
// messages show it with the port ("127.0.0.1:5683", "[::1]:9000").

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/asio/ip/address.hpp>
#include <boost/system/result.hpp>

namespace tinyfaas {

struct ListenAddress {
  boost::asio::ip::address ip;
  std::string where;
};

// `protocol` names the endpoint in the error ("CoAP", "gRPC").
inline boost::system::result<ListenAddress, std::string> parseListenAddress(std::string_view protocol,
                                                                            const std::string& address,
                                                                            std::uint16_t port) {
  boost::system::error_code ec;
  const boost::asio::ip::address ip = boost::asio::ip::make_address(address, ec);
  if (ec) {
    return "invalid " + std::string(protocol) + " listen address '" + address +
           "' (expected a numeric IPv4 or IPv6 address)";
  }
  return ListenAddress{ip, (ip.is_v6() ? "[" + address + "]" : address) + ":" + std::to_string(port)};
}

}  // namespace tinyfaas
