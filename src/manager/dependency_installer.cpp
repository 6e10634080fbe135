#include "manager/dependency_installer.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/async.hpp"
#include "manager/archive.hpp"
#include "sandbox/bwrap_command.hpp"
#include "sandbox/seccomp_policy.hpp"

namespace tinyfaas {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr std::chrono::seconds kNetworkSetupTimeout{10};

// Ranges an install never reaches, besides the node's own addresses: this
// network, private and shared address space, link-local (cloud metadata),
// benchmarking, multicast and reserved. slirp4netns's own 10.0.2.0/24
// (gateway, DNS) is a connected route and stays reachable; the gateway
// leads to no host loopback (--disable-host-loopback).
// clang-format off
constexpr const char* kBlockedRanges[] = {"0.0.0.0/8",     "10.0.0.0/8",   "100.64.0.0/10", "169.254.0.0/16",
                                          "172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15",
                                          "224.0.0.0/4",   "240.0.0.0/4"};
// clang-format on

// Variables of the daemon's environment an install may see: where the
// operator's CA bundle is and which proxy to use; nothing else.
// clang-format off
constexpr const char* kPassedVariables[] = {"SSL_CERT_FILE",  "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS", "PIP_CERT",
                                            "REQUESTS_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
                                            "http_proxy", "https_proxy", "no_proxy"};
// clang-format on
// And for go builds, where to check modules' checksums and which modules
// are private (never GOFLAGS: build flags are the daemon's alone).
constexpr const char* kPassedGoVariables[] = {"GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GONOPROXY", "GOINSECURE"};

// Where a go build finds what the daemon gives it.
constexpr const char* kGoFilesDir = "/opt/tinyfaas/go";
constexpr const char* kGoCacheLayers = "/opt/tinyfaas/gocache";

// The shell inside the sandbox. With network it first closes the routes
// ($4: `ip -batch` commands), which is what it holds CAP_NET_ADMIN for,
// says the sandbox is set up (fd $2: slirp4netns may attach) and waits for
// the go (fd $3: the network is up); then it gives the capability up for
// good (no inheritable or ambient set, so the exec leaves none) and the
// install runs: the upload copied into the tmpfs, installed there, and the
// result written as a zip to fd $1.
constexpr const char* kScript =
    "set -e; out=$1; ready=$2; go=$3; routes=$4; shift 4; "
    "if [ \"$go\" != - ]; then ip -batch \"/proc/self/fd/$routes\"; echo >&\"$ready\"; read -r _ <&\"$go\"; fi; "
    "exec setpriv --inh-caps=-all --ambient-caps=-all -- /bin/sh -c '"
    "set -e; out=$1; shift; mkdir -p \"$HOME\" /tmp/build; cp -R /src/. /tmp/build; cd /tmp/build; \"$@\"; "
    "exec zip -q -r -y - . >&\"$out\"' sh \"$out\" \"$@\"";

std::string trim(std::string_view text) {
  const auto begin = text.find_first_not_of(" \t\r");
  if (begin == std::string_view::npos) return {};
  const auto end = text.find_last_not_of(" \t\r");
  return std::string(text.substr(begin, end - begin + 1));
}

// A path or URL that leads outside the function folder.
bool pointsOutside(std::string_view target) {
  if (target.empty()) return false;
  if (target.front() == '/' || target.front() == '~' || target.rfind("file:", 0) == 0) return true;
  for (const auto& part : fs::path(std::string(target))) {
    if (part == "..") return true;
  }
  return false;
}

boost::system::result<InstallPlan, std::string> planRequirements(const fs::path& file, bool allowScripts) {
  std::ifstream in(file);
  InstallPlan plan;
  std::string raw;
  for (int number = 1; std::getline(in, raw); ++number) {
    std::string line = trim(raw.substr(0, raw.find(" #")));
    if (line.empty() || line.front() == '#') continue;
    const std::string where = "requirements.txt line " + std::to_string(number) + ": ";
    if (line.front() == '-') {
      // "-r x", "-rx", "--requirement=x", "--requirement x".
      std::string option = line, value;
      if (const auto cut = line.find_first_of(" =\t"); cut != std::string::npos) {
        option = line.substr(0, cut);
        value = trim(line.substr(cut + 1));
      } else if (line.size() > 2 && line[1] != '-') {
        option = line.substr(0, 2);
        value = trim(line.substr(2));
      }
      if (option == "-i" || option == "--index-url" || option == "--extra-index-url" || option == "--trusted-host")
        return where + "option " + option + " is not allowed: the node's pip configuration chooses the index";
      if (pointsOutside(value)) return where + "option " + option + " " + value + " points outside the function folder";
      plan.needed = true;
      plan.network = true;  // whatever a nested file asks for
      continue;
    }
    if (line.find("file:") != std::string::npos || pointsOutside(line))
      return where + line + " points outside the function folder";
    plan.needed = true;
    const bool local = line.front() == '.';
    // pip builds a source folder by running its setup.py, even with
    // --only-binary: a script like npm's.
    if (local && !allowScripts && !line.ends_with(".whl"))
      return where + line +
             " is built by running its own setup code, and this node does not run packages' "
             "install scripts (--install-scripts); upload a wheel instead";
    if (!local) plan.network = true;
  }
  return plan;
}

boost::system::result<InstallPlan, std::string> planPackage(const fs::path& file) {
  std::ifstream in(file);
  auto manifest = nlohmann::json::parse(in, nullptr, false);
  if (manifest.is_discarded() || !manifest.is_object()) return std::string("package.json is not valid JSON");
  InstallPlan plan;
  auto deps = manifest.find("dependencies");
  if (deps == manifest.end() || !deps->is_object()) return plan;
  for (const auto& [name, spec] : deps->items()) {
    plan.needed = true;
    const std::string version = spec.is_string() ? spec.get<std::string>() : "";
    if (version.rfind("file:", 0) == 0) {
      if (pointsOutside(version.substr(5)))
        return "package.json dependency " + name + " points outside the function folder";
      continue;
    }
    plan.network = true;
  }
  return plan;
}

// The node's own IPv4 addresses (loopback aside).
std::vector<std::string> ownAddresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, text, sizeof text);
    if (std::string_view(text).rfind("127.", 0) != 0) out.push_back(std::string(text) + "/32");
  }
  freeifaddrs(list);
  return out;
}

fs::path realPath(const fs::path& p) {
  std::error_code ec;
  auto resolved = fs::canonical(p, ec);
  return ec ? p : resolved;
}

// Reads from `fd` until `delimiter` or the timeout; the text read.
asio::awaitable<boost::system::result<std::string, Failure>> readUntil(asio::any_io_executor executor, int fd,
                                                                       char delimiter, std::chrono::seconds timeout) {
  asio::posix::stream_descriptor pipe(executor, ::dup(fd));
  asio::steady_timer timer(executor, timeout);
  std::string text;
  auto read = asio::async_read_until(pipe, asio::dynamic_buffer(text, 4096), delimiter, useTuple);
  auto outcome = co_await (std::move(read) || timer.async_wait(useTuple));
  if (outcome.index() == 1) co_return Failure{"timed out"};
  auto [ec, n] = std::get<0>(outcome);
  if (ec && text.find(delimiter) == std::string::npos) co_return Failure{ec.message()};
  co_return boost::system::result<std::string, Failure>{boost::system::in_place_value, std::move(text)};
}

std::string readFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A file of the daemon's that only a descriptor reaches: an unlinked one in
// `dir`, else one in memory.
boost::system::result<UniqueFd, std::string> scratchFile(const fs::path& dir, const char* name) {
  UniqueFd fd(dir.empty() ? -1 : ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (fd) return fd;
  return sandbox::memoryFile(name, "");
}

// What the sandbox wrote to `fd`, up to `limit` bytes.
boost::system::result<std::string, Failure> readBack(int fd, std::size_t limit, const std::string& what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Failure{std::string("fstat: ") + std::strerror(errno)};
  if (static_cast<std::size_t>(st.st_size) > limit)
    return Failure{what + " larger than " + std::to_string(limit) + " bytes"};
  std::string data(static_cast<std::size_t>(st.st_size), '\0');
  if (::pread(fd, data.data(), data.size(), 0) != static_cast<ssize_t>(data.size()))
    return Failure{"cannot read " + what};
  return {boost::system::in_place_value, std::move(data)};
}

}  // namespace

boost::system::result<InstallPlan, std::string> planInstall(Runtime runtime, const fs::path& codeDir,
                                                            bool allowScripts) {
  std::error_code ec;
  if (runtime == Runtime::go) {
    auto go = planGoBuild(codeDir);
    if (!go) return go.error();
    return InstallPlan{true, go->network};
  }
  if (runtime == Runtime::nodejs && fs::is_regular_file(codeDir / "package.json", ec))
    return planPackage(codeDir / "package.json");
  if (runtime == Runtime::python3 && fs::is_regular_file(codeDir / "requirements.txt", ec))
    return planRequirements(codeDir / "requirements.txt", allowScripts);
  return InstallPlan{};
}

std::string installErrorLine(const std::vector<std::string>& lines) {
  // npm: "npm ERR! 404 Not Found - GET https://.../leftpadx - Not found"
  // (npm 10 writes "npm error"); pip: "ERROR: No matching distribution
  // found for x", its last ERROR line (else its first "error:" line).
  static const std::regex npm(R"(^npm (ERR!|error) +(404 Not Found|4\d\d |5\d\d |E[A-Z0-9]+ |notarget|Could not).*)");
  // Else npm's first line that is neither a detail ("code ENOENT", "path
  // ...") nor the pointer to its debug log on the daemon's host: for a
  // missing file: dependency "npm error enoent ENOENT: no such file ...".
  static const std::regex npmReason(
      R"(^npm (ERR!|error) +(?!(code|syscall|path|errno|dest|A complete log|Log files were not written)\b)\S.*)");
  std::string pip, npmLine, npmOther;
  for (const auto& line : lines) {
    if (line.rfind("ERROR: ", 0) == 0 || (pip.empty() && line.rfind("error: ", 0) == 0)) pip = line;
    if (npmLine.empty() && std::regex_match(line, npm)) npmLine = line;
    if (npmOther.empty() && std::regex_match(line, npmReason)) npmOther = line;
  }
  if (!pip.empty()) return pip;
  if (!npmLine.empty()) return npmLine;
  if (!npmOther.empty()) return npmOther;
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (!trim(*it).empty() && it->find("A complete log of this run") == std::string::npos) return *it;
  }
  return "no output";
}

DependencyInstaller::DependencyInstaller(asio::any_io_executor executor, InstallerOptions options)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      goCache_(options_.scratchDir, options_.goCacheBytes,
               options_.identity.switchUser ? std::optional<gid_t>(options_.identity.gid) : std::nullopt) {
  bwrap_ = findExecutable("bwrap");
  slirp_ = findExecutable("slirp4netns");
  ip_ = findExecutable("ip");
  if (ip_.empty() && access("/usr/sbin/ip", X_OK) == 0) ip_ = "/usr/sbin/ip";
  for (std::string* tool : {&options_.npm, &options_.python, &options_.go}) {
    if (tool->find('/') == std::string::npos) {
      if (std::string found = findExecutable(*tool); !found.empty()) *tool = found;
    }
  }
  const fs::path goFiles = options_.runtimesDir / "go";
  goMain_ = readFile(goFiles / "tinyfaas_main.go");
  goBuildScript_ = readFile(goFiles / "build.sh");
  if (access(options_.go.c_str(), X_OK) != 0 || options_.go.find('/') == std::string::npos)
    goSetupError_ = "this node has no Go toolchain to build go functions (" + options_.go +
                    " not found): install one (apt-get install golang-go, or Go from go.dev) or name it with "
                    "the daemon's --go setting";
  else if (goMain_.empty() || goBuildScript_.empty())
    goSetupError_ = "the go runtime's files are missing from " + goFiles.string() + " (--runtimes-dir)";
  if (goSetupError_.empty()) spdlog::info("go functions are built with {}", options_.go);
  if (bwrap_.empty()) {
    setupError_ = "installing dependencies needs bubblewrap (apt-get install bubblewrap); upload them inside the zip";
    return;
  }
  auto program = sandbox::seccompProgram();
  if (!program) {
    setupError_ = "cannot build the seccomp filter: " + program.error().message;
    return;
  }
  seccomp_ = std::move(*program);
}

asio::awaitable<boost::system::result<void, std::string>> DependencyInstaller::install(
    Runtime runtime, fs::path codeDir, std::string owner, ChildProcess::LineHandler onOutputLine) {
  codeDir = codeDir.lexically_normal();
  if (!codeDir.has_filename()) codeDir = codeDir.parent_path();  // "vN/" names vN
  const bool goBuild = runtime == Runtime::go;
  if (goBuild && !goSetupError_.empty()) co_return goSetupError_;
  auto plan = planInstall(runtime, codeDir, options_.allowScripts);
  if (!plan) co_return plan.error();
  if (!plan->needed) co_return boost::system::result<void, std::string>{};
  if (!setupError_.empty() && goBuild && bwrap_.empty())
    co_return std::string("building go functions needs bubblewrap (apt-get install bubblewrap)");
  if (!setupError_.empty()) co_return setupError_;
  const bool network = plan->network && !options_.offline;
  if (network && (slirp_.empty() || ip_.empty()))
    co_return std::string(
        "installing these dependencies needs the network, which needs slirp4netns and ip "
        "(apt-get install slirp4netns iproute2)");
  const std::string what = goBuild ? "the go build" : "installing dependencies";

  sandbox::InheritedFds fds;
  // The result: an unlinked file of the daemon's, written only through
  // this descriptor; a go build's new cache entries likewise.
  auto output = scratchFile(options_.scratchDir, "tinyfaas-install");
  if (!output) co_return output.error();
  const int outputFd = output->get();
  auto childOutput = ::fcntl(outputFd, F_DUPFD_CLOEXEC, 3);
  if (childOutput < 0) co_return std::string("dup: ") + std::strerror(errno);
  sandbox::SandboxLayout layout;
  // The descriptors the script names come first: dash takes single digits.
  const int resultFd = fds.add(UniqueFd(childOutput));
  UniqueFd cacheOutput;
  int cacheFd = -1;
  if (goBuild) {
    auto file = scratchFile(options_.scratchDir, "tinyfaas-go-cache");
    if (!file) co_return file.error();
    cacheOutput = std::move(*file);
    const int dup = ::fcntl(cacheOutput.get(), F_DUPFD_CLOEXEC, 3);
    if (dup < 0) co_return std::string("dup: ") + std::strerror(errno);
    cacheFd = fds.add(UniqueFd(dup));
  }
  std::vector<std::string> command;
  if (runtime == Runtime::nodejs) {
    command = {options_.npm, "install", "--omit=dev", "--no-audit", "--no-fund", "--no-update-notifier"};
    if (!options_.allowScripts) command.push_back("--ignore-scripts");
    if (!network) command.push_back("--offline");
  } else if (runtime == Runtime::python3) {
    // clang-format off
    command = {options_.python, "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
               "--no-warn-script-location", "--target", ".", "-r", "requirements.txt"};
    // clang-format on
    if (!options_.allowScripts) command.insert(command.end(), {"--only-binary", ":all:"});
    if (!network) command.push_back("--no-index");
  } else {
    command = {"/bin/sh", std::string(kGoFilesDir) + "/build.sh", std::to_string(cacheFd)};
  }
  UniqueFd infoRead, readyRead, goWrite;
  std::string readyArg = "-", goArg = "-", routesArg = "-";
  if (network) {
    // Closed off: the node's own, private and link-local addresses.
    std::string routes;
    for (const char* range : kBlockedRanges) routes += std::string("route add unreachable ") + range + "\n";
    for (const auto& address : ownAddresses()) routes += "route add unreachable " + address + "\n";
    auto routesFile = sandbox::memoryFile("tinyfaas-routes", routes);
    if (!routesFile) co_return routesFile.error();
    routesArg = std::to_string(fds.add(std::move(*routesFile)));
    int ready[2], go[2];
    if (pipe2(ready, O_CLOEXEC) != 0) co_return std::string("pipe: ") + std::strerror(errno);
    readyRead.reset(ready[0]);
    readyArg = std::to_string(fds.add(UniqueFd(ready[1])));
    if (pipe2(go, O_CLOEXEC) != 0) co_return std::string("pipe: ") + std::strerror(errno);
    goWrite.reset(go[1]);
    goArg = std::to_string(fds.add(UniqueFd(go[0])));
    int info[2];
    if (pipe2(info, O_CLOEXEC) != 0) co_return std::string("pipe: ") + std::strerror(errno);
    infoRead.reset(info[0]);
    layout.infoFd = fds.add(UniqueFd(info[1]));
    auto resolv = sandbox::memoryFile("tinyfaas-resolv", "nameserver 10.0.2.3\n");
    if (!resolv) co_return resolv.error();
    layout.files.emplace_back(fds.add(std::move(*resolv)), "/etc/resolv.conf");
  }
  layout.systemPaths = sandbox::systemPaths();
  // The operator's system-wide npm and pip settings (the index, its CA).
  for (const char* file : {"/etc/pip.conf", "/etc/npmrc", "/etc/xdg/pip"}) layout.systemPaths.emplace_back(file);
  layout.tmpfs = {{"/tmp", options_.maxOutputBytes}};
  auto source = sandbox::openPath(codeDir);
  if (!source) co_return source.error();
  layout.fdBinds.push_back({fds.add(std::move(*source)), "/src", false});
  std::vector<std::string> tools = {options_.npm, options_.python};
  if (goBuild) tools.push_back(options_.go);
  for (const std::string& tool : tools) {
    const fs::path real = realPath(tool);
    if (real.string().rfind("/usr/", 0) == 0) continue;
    // A tool outside /usr (nvm, pyenv): its installation, read-only; its
    // own folder only when that installation would be a shared one.
    fs::path dir = real.parent_path().parent_path();
    if (dir == "/" || dir == "/tmp" || dir == "/var/tmp" || dir == "/home" || dir == "/root") dir = real.parent_path();
    if (auto fd = sandbox::openPath(dir)) layout.fdBinds.push_back({fds.add(std::move(*fd)), dir, false});
  }
  if (goBuild) {
    for (const auto& [name, content] :
         {std::pair{"tinyfaas_main.go", &goMain_}, std::pair{"build.sh", &goBuildScript_}}) {
      auto file = sandbox::memoryFile("tinyfaas-go", *content);
      if (!file) co_return file.error();
      layout.files.emplace_back(fds.add(std::move(*file)), fs::path(kGoFilesDir) / name);
    }
    // Only this owner's cache, read-only: what the build adds comes back
    // through cacheFd and is checked before it joins.
    auto cache = goCache_.use(owner);
    if (!cache) co_return "cannot prepare the go build cache: " + cache.error().message;
    auto cacheDir = sandbox::openPath(*cache);
    if (!cacheDir) co_return cacheDir.error();
    layout.fdBinds.push_back({fds.add(std::move(*cacheDir)), fs::path(kGoCacheLayers) / "own", false});
  }
  auto seccomp = sandbox::memoryFile("tinyfaas-seccomp", seccomp_);
  if (!seccomp) co_return seccomp.error();
  layout.seccompFd = fds.add(std::move(*seccomp));

  layout.env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"HOME", "/tmp/home"}, {"LANG", "C.UTF-8"}};
  if (runtime == Runtime::nodejs)
    layout.env.insert(layout.env.end(),
                      {{"npm_config_cache", "/tmp/home/.npm"}, {"npm_config_update_notifier", "false"}});
  if (runtime == Runtime::python3)
    layout.env.insert(layout.env.end(), {{"PIP_NO_INPUT", "1"}, {"PYTHONDONTWRITEBYTECODE", "1"}});
  if (goBuild) {
    // Only what the daemon chooses: no toolchain download, no cgo, no
    // build flags, no go.work or go env file of the upload's.
    layout.env.insert(layout.env.end(), {{"TINYFAAS_GO", realPath(options_.go).string()},
                                         {"GOCACHE", "/tmp/caches/build"},
                                         {"GOMODCACHE", "/tmp/caches/mod"},
                                         {"GOPATH", "/tmp/home/go"},
                                         {"GOTOOLCHAIN", "local"},
                                         {"CGO_ENABLED", "0"},
                                         {"GOFLAGS", ""},
                                         {"GOENV", "off"},
                                         {"GOWORK", "off"},
                                         {"GO111MODULE", "on"},
                                         {"GOPROXY", network ? options_.goProxy : "off"}});
    for (const char* name : kPassedGoVariables) {
      if (const char* value = std::getenv(name)) layout.env.emplace_back(name, value);
    }
  }
  for (const char* name : kPassedVariables) {
    if (const char* value = std::getenv(name)) layout.env.emplace_back(name, value);
  }
  layout.chdir = "/tmp";
  // The sandbox's network is owned by its own user namespace, so the script
  // can close its routes, and slirp4netns can join it as the sandbox user
  // (a daemon that is not root can start it no other way).
  layout.installNetwork = network;
  std::vector<std::string> inside = {"/bin/sh", "-c",  kScript,  "sh", std::to_string(resultFd),
                                     readyArg,  goArg, routesArg};
  inside.insert(inside.end(), command.begin(), command.end());

  SpawnOptions spawn;
  spawn.argv = sandbox::bwrapArguments(bwrap_, layout, inside);
  spawn.env = sandbox::bwrapEnvironment();
  spawn.cwd = "/";
  spawn.inheritFds = fds.parentFds();
  if (options_.identity.switchUser) spawn.credentials = SpawnCredentials{options_.identity.uid, options_.identity.gid};

  std::unique_ptr<sandbox::InstanceCgroup> cgroup;
  std::vector<UniqueFd> cgroupProcs;
  if (options_.cgroups.enforced()) {
    auto made =
        options_.cgroups.create("install." + std::to_string(++installs_), sandbox::CgroupLimits{1024, 1.0, 256});
    if (!made) co_return "cannot run " + what + ": " + made.error();
    auto procs = (*made)->openProcs();
    if (!procs) co_return "cannot run " + what + ": " + procs.error();
    cgroupProcs = std::move(*procs);
    for (const auto& fd : cgroupProcs) spawn.cgroupProcs.push_back(fd.get());
    cgroup = std::move(*made);
  }

  spdlog::info("{} in the sandbox: {}{}", goBuild ? "building a go function" : "installing dependencies",
               fs::path(goBuild ? options_.go : command[0]).filename().string(),
               network ? " (with network)" : " (no network)");
  std::unique_ptr<ChildProcess> slirp;  // the install's network, while it runs
  AfterSpawn afterSpawn = nullptr;
  pid_t sandboxPid = 0;  // listed in running_ while it runs, for cancel()
  if (network) {
    afterSpawn = [this, &fds, &slirp, &sandboxPid, info = infoRead.get(), ready = readyRead.get(),
                  go = goWrite.get()](pid_t pid) -> asio::awaitable<boost::system::result<void, std::string>> {
      running_.insert(sandboxPid = pid);
      fds.clear();  // the child's ends: only it may hold them now
      co_return co_await connect(info, ready, go, slirp);
    };
  } else {
    afterSpawn = [this, &fds, &sandboxPid](pid_t pid) -> asio::awaitable<boost::system::result<void, std::string>> {
      running_.insert(sandboxPid = pid);
      fds.clear();
      co_return boost::system::result<void, std::string>{};
    };
  }
  if (cancelled_) co_return std::string("cancelled: tinyFaaS is shutting down");
  auto result = co_await runCommand(executor_, spawn, options_.timeout, std::move(onOutputLine), std::move(afterSpawn));
  running_.erase(sandboxPid);
  slirp.reset();
  cgroup.reset();  // whatever the install left is killed
  if (cancelled_) co_return std::string("cancelled: tinyFaaS is shutting down");
  if (!result) co_return "cannot run " + what + ": " + result.error();
  if (result->timedOut) co_return what + " took longer than " + std::to_string(options_.timeout.count()) + " s";
  if (result->exitCode != 0) {
    if (goBuild) {
      std::string line = goBuildErrorLine(result->lastLines);
      if (options_.offline && line.find("GOPROXY=off") != std::string::npos)
        line += " (this node is offline: vendor the modules into the upload with `go mod vendor`)";
      co_return "go build failed: " + line;
    }
    co_return "installing dependencies failed (" + result->description + "): " + installErrorLine(result->lastLines);
  }

  const std::string produced = goBuild ? "the built function is" : "installed dependencies are";
  auto zip = readBack(outputFd, options_.maxOutputBytes, produced);
  if (!zip) co_return zip.error().message;
  output->reset();
  if (goBuild) {
    // A cache that cannot take the new entries costs the next build time,
    // not this deploy.
    auto entries = readBack(cacheOutput.get(), options_.maxOutputBytes, "the go build's cache entries are");
    if (entries && !entries->empty()) {
      if (auto merged = goCache_.merge(owner, *entries); !merged)
        spdlog::warn("go build cache of {}: {}", owner.empty() ? "the node" : owner, merged.error());
    }
  }
  // Unpacked with the upload's own checks into a fresh folder that then
  // replaces the code folder.
  const fs::path fresh = codeDir.parent_path() / (codeDir.filename().string() + ".installed");
  std::error_code ec;
  fs::remove_all(fresh, ec);
  fs::create_directory(fresh, ec);
  if (ec) co_return "cannot create " + fresh.string() + ": " + ec.message();
  ExtractLimits limits;
  limits.maxTotalBytes = options_.maxOutputBytes;
  limits.maxEntries = 200000;
  if (auto extracted = extractZip(*zip, fresh, limits); !extracted) {
    fs::remove_all(fresh, ec);
    co_return (goBuild ? "the built function: " : "installed dependencies: ") + extracted.error();
  }
  fs::remove_all(codeDir, ec);
  if (!ec) fs::rename(fresh, codeDir, ec);
  if (ec)
    co_return "cannot put the " + std::string(goBuild ? "built function" : "installed dependencies") +
        " in place: " + ec.message();
  co_return boost::system::result<void, std::string>{};
}

void DependencyInstaller::cancel() {
  cancelled_ = true;
  for (pid_t pid : running_) ::kill(-pid, SIGKILL);  // as runCommand's timeout does
}

asio::awaitable<boost::system::result<void, std::string>> DependencyInstaller::connect(
    int infoFd, int readyFd, int goFd, std::unique_ptr<ChildProcess>& slirpProcess) {
  // bwrap says which pid its sandbox has; the script inside says when the
  // sandbox is set up (slirp4netns must not race bwrap's own setup of the
  // namespace's loopback).
  auto info = co_await readUntil(executor_, infoFd, '}', kNetworkSetupTimeout);
  if (!info) co_return "install sandbox did not start: " + info.error().message;
  const auto parsed = nlohmann::json::parse(*info, nullptr, false);
  const int child = parsed.is_object() ? parsed.value("child-pid", 0) : 0;
  if (child <= 0) co_return std::string("install sandbox did not say its pid");
  auto started = co_await readUntil(executor_, readyFd, '\n', kNetworkSetupTimeout);
  if (!started) co_return "install sandbox did not start: " + started.error().message;

  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) co_return std::string("pipe: ") + std::strerror(errno);
  UniqueFd readyRead(ready[0]), readyWrite(ready[1]);
  SpawnOptions slirp;
  // Into the sandbox's user namespace, which owns its network: as the
  // sandbox user when the daemon can switch to it (a daemon that is not
  // root could enter it no other way), else as the daemon.
  // clang-format off
  slirp.argv = {slirp_, "--configure", "--mtu=65520", "--disable-host-loopback", "--ready-fd=3",
                "--userns-path=/proc/" + std::to_string(child) + "/ns/user", "--netns-type=path",
                "/proc/" + std::to_string(child) + "/ns/net", "tap0"};
  // clang-format on
  slirp.env = sandbox::bwrapEnvironment();
  slirp.cwd = "/";
  slirp.inheritFds = {readyWrite.get()};
  if (options_.identity.switchUser && geteuid() != 0)
    slirp.credentials = SpawnCredentials{options_.identity.uid, options_.identity.gid};
  auto spawned =
      ChildProcess::spawn(executor_, slirp, [](std::string_view line) { spdlog::debug("slirp4netns: {}", line); });
  if (!spawned) co_return "cannot start slirp4netns: " + spawned.error();
  slirpProcess = std::move(*spawned);
  readyWrite.reset();
  auto isReady = co_await readUntil(executor_, readyRead.get(), '1', kNetworkSetupTimeout);
  if (!isReady) co_return "slirp4netns did not set up the install's network: " + isReady.error().message;

  // Let the install run.
  if (::write(goFd, "\n", 1) != 1) co_return std::string("cannot start the install: ") + std::strerror(errno);
  co_return boost::system::result<void, std::string>{};
}

}  // namespace tinyfaas
