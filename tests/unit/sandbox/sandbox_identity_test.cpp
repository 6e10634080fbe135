#include "sandbox/sandbox_identity.hpp"

#include <gtest/gtest.h>

namespace tinyfaas::sandbox {
namespace {

TEST(SandboxIdentity, RootSwitchesToTheUserAndItsGroup) {
  // nobody exists everywhere; a real sandbox user behaves the same.
  const auto id = resolveIdentity("nobody", HostCredentials{0, 0, true});
  EXPECT_TRUE(id.switchUser);
  EXPECT_NE(id.uid, 0u);
  EXPECT_NE(id.gid, 0u);
  EXPECT_TRUE(id.warning.empty()) << id.warning;
}

TEST(SandboxIdentity, AMissingUserFallsBackToNobodyAndSaysHowToCreateIt) {
  const auto id = resolveIdentity("tinyfaas-no-such-user", HostCredentials{0, 0, true});
  EXPECT_TRUE(id.switchUser);
  EXPECT_EQ(id.uid, 65534u);
  EXPECT_NE(id.warning.find("adduser --system --group"), std::string::npos) << id.warning;
}

TEST(SandboxIdentity, RootIsNeverTheSandboxUser) {
  const auto id = resolveIdentity("root", HostCredentials{0, 0, true});
  EXPECT_NE(id.uid, 0u);
  EXPECT_NE(id.gid, 0u);
  EXPECT_FALSE(id.warning.empty());
}

TEST(SandboxIdentity, ACapableServiceUserGivesCodeToItsOwnGroup) {
  const auto id = resolveIdentity("nobody", HostCredentials{999, 998, true});
  EXPECT_TRUE(id.switchUser);
  EXPECT_EQ(id.gid, 998u);
}

TEST(SandboxIdentity, WithoutCapabilitiesFunctionsRunAsTheDaemonAndItWarns) {
  const auto id = resolveIdentity("tinyfaas-sandbox", HostCredentials{1000, 1000, false});
  EXPECT_FALSE(id.switchUser);
  EXPECT_EQ(id.uid, 1000u);
  EXPECT_FALSE(id.warning.empty());
}

}  // namespace
}  // namespace tinyfaas::sandbox
