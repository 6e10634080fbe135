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
  const auto perms = status.permissions() & fs::perms::mask;
  // A pass-through bit for the group is kept when it is not new: the
  // sandbox's group may need to traverse to its code (sandbox/
  // code_permissions), which lists nothing and reads nothing by itself.
  const auto keep = fs::perms::owner_all | (created ? fs::perms::none : fs::perms::group_exec);
  const auto wanted = (perms & keep) | fs::perms::owner_all;
  if (perms == wanted) return {};
  fs::permissions(dir, wanted, fs::perm_options::replace, ec);
  if (ec) return "cannot make " + dir.string() + " private (chmod): " + ec.message();
  // Left open by an earlier version or by hand: say so, the operator may
  // have relied on it.
  if (!created)
    spdlog::warn("state: {} had mode {:04o}; set it to {:04o} (only the daemon's user may read it)", dir.string(),
                 static_cast<unsigned>(perms), static_cast<unsigned>(wanted));
  return {};
}

}  // namespace tinyfaas
