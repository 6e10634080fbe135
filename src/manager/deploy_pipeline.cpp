// The deploy pipeline: an upload becomes code an instance can run (unpacked,
// checked, dependencies installed in the sandbox), and a deploy that fails
// says why.

#include <algorithm>

#include <spdlog/spdlog.h>

#include "manager/archive.hpp"
#include "manager/deployment.hpp"
#include "sandbox/code_permissions.hpp"
#include "util/child_process.hpp"

namespace tinyfaas {

namespace fs = std::filesystem;

namespace {

bool fileExists(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// The file a runtime cannot start without, named in the error users see.
boost::system::result<void, std::string> checkEntryPoint(Runtime runtime, const fs::path& dir) {
  switch (runtime) {
    case Runtime::python3:
      if (!fileExists(dir / "fn.py")) return std::string("python3 function needs fn.py at the top of the zip");
      break;
    case Runtime::nodejs:
      if (!fileExists(dir / "package.json") && !fileExists(dir / "index.js"))
        return std::string("nodejs function needs package.json or index.js at the top of the zip");
      break;
    case Runtime::binary:
      if (!fileExists(dir / "fn.sh")) return std::string("binary function needs fn.sh at the top of the zip");
      break;
    case Runtime::go:
      if (!fileExists(dir / "fn.go") || !fileExists(dir / "go.mod"))
        return std::string("go function needs fn.go and go.mod at the top of the zip");
      break;
  }
  return {};
}

}  // namespace

boost::asio::awaitable<boost::system::result<fs::path, DeployError>> FunctionManager::prepareCode(
    Deployment& deployment, std::string zip, std::string subfolder) {
  const std::string& name = deployment.config.name;
  std::error_code ec;
  fs::create_directories(deployment.versionDir, ec);
  if (ec) co_return DeployError{false, "cannot create " + deployment.versionDir.string() + ": " + ec.message()};
  if (auto extracted = extractZip(zip, deployment.versionDir); !extracted)
    co_return DeployError{true, extracted.error()};
  zip.clear();
  zip.shrink_to_fit();

  fs::path relative = fs::path(subfolder).lexically_normal().relative_path();
  for (const auto& part : relative) {
    if (part == "..") co_return DeployError{true, "subfolder_path " + subfolder + " points outside the archive"};
  }
  deployment.codeDir = deployment.versionDir / relative;
  if (!fs::is_directory(deployment.codeDir, ec) || fs::is_symlink(deployment.codeDir, ec))
    co_return DeployError{true, "subfolder_path " + subfolder + " is not a folder in the archive"};
  if (auto entry = checkEntryPoint(deployment.config.runtime, deployment.codeDir); !entry)
    co_return DeployError{true, entry.error()};
  // Readable by the sandbox's group before the install (which reads it as
  // the sandbox uid) and again after (the installed files).
  if (auto shared = shareCode(deployment.versionDir); !shared) co_return DeployError{false, shared.error()};
  // A named handler, not a temporary in the co_await expression: GCC 12
  // destroys such temporaries twice.
  bool installLogged = false;
  ChildProcess::LineHandler onInstallLine = [&logs = logs_, name, label = name + ".install",
                                             &installLogged](std::string_view line) {
    logs.append(name, label, line);
    installLogged = true;
  };
  auto installed = co_await installer_.install(deployment.config.runtime, deployment.codeDir, deployment.config.owner,
                                               std::move(onInstallLine));
  if (!installed) co_return DeployError{true, installed.error() + (installLogged ? logsHint(name) : "")};
  if (auto shared = shareCode(deployment.versionDir); !shared) co_return DeployError{false, shared.error()};
  co_return relative;
}

boost::system::result<void, std::string> FunctionManager::shareCode(const fs::path& versionDir) const {
  if (!options_.identity.switchUser) return {};
  return sandbox::shareWithSandbox(options_.stateDir, versionDir, options_.identity.gid);
}

std::string FunctionManager::logsHint(const std::string& function) { return "; see `tinyfaas logs " + function + "`"; }

std::string FunctionManager::loadFailure(const std::string& function) const {
  // The runtimes' last words when the function's code cannot be loaded
  // (runtimes/nodejs/handler.js, runtimes/python3/handler.py).
  constexpr std::string_view marker = " handler: cannot load the function: ";
  const std::string all = logs_.read(function);
  // Among the last lines only: an older deploy's reason is no reason now.
  std::size_t recent = all.size();
  for (int lines = 0; lines < 8 && recent != std::string::npos && recent > 0; ++lines)
    recent = all.rfind('\n', recent - 1);
  const std::size_t at = all.rfind(marker);
  if (at == std::string::npos || (recent != std::string::npos && at < recent)) return {};
  const std::size_t from = at + marker.size();
  return all.substr(from, all.find('\n', from) - from);
}

std::string FunctionManager::recentLogs(const std::string& function) const {
  std::string all = logs_.read(function);
  if (all.empty()) return all;
  // The last three lines, without timestamps' noise trimmed: enough to show
  // a syntax error or a missing module.
  std::size_t cut = all.size();
  for (int lines = 0; lines < 4 && cut != std::string::npos && cut > 0; ++lines) cut = all.rfind('\n', cut - 1);
  std::string tail = all.substr(cut == std::string::npos ? 0 : cut + 1);
  std::replace(tail.begin(), tail.end(), '\n', ' ');
  while (!tail.empty() && tail.back() == ' ') tail.pop_back();
  return tail;
}

}  // namespace tinyfaas
