#pragma once
// The parts of a go function's build at deploy that are Go's own: what an
// upload's go.mod and imports ask of the install sandbox, the line of the
// build's output a failed deploy answers with, and the build caches. The
// build itself runs in the install sandbox (manager/dependency_installer)
// with runtimes/go/build.sh.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

#include "core/failure.hpp"

namespace tinyfaas {

struct GoBuildPlan {
  bool vendored = false;  // vendor/modules.txt: builds with -mod=vendor, offline
  bool network = false;   // modules to fetch from GOPROXY
};

// Reads go.mod and the import declarations of the upload's .go files:
// network when it is not vendored and requires a module or imports a
// package outside the standard library and its own module. Refuses, with
// a one-line reason naming the line, a `replace` with a folder outside the
// function folder.
boost::system::result<GoBuildPlan, std::string> planGoBuild(const std::filesystem::path& codeDir);

// The import paths of one Go source file's import declarations.
std::vector<std::string> goImports(std::string_view source);

// What a failed build answers with: the compiler's first "file:line:col:
// message" (fn.go:5:2: undefined: x), relative to the function's folder;
// an error in the handler main means fn has the wrong signature, and says
// so; else go's own "go: ..." line; never a path of the sandbox.
std::string goBuildErrorLine(const std::vector<std::string>& lines);

// The go builds' caches, STATE/go-cache: a folder per owner of functions
// with Go's build cache (build/) and module cache (mod/) of that owner's
// builds. A build sees only its owner's folder, read-only; what it added
// comes back as a zip and is merged here. So no tenant's build changes
// what another tenant's compiles against (Go trusts its cache), and the
// sandbox user owns no file on the host. Bounded: when all folders
// together exceed maxBytes, whole folders go, least recently used first
// (a module cache missing some files would break builds rather than miss).
// Lives on the management thread.
class GoBuildCache {
 public:
  // `shareWith`: the sandbox's group, given read access (files 0640, dirs
  // 0750, the state dir's folders passable) when the sandbox is another uid.
  GoBuildCache(std::filesystem::path stateDir, std::uintmax_t maxBytes, std::optional<gid_t> shareWith);

  // `owner`'s folder, created if missing and marked as used now.
  boost::system::result<std::filesystem::path, Failure> use(const std::string& owner);
  // Adds a build's new entries (a zip of build/... and mod/...) to `owner`'s
  // folder, then trims all folders to the bound.
  boost::system::result<void, std::string> merge(const std::string& owner, std::string_view zip);

  std::filesystem::path root() const { return root_; }

 private:
  std::filesystem::path folderOf(const std::string& owner) const;
  void trim();

  std::filesystem::path stateDir_;
  std::filesystem::path root_;
  std::uintmax_t maxBytes_;
  std::optional<gid_t> shareWith_;
  std::uint64_t merges_ = 0;  // names the folders merges unpack into
};

}  // namespace tinyfaas
