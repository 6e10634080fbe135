#include "backend/docker/runtime_image.hpp"

#include <unistd.h>

#include <regex>

#include "util/child_process.hpp"

namespace tinyfaas::docker {

namespace fs = std::filesystem;

namespace {

// Bumped whenever what goes into an image changes in a way the file list
// does not show (e.g. a different import change), so old images are not reused.
constexpr std::string_view kRecipeVersion = "tinyfaas-runtime-image/1";

constexpr const char* kPasswd =
    "root:x:0:0:root:/root:/usr/sbin/nologin\n"
    "tinyfaas:x:10001:10001:tinyfaas function:/tmp:/usr/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
constexpr const char* kGroup =
    "root:x:0:\n"
    "tinyfaas:x:10001:\n"
    "nogroup:x:65534:\n";
constexpr const char* kNsswitch =
    "passwd: files\n"
    "group: files\n"
    "shadow: files\n"
    "hosts: files dns\n"
    "networks: files\n"
    "protocols: files\n"
    "services: files\n";

// Enough of a shell environment for fn.sh scripts and shell-outs; the ones
// the host lacks are left out.
constexpr const char* kTools[] = {"cat",   "printenv", "env",  "echo",     "head",      "tail",  "tr",    "wc",
                                  "cut",   "sort",     "uniq", "sed",      "grep",      "date",  "sleep", "base64",
                                  "ls",    "mkdir",    "rm",   "cp",       "mv",        "touch", "tee",   "true",
                                  "false", "expr",     "seq",  "basename", "dirname",   "od",    "xargs", "printf",
                                  "id",    "test",     "awk",  "md5sum",   "sha256sum", "stat",  "ln",    "chmod"};

std::string hostTool(std::string_view name) {
  for (const char* dir : {"/usr/bin", "/bin", "/usr/sbin", "/sbin"}) {
    const std::string candidate = std::string(dir) + "/" + std::string(name);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

// An interpreter path as configured ("node", "/usr/bin/python3") to the file
// it is; a PATH lookup for bare names.
boost::system::result<fs::path, std::string> locate(const std::string& program, const char* what) {
  std::string path = program;
  if (path.find('/') == std::string::npos) path = findExecutable(path);
  if (path.empty()) return {boost::system::in_place_error, std::string(what) + " '" + program + "' is not installed"};
  std::error_code ec;
  fs::path canonical = fs::canonical(path, ec);
  if (ec) return {boost::system::in_place_error, std::string(what) + " '" + path + "': " + ec.message()};
  auto elf = readElf(canonical);
  if (!elf)
    return {boost::system::in_place_error, std::string(what) + " " + path + " is not a program the image can hold (" +
                                               elf.error() + "); point to the real interpreter, not a wrapper script"};
  return {boost::system::in_place_value, fs::path(path)};
}

boost::system::result<void, std::string> addBase(RootfsBuilder& rootfs) {
  rootfs.addDirectory("/etc", 0755);
  rootfs.addDirectory("/tmp", 01777);
  rootfs.addDirectory("/opt/tinyfaas", 0755);
  rootfs.addFile("/etc/passwd", kPasswd, 0644);
  rootfs.addFile("/etc/group", kGroup, 0644);
  rootfs.addFile("/etc/nsswitch.conf", kNsswitch, 0644);
  // The host's loader cache: libraries outside the loader's built-in
  // directories are found in the container exactly as on the host.
  for (const char* optional :
       {"/etc/ld.so.cache", "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/openssl.cnf", "/etc/mime.types"}) {
    std::error_code ec;
    if (fs::exists(optional, ec)) {
      if (auto added = rootfs.addHostPath(optional); !added) return added;
    }
  }
  // Merged /usr (Debian 12) makes these symlinks into /usr; keep the
  // layout, so that "#!/bin/sh" and /lib64's loader resolve as on the host.
  for (const char* dir : {"/bin", "/sbin", "/lib", "/lib64"}) {
    std::error_code ec;
    if (fs::is_symlink(dir, ec)) {
      if (auto added = rootfs.addHostPath(dir); !added) return added;
    }
  }
  if (::access("/bin/sh", X_OK) != 0) return std::string("this host has no /bin/sh to copy into the image");
  if (auto added = rootfs.addHostPath("/bin/sh"); !added) return added;
  for (const char* tool : kTools) {
    const std::string path = hostTool(tool);
    if (path.empty()) continue;
    if (auto added = rootfs.addHostPath(path); !added) return added;
  }
  return {};
}

std::string pythonSmokeTest(const fs::path& stdlib) {
  std::string modules = "json, http.server, socketserver, hashlib, encodings.idna, urllib.parse, zlib";
  const std::pair<const char*, const char*> optional[] = {
      {"_ssl.", "ssl"},   {"_sqlite3.", "sqlite3"}, {"_ctypes.", "ctypes"},   {"_decimal.", "decimal"},
      {"_lzma.", "lzma"}, {"_bz2.", "bz2"},         {"_asyncio.", "asyncio"}, {"_uuid.", "uuid"}};
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(stdlib / "lib-dynload", ec)) {
    const std::string name = entry.path().filename().string();
    for (const auto& [prefix, module] : optional) {
      if (name.rfind(prefix, 0) == 0 && modules.find(module) == std::string::npos)
        modules += std::string(", ") + module;
    }
  }
  return "import " + modules + "; import subprocess; subprocess.run(['/bin/sh', '-c', 'true'], check=True)";
}

}  // namespace

bool keepInPythonStdlib(const fs::path& relative) {
  const std::string top = relative.begin() == relative.end() ? "" : relative.begin()->string();
  static const char* const dropped[] = {"site-packages", "dist-packages", "test",      "idlelib",
                                        "tkinter",       "turtledemo",    "ensurepip", "lib2to3"};
  for (const char* name : dropped) {
    if (top == name) return false;
  }
  if (top.rfind("config-", 0) == 0) return false;  // the static libpython and its build files
  const std::string name = relative.filename().string();
  // Only used with python -O / -OO.
  if (name.find(".opt-1.pyc") != std::string::npos || name.find(".opt-2.pyc") != std::string::npos) return false;
  return true;
}

boost::system::result<fs::path, std::string> pythonStdlibDir(const fs::path& canonical) {
  static const std::regex versioned(R"(python(\d+\.\d+))");
  std::smatch match;
  const std::string name = canonical.filename().string();
  using boost::system::in_place_error;
  if (!std::regex_search(name, match, versioned))
    return {in_place_error, "cannot tell the version of " + canonical.string() + " from its name (expected python3.X)"};
  const fs::path stdlib = canonical.parent_path().parent_path() / "lib" / ("python" + match[1].str());
  std::error_code ec;
  if (!fs::exists(stdlib / "os.py", ec))
    return {in_place_error,
            "cannot find the standard library of " + canonical.string() + " (no " + (stdlib / "os.py").string() + ")"};
  return {boost::system::in_place_value, stdlib};
}

boost::system::result<RuntimeImagePlan, std::string> planRuntimeImage(Runtime runtime,
                                                                      const RuntimeImageInputs& inputs) {
  RuntimeImagePlan plan{runtime, "tinyfaas-runtime-" + std::string(toString(runtime)),
                        {},      {},
                        {},      RootfsBuilder(LibraryResolver::fromHost())};
  if (auto base = addBase(plan.rootfs); !base) return base.error();
  std::error_code ec;
  switch (runtime) {
    case Runtime::nodejs: {
      auto node = locate(inputs.node, "node");
      if (!node) return node.error();
      if (auto added = plan.rootfs.addHostPath(*node); !added) return added.error();
      if (auto added =
              plan.rootfs.addHostFileAs(inputs.runtimesDir / "nodejs" / "handler.js", "/opt/tinyfaas/handler.js", 0644);
          !added)
        return added.error();
      const std::string exe = fs::canonical(*node, ec).string();
      plan.command = {exe, "/opt/tinyfaas/handler.js"};
      plan.smokeTest = {exe, "-e",
                        "require('http'); require('crypto'); require('zlib');"
                        "require('child_process').execFileSync('/bin/sh', ['-c', 'true']);"};
      break;
    }
    case Runtime::python3: {
      auto python = locate(inputs.python, "python");
      if (!python) return python.error();
      const fs::path exe = fs::canonical(*python, ec);
      auto stdlib = pythonStdlibDir(exe);
      if (!stdlib) return stdlib.error();
      if (auto added = plan.rootfs.addHostPath(*python); !added) return added.error();
      if (auto added = plan.rootfs.addHostTree(*stdlib, keepInPythonStdlib); !added) return added.error();
      if (auto added = plan.rootfs.addHostFileAs(inputs.runtimesDir / "python3" / "handler.py",
                                                 "/opt/tinyfaas/handler.py", 0644);
          !added)
        return added.error();
      plan.command = {exe.string(), "/opt/tinyfaas/handler.py"};
      plan.smokeTest = {exe.string(), "-c", pythonSmokeTest(*stdlib)};
      break;
    }
    case Runtime::binary:
    case Runtime::go: {  // never asked for: go functions use the binary image
      if (auto added = plan.rootfs.addHostFileAs(inputs.binaryHandler, "/opt/tinyfaas/tinyfaas-binary-handler", 0755);
          !added)
        return added.error();
      plan.command = {"/opt/tinyfaas/tinyfaas-binary-handler"};
      // Without TINYFAAS_SOCKET the handler exits 2 after loading: proves its
      // libraries are all there.
      plan.smokeTest = {"/bin/sh", "-c",
                        "printf ok | cat >/dev/null && printenv PATH >/dev/null && "
                        "{ /opt/tinyfaas/tinyfaas-binary-handler 2>/dev/null; test $? -eq 2; }"};
      break;
    }
  }
  plan.changes = {"USER " + std::to_string(kFunctionUid) + ":" + std::to_string(kFunctionGid), "WORKDIR /tmp",
                  "ENV PATH=/usr/local/bin:/usr/bin:/bin", "LABEL tinyfaas.runtime=" + std::string(toString(runtime))};
  return plan;
}

boost::system::result<std::string, std::string> imageTag(const RuntimeImagePlan& plan) {
  std::string salt(kRecipeVersion);
  for (const auto& part : plan.changes) salt += "\n" + part;
  for (const auto& part : plan.command) salt += "\n" + part;
  auto digest = plan.rootfs.digest(salt);
  if (!digest) return {boost::system::in_place_error, digest.error()};
  return {boost::system::in_place_value, digest->substr(0, 12)};
}

}  // namespace tinyfaas::docker
