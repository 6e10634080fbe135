// Archive validation: any bytes handed to the archive module's extractZip() either unpack inside
// the destination or are refused, and nothing is ever written outside it.
// The destination sits in a fresh sandbox directory per input; afterwards the
// sandbox must hold nothing but the destination, and after a successful
// extraction no symlink inside may resolve to a place outside it, and no
// file or folder keeps a mode the zip asked for beyond sandbox::codeMode().

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "archive/archive_module.hpp"

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "archive_fuzzer: %s\n", what.c_str());
  std::abort();
}

const fs::path& sandboxRoot() {
  static const fs::path root = [] {
    std::string pattern = (fs::temp_directory_path() / "tinyfaas-archive-fuzz.XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) fail("cannot create a temp dir");
    return fs::path(pattern);
  }();
  return root;
}

bool inside(const fs::path& path, const fs::path& root) {
  const std::string p = path.lexically_normal().generic_string();
  const std::string r = root.lexically_normal().generic_string();
  return p == r || p.rfind(r + "/", 0) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fs::path sandbox = sandboxRoot() / "box";
  const fs::path destination = sandbox / "fn";
  std::error_code ec;
  fs::remove_all(sandbox, ec);
  fs::create_directories(destination);

  tinyfaas::ExtractLimits limits;
  limits.maxTotalBytes = 1 << 20;
  limits.maxEntries = 200;
  const auto extracted = tinyfaas::archivemodule::extractZip(
      std::string_view(reinterpret_cast<const char*>(data), size), destination, limits);

  for (const auto& entry : fs::directory_iterator(sandbox)) {
    if (entry.path() != destination) fail("wrote outside the destination: " + entry.path().string());
  }
  if (!fs::is_directory(fs::symlink_status(destination))) fail("the destination itself was replaced");
  // A refused archive may leave a partial tree, which the caller removes.
  if (!extracted) {
    fs::remove_all(sandbox, ec);
    return 0;
  }
  const fs::path real = fs::canonical(destination);
  // What an upload may never bring (sandbox::codeMode() in sandbox/code_permissions.hpp).
  constexpr auto kForbidden =
      fs::perms::group_write | fs::perms::others_all | fs::perms::set_uid | fs::perms::set_gid | fs::perms::sticky_bit;
  for (auto it = fs::recursive_directory_iterator(destination); it != fs::recursive_directory_iterator(); ++it) {
    if (!it->is_symlink()) {
      if ((it->symlink_status().permissions() & kForbidden) != fs::perms::none)
        fail("unmasked mode on " + it->path().string());
      continue;
    }
    // Resolved through every link on the way, as a reader of the file would.
    const fs::path target = fs::weakly_canonical(it->path(), ec);
    if (!ec && !inside(target, real)) fail("symlink " + it->path().string() + " leads outside to " + target.string());
  }
  fs::remove_all(sandbox, ec);
  return 0;
}
