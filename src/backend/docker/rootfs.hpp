#pragma once
// The root file system of a runtime image, assembled from the host's own
// files: a program is copied to the same path it has on the host, with every
// symlink on the way (merged /usr, /etc/alternatives) recreated, its ELF
// interpreter and the shared libraries it loads (found the way the dynamic
// loader finds them), so that it runs in a container built FROM scratch.
//
// Nothing here talks to the engine: the result is a list of entries, a
// content digest of them (the image tag) and a tar file of them.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

#include "backend/docker/elf_reader.hpp"
#include "backend/docker/rootfs_entry.hpp"

namespace tinyfaas::docker {

// Where the dynamic loader looks for a library, as on the host.
class LibraryResolver {
 public:
  // Directories from /etc/ld.so.conf (following its `include` lines), then
  // the loader's built-in defaults.
  static LibraryResolver fromHost(const std::filesystem::path& ldSoConf = "/etc/ld.so.conf");
  explicit LibraryResolver(std::vector<std::filesystem::path> systemDirs);

  // The file `soname` resolves to for an object at `loaderPath` (whose
  // RPATH/RUNPATH may use $ORIGIN); nullopt when nothing matching the
  // loader's ELF class and machine is found.
  std::optional<std::filesystem::path> find(const std::string& soname, const ElfInfo& loader,
                                            const std::filesystem::path& loaderPath) const;
  const std::vector<std::filesystem::path>& systemDirs() const { return systemDirs_; }

 private:
  std::vector<std::filesystem::path> systemDirs_;
};

class RootfsBuilder {
 public:
  explicit RootfsBuilder(LibraryResolver resolver);

  // A host file (or directory) at the same path; ELF files bring their
  // interpreter and libraries.
  boost::system::result<void, std::string> addHostPath(const std::filesystem::path& path);
  // A host file under another name (the handler scripts), with its libraries
  // if it is an ELF program.
  boost::system::result<void, std::string> addHostFileAs(const std::filesystem::path& source,
                                                         const std::string& imagePath, unsigned mode);
  // A host directory tree at the same path. `keep` sees each path relative
  // to `dir` and may drop it (a dropped directory is not descended into).
  // Shared objects in the tree bring their libraries; one whose library is
  // missing on the host too is left out and reported in warnings().
  boost::system::result<void, std::string> addHostTree(
      const std::filesystem::path& dir, const std::function<bool(const std::filesystem::path& relative)>& keep);

  void addDirectory(const std::string& path, unsigned mode = 0755, unsigned uid = 0, unsigned gid = 0);
  void addFile(const std::string& path, std::string content, unsigned mode = 0644);
  void addSymlink(const std::string& path, const std::string& target);

  const std::map<std::string, RootfsEntry>& entries() const { return entries_; }
  const std::vector<std::string>& warnings() const { return warnings_; }
  // Total bytes of file content.
  std::uint64_t contentBytes() const;

  // SHA-256 (hex) of `salt` and every entry: path, type, mode, owner, link
  // target and content. Reads every copied file.
  boost::system::result<std::string, std::string> digest(std::string_view salt) const;
  // Writes the entries as a tar (pax) file; returns its size. The archive
  // module (archive/archive_module.hpp) writes it, loaded on the first call.
  boost::system::result<std::uint64_t, std::string> writeTar(const std::filesystem::path& file) const;

 private:
  boost::system::result<std::filesystem::path, std::string> resolveHostPath(const std::filesystem::path& path,
                                                                            int depth);
  boost::system::result<void, std::string> addHostRegular(const std::filesystem::path& canonical,
                                                          const std::string& imagePath, unsigned modeMask,
                                                          bool required);
  boost::system::result<void, std::string> addElfDependencies(const std::filesystem::path& hostFile, bool required);
  void ensureParents(const std::string& path);

  LibraryResolver resolver_;
  std::map<std::string, RootfsEntry> entries_;
  std::set<std::string> elfDone_;
  std::vector<std::string> warnings_;
};

// SHA-256 (hex) of bytes; exposed for tests.
std::string sha256Hex(std::string_view bytes);

}  // namespace tinyfaas::docker
