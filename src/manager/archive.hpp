#pragma once
// Unpacking uploaded function archives without letting them write outside
// their directory. The work is done by the archive module
// (archive/archive_module.hpp), loaded on the first call.

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include <boost/system/result.hpp>

namespace tinyfaas {

struct ExtractLimits {
  std::size_t maxTotalBytes = 512u << 20;  // unpacked size: stops zip bombs
  std::size_t maxEntries = 20000;
};

// Extracts a zip held in memory into `destination` (which must exist and be
// empty). Rejects, with a one-line reason, anything that is not a readable
// zip, entries with absolute paths or "..", symlinks that point outside the
// destination, and archives above the limits. Modes follow sandbox::codeMode() for
// every folder and file, the destination included, whatever the zip and the
// umask say. On error the destination may hold a partial tree; the caller
// removes it. A module that cannot be loaded is an error too, naming it.
boost::system::result<void, std::string> extractZip(std::string_view zip, const std::filesystem::path& destination,
                                                    ExtractLimits limits = {});

}  // namespace tinyfaas
