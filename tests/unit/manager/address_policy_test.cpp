#include "manager/address_policy.hpp"

#include <gtest/gtest.h>

namespace tinyfaas {
namespace {

namespace ip = boost::asio::ip;

TEST(AddressPolicy, ClassifiesSpecialPurposeAddresses) {
  const std::pair<const char*, const char*> table[] = {
      {"127.0.0.1", "loopback"},
      {"127.255.1.2", "loopback"},
      {"::1", "loopback"},
      {"10.1.2.3", "private"},
      {"172.16.0.1", "private"},
      {"172.31.255.255", "private"},
      {"192.168.1.1", "private"},
      {"100.64.0.1", "shared (CGNAT)"},
      {"100.127.255.255", "shared (CGNAT)"},
      {"169.254.169.254", "link-local"},
      {"0.0.0.0", "\"this network\""},
      {"0.1.2.3", "\"this network\""},
      {"224.0.0.1", "multicast"},
      {"239.255.255.250", "multicast"},
      {"255.255.255.255", "reserved"},
      {"192.0.2.7", "documentation"},
      {"198.18.0.1", "benchmarking"},
      {"fd12:3456::1", "unique local (ULA)"},
      {"fc00::1", "unique local (ULA)"},
      {"fe80::1", "link-local"},
      {"ff02::1", "multicast"},
      {"::", "unspecified or IPv4-compatible"},
      {"::ffff:127.0.0.1", "loopback"},
      {"::ffff:10.0.0.1", "private"},
      {"64:ff9b::a9fe:a9fe", "link-local"},  // NAT64 of 169.254.169.254
      {"2002:c0a8:0101::1", "private"},      // 6to4 of 192.168.1.1
      {"2001:db8::1", "documentation"},
      {"2001::1", "IETF protocol"},  // Teredo
  };
  for (const auto& [address, kind] : table) {
    auto found = nonPublicKind(ip::make_address(address));
    ASSERT_TRUE(found) << address;
    EXPECT_EQ(*found, kind) << address;
  }
  for (const char* address : {"1.1.1.1", "8.8.8.8", "100.63.255.255", "100.128.0.0", "172.15.255.255", "172.32.0.0",
                              "192.169.0.1", "2606:4700::1111", "2a00:1450::1", "::ffff:8.8.8.8", "64:ff9b::808:808",
                              "2002:0808:0808::1", "2001:4860::8888"}) {
    EXPECT_FALSE(nonPublicKind(ip::make_address(address))) << address;
  }
}

TEST(AddressPolicy, ParsesCidrRanges) {
  auto v4 = parseAddressRange("10.0.0.0/8");
  ASSERT_TRUE(v4) << v4.error();
  EXPECT_TRUE(v4->contains(ip::make_address("10.200.1.1")));
  EXPECT_TRUE(v4->contains(ip::make_address("::ffff:10.200.1.1")));
  EXPECT_FALSE(v4->contains(ip::make_address("11.0.0.1")));
  EXPECT_FALSE(v4->contains(ip::make_address("fd00::1")));
  auto v6 = parseAddressRange("fd00::/8");
  ASSERT_TRUE(v6) << v6.error();
  EXPECT_TRUE(v6->contains(ip::make_address("fd12::1")));
  EXPECT_FALSE(v6->contains(ip::make_address("fe80::1")));
  auto host = parseAddressRange("192.0.2.5/32");
  ASSERT_TRUE(host);
  EXPECT_TRUE(host->contains(ip::make_address("192.0.2.5")));
  EXPECT_FALSE(host->contains(ip::make_address("192.0.2.6")));
  auto everything = parseAddressRange("0.0.0.0/0");
  ASSERT_TRUE(everything);
  EXPECT_TRUE(everything->contains(ip::make_address("127.0.0.1")));
  EXPECT_EQ(parseAddressRange("172.16.0.0/12")->text(), "172.16.0.0/12");
}

TEST(AddressPolicy, RefusesMalformedRangesWithAReason) {
  const std::pair<const char*, const char*> table[] = {
      {"10.0.0.0", "not a CIDR range (ADDRESS/PREFIX"},
      {"10.0.0.0/33", "the prefix must be 0 to 32"},
      {"fd00::/129", "the prefix must be 0 to 128"},
      {"10.0.0.0/", "the prefix must be"},
      {"10.0.0.0/8x", "the prefix must be"},
      {"example.com/8", "is not an IP address"},
      {"10.0.0.1/8", "has host bits set; did you mean 10.0.0.0/8?"},
  };
  for (const auto& [text, reason] : table) {
    auto parsed = parseAddressRange(text);
    ASSERT_FALSE(parsed) << text;
    EXPECT_NE(parsed.error().find(reason), std::string::npos) << parsed.error();
  }
}

TEST(AddressPolicy, PermitsPublicAddressesAndAllowedRangesOnly) {
  const AddressPolicy strict;
  EXPECT_TRUE(strict.permits(ip::make_address("8.8.8.8")));
  EXPECT_FALSE(strict.permits(ip::make_address("127.0.0.1")));
  EXPECT_FALSE(strict.permits(ip::make_address("192.168.0.1")));
  const AddressPolicy lan({*parseAddressRange("192.168.0.0/16"), *parseAddressRange("127.0.0.1/32")});
  EXPECT_TRUE(lan.permits(ip::make_address("192.168.7.7")));
  EXPECT_TRUE(lan.permits(ip::make_address("127.0.0.1")));
  EXPECT_FALSE(lan.permits(ip::make_address("127.0.0.2")));
  EXPECT_FALSE(lan.permits(ip::make_address("10.0.0.1")));
}

}  // namespace
}  // namespace tinyfaas
