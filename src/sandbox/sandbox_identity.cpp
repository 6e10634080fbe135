#include "sandbox/sandbox_identity.hpp"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <optional>
#include <vector>

namespace tinyfaas::sandbox {

namespace {

struct Account {
  uid_t uid;
  gid_t gid;
};

std::optional<Account> lookUp(const std::string& name) {
  std::vector<char> buffer(16384);
  passwd entry{};
  passwd* found = nullptr;
  if (getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr)
    return std::nullopt;
  return Account{found->pw_uid, found->pw_gid};
}

std::optional<gid_t> groupNamed(const char* name) {
  std::vector<char> buffer(16384);
  group entry{};
  group* found = nullptr;
  if (getgrnam_r(name, &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) return std::nullopt;
  return found->gr_gid;
}

bool hasEffectiveCapability(int capability) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  return (data[capability / 32].effective & (1u << (capability % 32))) != 0;
}

}  // namespace

HostCredentials currentCredentials() {
  HostCredentials host;
  host.euid = geteuid();
  host.egid = getegid();
  host.canSwitchUser = host.euid == 0 || (hasEffectiveCapability(CAP_SETUID) && hasEffectiveCapability(CAP_SETGID));
  return host;
}

SandboxIdentity resolveIdentity(const std::string& userName, const HostCredentials& host) {
  SandboxIdentity identity;
  if (!host.canSwitchUser) {
    identity.uid = host.euid;
    identity.gid = host.egid;
    identity.user = "the daemon's own uid " + std::to_string(host.euid);
    identity.warning =
        "the daemon cannot switch uids (it is not root and lacks CAP_SETUID/CAP_SETGID): functions "
        "and installs run as its own uid " +
        std::to_string(host.euid) +
        " inside a user namespace; run it as root or with those capabilities to run them as " + userName;
    return identity;
  }
  identity.switchUser = true;
  auto account = lookUp(userName);
  identity.user = userName;
  // Never root: a sandbox-user that is root is treated as missing.
  const bool isRoot = account && account->uid == 0;
  if (isRoot) account.reset();
  if (!account) {
    account = lookUp("nobody");
    const auto nogroup = groupNamed("nogroup");
    identity.user = "nobody";
    identity.warning = "sandbox user " + userName +
                       " does not exist: functions run as nobody, a uid other "
                       "programs may use too; create it with `adduser --system --group --no-create-home --shell "
                       "/usr/sbin/nologin " +
                       userName + "`";
    if (!account) account = Account{65534, 65534};
    if (nogroup) account->gid = *nogroup;
  }
  if (isRoot) identity.warning = "sandbox user " + userName + " is root; functions run as nobody instead";
  identity.uid = account->uid;
  // A daemon that is not root can only give files to a group it is in.
  identity.gid = host.euid == 0 ? account->gid : host.egid;
  return identity;
}

}  // namespace tinyfaas::sandbox
