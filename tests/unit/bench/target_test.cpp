#include "target.hpp"

#include <gtest/gtest.h>

namespace tinyfaas::bench {
namespace {

Target parsed(std::string_view url) {
  auto t = parseTarget(url);
  EXPECT_TRUE(t.has_value()) << url << ": " << (t ? "" : t.error());
  return t ? *t : Target{};
}

TEST(ParseTarget, HttpWithPortAndPath) {
  const auto t = parsed("http://127.0.0.1:8000/sieve");
  EXPECT_EQ(t.protocol, Protocol::http);
  EXPECT_EQ(t.host, "127.0.0.1");
  EXPECT_EQ(t.port, 8000);
  EXPECT_EQ(t.path, "/sieve");
}

TEST(ParseTarget, DefaultPortsPerScheme) {
  EXPECT_EQ(parsed("http://localhost/x").port, 80);
  EXPECT_EQ(parsed("coap://localhost/x").port, 5683);
  EXPECT_EQ(parsed("grpc://localhost/x").port, 9000);
}

TEST(ParseTarget, SchemeIsCaseInsensitive) { EXPECT_EQ(parsed("COAP://127.0.0.1/a").protocol, Protocol::coap); }

TEST(ParseTarget, PathDefaultsToRootAndKeepsQuery) {
  EXPECT_EQ(parsed("http://127.0.0.1:1").path, "/");
  EXPECT_EQ(parsed("http://127.0.0.1:1?a=b").path, "/?a=b");
  EXPECT_EQ(parsed("coap://127.0.0.1/a/b?x=1#frag").path, "/a/b?x=1");
}

TEST(ParseTarget, BracketedIpv6) {
  const auto t = parsed("coap://[::1]:5684/fn");
  EXPECT_EQ(t.host, "::1");
  EXPECT_EQ(t.port, 5684);
  EXPECT_EQ(t.path, "/fn");
}

TEST(ParseTarget, GrpcPathIsTheFunctionName) {
  const auto t = parsed("grpc://127.0.0.1:9000/sieve");
  EXPECT_EQ(t.protocol, Protocol::grpc);
  EXPECT_EQ(t.path, "sieve");
  EXPECT_FALSE(parseTarget("grpc://127.0.0.1:9000/"));
  EXPECT_FALSE(parseTarget("grpc://127.0.0.1:9000/a/b"));
}

TEST(ParseTarget, UnixSocketSplitsAtTheLastColonSlash) {
  const auto t = parsed("http+unix:///tmp/st/run/sieve.0/handler.sock:/fn");
  EXPECT_EQ(t.protocol, Protocol::httpUnix);
  EXPECT_EQ(t.socketPath, "/tmp/st/run/sieve.0/handler.sock");
  EXPECT_EQ(t.path, "/fn");
  EXPECT_EQ(parsed("http+unix:///a:b/h.sock:/fn").socketPath, "/a:b/h.sock");
  EXPECT_FALSE(parseTarget("http+unix://relative.sock:/fn"));
  EXPECT_FALSE(parseTarget("http+unix:///no/request/path.sock"));
}

TEST(ParseTarget, RejectsBadInput) {
  for (const char* url : {"127.0.0.1:8000/x", "ftp://127.0.0.1/x", "http://:80/x", "http://127.0.0.1:0/x",
                          "http://127.0.0.1:65536/x", "http://127.0.0.1:abc/x", "http://127.0.0.1:/x",
                          "http://user@127.0.0.1/x", "http://[::1/x", "http://[::1]x/y"}) {
    EXPECT_FALSE(parseTarget(url)) << url;
  }
}

TEST(Loopback, AddressesAndNames) {
  for (const char* host :
       {"127.0.0.1", "127.1.2.3", "127.255.255.254", "::1", "localhost", "LOCALHOST", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(isLoopbackHost(host)) << host;
  }
  for (const char* host : {"10.0.0.1", "192.168.1.1", "128.0.0.1", "0.0.0.0", "::", "::2", "example.com",
                           "localhost.example.com", "126.255.255.255", "::ffff:10.0.0.1", ""}) {
    EXPECT_FALSE(isLoopbackHost(host)) << host;
  }
}

TEST(Loopback, RemoteTargetsNeedAllowRemote) {
  const auto remote = parsed("http://192.168.1.10:8000/f");
  EXPECT_FALSE(checkTargetAllowed(remote, false));
  EXPECT_TRUE(checkTargetAllowed(remote, true));
  EXPECT_TRUE(checkTargetAllowed(parsed("coap://127.0.0.1/f"), false));
  EXPECT_TRUE(checkTargetAllowed(parsed("http+unix:///tmp/h.sock:/fn"), false));
}

}  // namespace
}  // namespace tinyfaas::bench
