#include "util/module_loader.hpp"

#include <dlfcn.h>

#include <map>
#include <mutex>
#include <string_view>

#include "util/install_paths.hpp"

namespace tinyfaas {

namespace fs = std::filesystem;

fs::path installedModuleDir() {
  const fs::path exeDir = executableDir();
  return exeDir.empty() ? fs::path{} : (exeDir / "../lib/tinyfaas/modules").lexically_normal();
}

boost::system::result<const ModuleHeader*, std::string> loadModule(const std::string& name) {
  static std::mutex mutex;
  static std::map<std::string, const ModuleHeader*, std::less<>> loaded;
  std::lock_guard lock(mutex);
  if (auto it = loaded.find(name); it != loaded.end()) return it->second;

  const std::string file = "tinyfaas-" + name + ".so";
  const fs::path installed = installedModuleDir() / file;
  const fs::path built = fs::path(TINYFAAS_BUILD_MODULE_DIR) / file;
  const fs::path path = firstExisting({installed, built});
  if (path.empty()) return "module " + file + " not found (looked in " + installed.parent_path().string() + ")";

  // RTLD_LOCAL: the module's libraries stay out of the global namespace, so
  // nothing loaded later binds to them by accident.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) return "cannot load module " + path.string() + ": " + dlerror();
  const std::string symbol = "tinyfaas_module_" + name;
  auto* entry = reinterpret_cast<const void* (*)()>(dlsym(handle, symbol.c_str()));
  if (!entry) {
    dlclose(handle);
    return path.string() + " is not a tinyfaas module: it has no " + symbol;
  }
  const auto* header = static_cast<const ModuleHeader*>(entry());
  if (std::string_view(header->version) != TINYFAAS_VERSION) {
    const std::string version = header->version;
    dlclose(handle);
    return "module " + path.string() + " is from tinyfaas " + version + ", this is " TINYFAAS_VERSION;
  }
  // Never unloaded: objects and threads of the module live until exit.
  loaded.emplace(name, header);
  return header;
}

}  // namespace tinyfaas
