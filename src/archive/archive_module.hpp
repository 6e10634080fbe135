#pragma once
// The interface of the archive module, tinyfaas-archive.so: zip and tar
// with libarchive. libarchive brings libxml2, ICU and five compressors,
// about 1.3 MB of resident memory once mapped, and a daemon needs it only
// when a function is deployed (or a runtime image built), the CLI only when
// `deploy` packs a folder. So the binary holds none of it: the wrappers
// extractZip (manager/archive.hpp), cli::packFunctionDirectory
// (cli/function_packer.hpp) and RootfsBuilder::writeTar
// (backend/docker/rootfs.hpp) load the module on first use
// (util/module_loader.hpp). This header includes no libarchive header.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include <boost/system/result.hpp>

#include "backend/docker/rootfs_entry.hpp"
#include "cli/function_packer.hpp"
#include "manager/archive.hpp"
#include "util/module_loader.hpp"

namespace tinyfaas {

// Each function blocks the calling thread and behaves as the wrapper that
// calls it documents. Thread-safe.
struct ArchiveModule {
  ModuleHeader header;
  boost::system::result<void, std::string> (*extractZip)(std::string_view zip, const std::filesystem::path& destination,
                                                         ExtractLimits limits);
  cli::Result<cli::PackedFunction> (*packFunctionDirectory)(const std::filesystem::path& dir);
  boost::system::result<std::uint64_t, std::string> (*writeTar)(
      const std::map<std::string, docker::RootfsEntry>& entries, const std::filesystem::path& file);
};

// The implementations, inside the module (and the fuzzer, which links them
// in); everything else reaches them through ArchiveModule.
namespace archivemodule {
boost::system::result<void, std::string> extractZip(std::string_view zip, const std::filesystem::path& destination,
                                                    ExtractLimits limits);
cli::Result<cli::PackedFunction> packFunctionDirectory(const std::filesystem::path& dir);
boost::system::result<std::uint64_t, std::string> writeTar(const std::map<std::string, docker::RootfsEntry>& entries,
                                                           const std::filesystem::path& file);
}  // namespace archivemodule

}  // namespace tinyfaas
