#include "backend/standby/standby.hpp"

#include <algorithm>

#include "sandbox/code_permissions.hpp"

namespace tinyfaas {

namespace {

// Variables an interpreter reads once as it starts.
bool readAtStart(Runtime runtime, std::string_view name) {
  if (runtime != Runtime::nodejs && runtime != Runtime::python3) return false;  // set before exec
  for (std::string_view prefix : {"NODE_", "UV_", "PYTHON", "LD_", "MALLOC_", "GLIBC_", "OPENSSL_", "SSL_", "LC_"}) {
    if (name.starts_with(prefix) && name != "NODE_ENV") return true;
  }
  return name == "LANG" || name == "LANGUAGE" || name == "TZ";
}

}  // namespace

boost::system::result<std::filesystem::path, std::string> makeStandbyFolder(const std::filesystem::path& stateDir,
                                                                            const std::string& id,
                                                                            const sandbox::SandboxIdentity& identity) {
  namespace fs = std::filesystem;
  const fs::path folder = stateDir / "standby" / id;
  std::error_code ec;
  fs::remove_all(folder, ec);
  fs::create_directories(folder, ec);
  // (path and string convert into each other: the result says which it is.)
  if (ec) return {boost::system::in_place_error, "cannot create " + folder.string() + ": " + ec.message()};
  if (identity.switchUser) {
    if (auto shared = sandbox::shareWithSandbox(stateDir, folder, identity.gid); !shared)
      return {boost::system::in_place_error, shared.error()};
  } else {
    fs::permissions(folder,
                    fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                        fs::perms::others_exec,
                    ec);
  }
  return {boost::system::in_place_value, folder};
}

bool standbyCanServe(const InstanceSpec& spec) {
  return std::none_of(spec.env.begin(), spec.env.end(), [&spec](const std::string& entry) {
    return readAtStart(spec.runtime, std::string_view(entry).substr(0, entry.find('=')));
  });
}

}  // namespace tinyfaas
