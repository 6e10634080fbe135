#pragma once
// Listening sockets of the endpoints. `::` listens dual-stack: IPv6 and,
// as IPv4-mapped addresses, IPv4 too (IPV6_V6ONLY off, whatever the
// host's net.ipv6.bindv6only says), so one socket serves both families.

#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

namespace tinyfaas {

// Opens, binds and listens `acceptor` on `endpoint`.
boost::system::error_code listenOn(boost::asio::ip::tcp::acceptor& acceptor,
                                   const boost::asio::ip::tcp::endpoint& endpoint);

// `address`, or 0.0.0.0 when it is `::` and this host has no IPv6 (a kernel
// without it, or disabled): endpoints then listen on IPv4 instead of
// failing to start. `why` says what happened when it changed.
std::string usableListenAddress(const std::string& address, std::string& why);

// "[::]:8000", "0.0.0.0:8000": for log lines and errors.
std::string formatListenAddress(const std::string& address, unsigned port);

}  // namespace tinyfaas
