#pragma once
// The bubblewrap command line every sandbox of the process backend (handler
// instances and dependency installs) is built with: all namespaces new,
// a new session, no capabilities, a seccomp filter, the system's files
// read-only, daemon-private paths bound through descriptors the daemon
// opened (so the unprivileged sandbox user needs no search permission on
// the state dir or a checkout under /root), and the environment set inside
// with the bwrap process itself started in a fixed one.

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <boost/system/result.hpp>

#include "util/unique_fd.hpp"

namespace tinyfaas::sandbox {

// Descriptors handed to the sandboxed child, numbered as it sees them:
// the first added is fd 3, the next 4, ... (SpawnOptions::inheritFds).
class InheritedFds {
 public:
  // Takes ownership; returns the number the child will know it by.
  int add(UniqueFd fd);
  std::vector<int> parentFds() const;
  // Closes them (once the child has its copies).
  void clear() { fds_.clear(); }

 private:
  std::vector<UniqueFd> fds_;
};

struct SandboxLayout {
  struct FdBind {
    int fd;  // as the child sees it
    std::filesystem::path target;
    bool writable = false;
  };
  // Bound by name at the same place, read-only (world-readable system
  // paths); missing ones are skipped.
  std::vector<std::filesystem::path> systemPaths;
  std::vector<FdBind> fdBinds;
  std::vector<std::pair<std::filesystem::path, std::size_t>> tmpfs;  // path, size in bytes (0: bwrap's default)
  std::vector<std::pair<int, std::filesystem::path>> files;          // --ro-bind-data FD DEST
  std::vector<std::pair<std::string, std::string>> env;              // the environment inside, and nothing else
  std::filesystem::path chdir;
  int seccompFd = -1;
  int infoFd = -1;  // bwrap writes {"child-pid": N} to it
  // A dependency install with network: its command starts with
  // CAP_NET_ADMIN over the sandbox's network (to close routes, then drop
  // it), and that network must be joinable by slirp4netns running as the
  // sandbox user. bwrap nests the sandbox's user namespace in the one
  // owning its network for --disable-userns and for --dev (devpts is
  // mounted as uid 0), which would defeat both; so then neither is used:
  // the seccomp filter alone stops new namespaces, and /dev is a tmpfs
  // with the host's harmless devices bound in.
  bool installNetwork = false;
};

// The host's read-only system files a program needs to start: /usr (and
// /bin, /lib, ... or their merged-/usr symlinks) and a few files of /etc.
std::vector<std::filesystem::path> systemPaths();

// bwrap's argv for `layout` running `command`.
std::vector<std::string> bwrapArguments(const std::string& bwrap, const SandboxLayout& layout,
                                        const std::vector<std::string>& command);

// The environment bwrap itself runs with: fixed, nothing of the daemon's
// or the function's.
std::vector<std::string> bwrapEnvironment();

// An anonymous in-memory file holding `content`, positioned at its start
// (for --seccomp and --ro-bind-data).
boost::system::result<UniqueFd, std::string> memoryFile(const char* name, std::string_view content);

// Opens `path` as an O_PATH descriptor for --ro-bind-fd / --bind-fd.
boost::system::result<UniqueFd, std::string> openPath(const std::filesystem::path& path);

}  // namespace tinyfaas::sandbox
