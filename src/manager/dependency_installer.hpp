#pragma once
// Installs a function's dependencies (package.json, requirements.txt), or
// builds a go function (manager/go_build.hpp), in the same kind of sandbox
// its handlers run in, for both backends: as the
// sandbox uid, under seccomp, in bwrap with new namespaces, on a writable
// copy of the function folder in a tmpfs. The result comes back as a zip on
// a descriptor the daemon owns and is unpacked with the upload's own checks,
// so no host file is ever written by the sandbox. Network only when the
// requirements need it and the node is not offline: user-mode networking
// (slirp4netns) without the host's loopback, with the node's own, private
// and link-local addresses unreachable. Everything the install started dies
// with its pid namespace when it ends or times out.

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include "core/runtime.hpp"
#include "manager/go_build.hpp"
#include "sandbox/cgroup_limits.hpp"
#include "sandbox/sandbox_identity.hpp"
#include "util/child_process.hpp"

namespace tinyfaas {

struct InstallerOptions {
  std::string npm = "npm";
  std::string python = "python3";
  std::string go = "go";                                    // the toolchain go functions are built with
  std::string goProxy = "https://proxy.golang.org,direct";  // GOPROXY of go builds that fetch modules
  std::uintmax_t goCacheBytes = std::uintmax_t{1} << 30;    // all go build caches together
  std::filesystem::path runtimesDir;                        // holds go/tinyfaas_main.go and go/build.sh
  std::chrono::seconds timeout{600};
  sandbox::SandboxIdentity identity;        // default: the daemon's own uid
  bool offline = false;                     // never any network
  bool allowScripts = false;                // npm lifecycle scripts, pip source builds
  std::size_t maxOutputBytes = 512u << 20;  // tmpfs size, and the largest result
  std::filesystem::path scratchDir;         // holds the (unlinked) result file; the state dir
  // Each install gets a cgroup here (1 GiB, 256 pids, 1 CPU), killed when
  // it ends; none where limits are not enforced.
  sandbox::CgroupTree cgroups;
};

// What an upload's requirements ask for.
struct InstallPlan {
  bool needed = false;   // anything to install at all
  bool network = false;  // a requirement that is not a file inside the upload
};

// Reads package.json or requirements.txt of `codeDir`; refuses, with a
// one-line reason, pip options that point outside the function folder and,
// without `allowScripts`, source folders pip would build. A go function
// always needs its build (planGoBuild).
boost::system::result<InstallPlan, std::string> planInstall(Runtime runtime, const std::filesystem::path& codeDir,
                                                            bool allowScripts);

// The line of npm's or pip's output that says what went wrong (npm's 404,
// pip's "No matching distribution"), else the last line.
std::string installErrorLine(const std::vector<std::string>& lines);

// Lives on the management thread.
class DependencyInstaller {
 public:
  DependencyInstaller(boost::asio::any_io_executor executor, InstallerOptions options);

  // Installs into `codeDir` (replaced by the installed copy on success); a
  // go function's build uses and adds to the build cache of `owner`.
  boost::asio::awaitable<boost::system::result<void, std::string>> install(Runtime runtime,
                                                                           std::filesystem::path codeDir,
                                                                           std::string owner,
                                                                           ChildProcess::LineHandler onOutputLine);
  // For shutdown: kills the installs and go builds in progress (their
  // install() fails saying so) and refuses new ones.
  void cancel();

 private:
  // Network for a waiting install sandbox: slirp4netns (kept in
  // `slirpProcess`), routes closed, then the sandbox released.
  boost::asio::awaitable<boost::system::result<void, std::string>> connect(int infoFd, int readyFd, int goFd,
                                                                           std::unique_ptr<ChildProcess>& slirpProcess);

  boost::asio::any_io_executor executor_;
  InstallerOptions options_;
  std::string bwrap_;
  std::string slirp_;
  std::string ip_;
  std::string seccomp_;
  std::string setupError_;     // why installs cannot run here
  std::string goSetupError_;   // why go functions cannot be built here
  std::string goMain_;         // runtimes/go/tinyfaas_main.go
  std::string goBuildScript_;  // runtimes/go/build.sh
  GoBuildCache goCache_;
  std::uint64_t installs_ = 0;  // names the installs' cgroups
  std::set<pid_t> running_;     // the sandboxes of installs in progress (their process groups)
  bool cancelled_ = false;
};

}  // namespace tinyfaas
