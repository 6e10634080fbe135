#include "manager/archive.hpp"

#include "archive/archive_module.hpp"

namespace tinyfaas {

// Deploys call this on the management thread, which unzips and installs
// anyway: the module's first load (mapping libarchive from disk) is one more
// blocking step there, not on the data plane.
boost::system::result<void, std::string> extractZip(std::string_view zip, const std::filesystem::path& destination,
                                                    ExtractLimits limits) {
  auto api = loadModuleApi<ArchiveModule>("archive");
  if (!api) return "the archive module cannot be loaded: " + api.error();
  return (*api)->extractZip(zip, destination, limits);
}

}  // namespace tinyfaas
