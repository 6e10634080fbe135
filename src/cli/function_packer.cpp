#include "cli/function_packer.hpp"

#include "archive/archive_module.hpp"

namespace tinyfaas::cli {

Result<PackedFunction> packFunctionDirectory(const std::filesystem::path& dir) {
  auto api = loadModuleApi<ArchiveModule>("archive");
  if (!api) return failure("the archive module cannot be loaded: " + api.error());
  return (*api)->packFunctionDirectory(dir);
}

}  // namespace tinyfaas::cli
