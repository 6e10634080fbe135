#pragma once
// One file, folder or symlink of a runtime image's root file system
// (rootfs.hpp), on its own so that the archive module, which writes them as
// a tar (archive/archive_module.hpp), needs nothing else of the backend.

#include <cstdint>
#include <filesystem>
#include <string>

namespace tinyfaas::docker {

struct RootfsEntry {
  enum class Type { directory, file, symlink };
  Type type = Type::file;
  std::string path;              // absolute, normalised, inside the image
  std::filesystem::path source;  // host file to copy (files without `content`)
  std::string content;           // generated file content
  bool generated = false;
  std::string linkTarget;
  unsigned mode = 0644;  // permission bits only
  unsigned uid = 0;
  unsigned gid = 0;
  std::int64_t mtime = 0;  // kept: Python checks .pyc files against their source's mtime
};

}  // namespace tinyfaas::docker
