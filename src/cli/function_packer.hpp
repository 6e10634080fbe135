#pragma once
// Turns a function folder into the zip the management API's /upload expects.
// The work is done by the archive module (archive/archive_module.hpp),
// loaded on the first call.

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/result.hpp"

namespace tinyfaas::cli {

// Zips the contents of `dir` in memory. Entry names are relative to `dir`
// ("fn.sh", "lib/", "lib/util.py"), as upstream's `cd DIR && zip -r - ./*`
// made them, so the daemon unpacks the function at the top of its folder.
// Unix permission bits are kept (fn.sh must stay executable). Everything
// is packed, vendored `node_modules` and hidden files included, except what
// the folder's `.tinyfaasignore` (gitignore syntax, see archive/ignore_rules.hpp)
// excludes; that file itself stays home too.
// Symlinks are stored as the files they point to, because the daemon's
// unpacker has no reason to trust links inside an upload. Entries are sorted
// so that the same folder always gives the same archive.
// The error is one line naming the path that could not be read (or the
// module that could not be loaded).
inline constexpr const char* kIgnoreFileName = ".tinyfaasignore";

struct PackedFunction {
  std::string zip;
  std::size_t files = 0;  // regular files stored; 0 means nothing to run
  // What .tinyfaasignore left out, in packing order: a folder once, as
  // "name/", not its contents.
  std::vector<std::string> leftOut;
};
Result<PackedFunction> packFunctionDirectory(const std::filesystem::path& dir);

}  // namespace tinyfaas::cli
