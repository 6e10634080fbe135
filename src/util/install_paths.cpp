#include "util/install_paths.hpp"

namespace tinyfaas {

namespace fs = std::filesystem;

fs::path executableDir() {
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path{} : self.parent_path();
}

fs::path firstExisting(std::initializer_list<fs::path> candidates) {
  for (const auto& candidate : candidates) {
    std::error_code ec;
    if (!candidate.empty() && fs::exists(candidate, ec)) return candidate;
  }
  return {};
}

}  // namespace tinyfaas
