#include "manager/address_policy.hpp"

#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <memory>

namespace tinyfaas {

namespace ip = boost::asio::ip;

namespace {

// `bytes` with all but the first `prefix` bits cleared.
template <std::size_t N>
std::array<unsigned char, N> masked(std::array<unsigned char, N> bytes, unsigned prefix) {
  for (auto& byte : bytes) {
    const unsigned keep = std::min(prefix, 8u);
    byte &= static_cast<unsigned char>(0xff00u >> keep);
    prefix -= keep;
  }
  return bytes;
}

template <std::size_t N>
bool samePrefix(const std::array<unsigned char, N>& a, const std::array<unsigned char, N>& b, unsigned prefix) {
  return masked(a, prefix) == masked(b, prefix);
}

struct Kind {
  const char* network;
  unsigned prefix;
  std::string_view kind;
};

// IANA's special-purpose registries (RFC 6890 and successors), minus what
// is globally reachable.
constexpr Kind kSpecialV4[] = {
    {"0.0.0.0", 8, "\"this network\""},   {"10.0.0.0", 8, "private"},         {"100.64.0.0", 10, "shared (CGNAT)"},
    {"127.0.0.0", 8, "loopback"},         {"169.254.0.0", 16, "link-local"},  {"172.16.0.0", 12, "private"},
    {"192.0.0.0", 24, "IETF protocol"},   {"192.0.2.0", 24, "documentation"}, {"192.88.99.0", 24, "6to4 relay"},
    {"192.168.0.0", 16, "private"},       {"198.18.0.0", 15, "benchmarking"}, {"198.51.100.0", 24, "documentation"},
    {"203.0.113.0", 24, "documentation"}, {"224.0.0.0", 4, "multicast"},      {"240.0.0.0", 4, "reserved"},
};
constexpr Kind kSpecialV6[] = {
    {"::", 96, "unspecified or IPv4-compatible"},  // ::1 is caught before, as loopback
    {"64:ff9b:1::", 48, "local NAT64"},
    {"100::", 64, "discard"},
    {"2001::", 23, "IETF protocol"},
    {"2001:db8::", 32, "documentation"},
    {"fc00::", 7, "unique local (ULA)"},
    {"fe80::", 10, "link-local"},
    {"fec0::", 10, "site-local"},
    {"ff00::", 8, "multicast"},
};

std::optional<std::string_view> kindOfV4(const ip::address_v4& address) {
  const auto bytes = address.to_bytes();
  for (const auto& special : kSpecialV4) {
    if (samePrefix(bytes, ip::make_address_v4(special.network).to_bytes(), special.prefix)) return special.kind;
  }
  return std::nullopt;
}

// The IPv4 address an IPv6 one stands for, if it is one of those forms.
std::optional<ip::address_v4> embeddedV4(const ip::address_v6& address) {
  const auto bytes = address.to_bytes();
  auto at = [&](std::size_t offset) {
    return ip::address_v4(
        ip::address_v4::bytes_type{bytes[offset], bytes[offset + 1], bytes[offset + 2], bytes[offset + 3]});
  };
  if (address.is_v4_mapped()) return at(12);
  if (samePrefix(bytes, ip::make_address_v6("64:ff9b::").to_bytes(), 96)) return at(12);  // NAT64
  if (samePrefix(bytes, ip::make_address_v6("2002::").to_bytes(), 16)) return at(2);      // 6to4
  return std::nullopt;
}

std::optional<ip::address> fromSockaddr(const sockaddr* address) {
  if (address == nullptr) return std::nullopt;
  if (address->sa_family == AF_INET) {
    sockaddr_in in;
    std::memcpy(&in, address, sizeof in);
    return ip::address(ip::address_v4(ntohl(in.sin_addr.s_addr)));
  }
  if (address->sa_family == AF_INET6) {
    sockaddr_in6 in6;
    std::memcpy(&in6, address, sizeof in6);
    ip::address_v6::bytes_type bytes;
    std::memcpy(bytes.data(), in6.sin6_addr.s6_addr, bytes.size());
    return ip::address(ip::address_v6(bytes));
  }
  return std::nullopt;
}

bool isOwnAddress(const ip::address& address) {
  ifaddrs* list = nullptr;
  // Unknown means refused: the caller only allows what it is sure of.
  if (getifaddrs(&list) != 0) return true;
  std::unique_ptr<ifaddrs, decltype(&freeifaddrs)> guard(list, &freeifaddrs);
  for (const ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (auto own = fromSockaddr(entry->ifa_addr); own && *own == address) return true;
  }
  return false;
}

}  // namespace

bool AddressRange::contains(const ip::address& address) const {
  if (network.is_v4() && address.is_v4())
    return samePrefix(network.to_v4().to_bytes(), address.to_v4().to_bytes(), prefix);
  if (network.is_v6() && address.is_v6())
    return samePrefix(network.to_v6().to_bytes(), address.to_v6().to_bytes(), prefix);
  // 10.0.0.0/8 also covers ::ffff:10.1.2.3.
  if (network.is_v4() && address.is_v6() && address.to_v6().is_v4_mapped())
    return contains(ip::make_address_v4(ip::v4_mapped, address.to_v6()));
  return false;
}

std::string AddressRange::text() const { return network.to_string() + "/" + std::to_string(prefix); }

boost::system::result<AddressRange, std::string> parseAddressRange(std::string_view text) {
  const std::string quoted = "'" + std::string(text) + "'";
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) return quoted + " is not a CIDR range (ADDRESS/PREFIX, e.g. 10.0.0.0/8)";
  boost::system::error_code ec;
  AddressRange range;
  range.network = ip::make_address(std::string(text.substr(0, slash)), ec);
  if (ec) return quoted + " is not a CIDR range: '" + std::string(text.substr(0, slash)) + "' is not an IP address";
  const std::string_view prefix = text.substr(slash + 1);
  const unsigned maxPrefix = range.network.is_v4() ? 32 : 128;
  auto [end, parseError] = std::from_chars(prefix.data(), prefix.data() + prefix.size(), range.prefix);
  if (prefix.empty() || parseError != std::errc() || end != prefix.data() + prefix.size() || range.prefix > maxPrefix)
    return quoted + " is not a CIDR range: the prefix must be 0 to " + std::to_string(maxPrefix);
  // Host bits set usually mean a typo in the prefix: say which was meant.
  AddressRange canonical = range;
  if (range.network.is_v4()) {
    canonical.network = ip::address_v4(masked(range.network.to_v4().to_bytes(), range.prefix));
  } else {
    canonical.network = ip::address_v6(masked(range.network.to_v6().to_bytes(), range.prefix));
  }
  if (canonical.network != range.network) return quoted + " has host bits set; did you mean " + canonical.text() + "?";
  return range;
}

std::optional<std::string_view> nonPublicKind(const ip::address& address) {
  if (address.is_v4()) return kindOfV4(address.to_v4());
  const ip::address_v6 v6 = address.to_v6();
  if (v6.is_loopback()) return "loopback";
  if (auto v4 = embeddedV4(v6)) return kindOfV4(*v4);
  const auto bytes = v6.to_bytes();
  for (const auto& special : kSpecialV6) {
    if (samePrefix(bytes, ip::make_address_v6(special.network).to_bytes(), special.prefix)) return special.kind;
  }
  return std::nullopt;
}

bool AddressPolicy::permits(const ip::address& address) const {
  for (const auto& range : allowed_) {
    if (range.contains(address)) return true;
  }
  return !nonPublicKind(address) && !isOwnAddress(address);
}

}  // namespace tinyfaas
