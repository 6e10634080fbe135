#include "net/listen_socket.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/ip/v6_only.hpp>

namespace tinyfaas {

namespace asio = boost::asio;
using asio::ip::tcp;

boost::system::error_code listenOn(tcp::acceptor& acceptor, const tcp::endpoint& endpoint) {
  boost::system::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec && endpoint.address().is_v6() && endpoint.address().is_unspecified())
    acceptor.set_option(asio::ip::v6_only(false), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  return ec;
}

std::string usableListenAddress(const std::string& address, std::string& why) {
  why.clear();
  if (address != "::") return address;
  // Binding [::]:0 is what the endpoints will do; a kernel without IPv6
  // refuses the socket (EAFNOSUPPORT), one with IPv6 disabled the bind.
  const int fd = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int error = fd < 0 ? errno : 0;
  if (fd >= 0) {
    sockaddr_in6 any{};
    any.sin6_family = AF_INET6;
    any.sin6_addr = in6addr_any;
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&any), sizeof any) != 0) error = errno;
    ::close(fd);
  }
  if (error == 0) return address;
  why = std::string("this host has no usable IPv6 (") + std::strerror(error) +
        "); the function endpoints listen on 0.0.0.0 (IPv4 only) instead of ::";
  return "0.0.0.0";
}

std::string formatListenAddress(const std::string& address, unsigned port) {
  const bool v6 = address.find(':') != std::string::npos;
  return (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

}  // namespace tinyfaas
