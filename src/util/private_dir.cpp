#include "util/private_dir.hpp"

#include <spdlog/spdlog.h>

namespace tinyfaas {

namespace fs = std::filesystem;

boost::system::result<void, std::string> makePrivateDirectory(const fs::path& dir) {
  std::error_code ec;
  const bool created = fs::create_directories(dir, ec);
  if (ec) return "cannot create " + dir.string() + ": " + ec.message();
  const auto status = fs::status(dir, ec);
  if (ec) return "cannot read the mode of " + dir.string() + ": " + ec.message();
  if (status.type() != fs::file_type::directory) return dir.string() + " is not a directory";
  const auto perms = status.permissions() & fs::perms::mask;
  if (perms == fs::perms::owner_all) return {};
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec) return "cannot make " + dir.string() + " private (chmod 700): " + ec.message();
  // Left open by an earlier version or by hand: say so, the operator may
  // have relied on it.
  if (!created)
    spdlog::warn("state: {} had mode {:04o}; set it to 0700 (only the daemon's user may read it)", dir.string(),
                 static_cast<unsigned>(perms));
  return {};
}

}  // namespace tinyfaas
