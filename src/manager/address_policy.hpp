#pragma once
// Which addresses a tenant's /uploadURL download may connect to: public
// unicast addresses that are not the node's own, plus the ranges the
// operator allows (--upload-url-allow). Without it, a tenant could make the
// node fetch from its loopback services, the LAN or a cloud metadata
// address, and read the answers through deploy errors.

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/system/result.hpp>

namespace tinyfaas {

// An IPv4 or IPv6 CIDR range, e.g. 10.0.0.0/8 or fd00::/8.
struct AddressRange {
  boost::asio::ip::address network;
  unsigned prefix = 0;
  bool contains(const boost::asio::ip::address& address) const;
  std::string text() const;
};

// "ADDRESS/PREFIX" (host bits must be zero), or a one-line reason.
boost::system::result<AddressRange, std::string> parseAddressRange(std::string_view text);

// What kind of non-public address `address` is ("loopback", "private",
// "link-local", ...), or nothing for a public unicast address. Addresses
// that embed IPv4 (::ffff:a.b.c.d, 64:ff9b::/96, 2002::/16) are judged by
// the IPv4 address inside.
std::optional<std::string_view> nonPublicKind(const boost::asio::ip::address& address);

class AddressPolicy {
 public:
  AddressPolicy() = default;
  explicit AddressPolicy(std::vector<AddressRange> allowed) : allowed_(std::move(allowed)) {}

  // In an allowed range, or public and not one of the node's addresses (as
  // getifaddrs lists them at this moment). Thread-safe.
  bool permits(const boost::asio::ip::address& address) const;

 private:
  std::vector<AddressRange> allowed_;
};

}  // namespace tinyfaas
