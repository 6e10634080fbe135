#pragma once
// Who uploaded code runs as: a host uid S that is not 0 and owns nothing
// (the system user `tinyfaas-sandbox`), with group G, the group code
// directories are readable by.

#include <sys/types.h>

#include <string>

namespace tinyfaas::sandbox {

struct SandboxIdentity {
  uid_t uid = 0;
  gid_t gid = 0;
  // False when the daemon cannot change uids: functions then run as the
  // daemon's own uid (inside a user namespace).
  bool switchUser = false;
  std::string user;     // the name S was found under, for logs
  std::string warning;  // said once at start when not the configured user
};

// What the host allows the daemon to do with uids.
struct HostCredentials {
  uid_t euid = 0;
  gid_t egid = 0;
  bool canSwitchUser = false;  // euid 0, or CAP_SETUID and CAP_SETGID
};
HostCredentials currentCredentials();

// Resolves `userName` (the setting `sandbox-user`): G is the user's primary
// group when the daemon is root, else the daemon's own primary group (the
// group it can hand code directories to). A missing user falls back to
// nobody/nogroup, a daemon that cannot switch to its own uid; both warn.
SandboxIdentity resolveIdentity(const std::string& userName, const HostCredentials& host);

}  // namespace tinyfaas::sandbox
