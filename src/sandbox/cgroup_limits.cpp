#include "sandbox/cgroup_limits.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

namespace tinyfaas::sandbox {

namespace fs = std::filesystem;

namespace {

// The v1 controllers we use; freezer only to kill without races.
constexpr const char* kV1Controllers[] = {"memory", "pids", "cpu", "freezer"};

boost::system::result<void, std::string> writeFile(const fs::path& file, const std::string& value) {
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return "cannot open " + file.string() + ": " + std::strerror(errno);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
    return "cannot write " + value + " to " + file.string() + ": " + std::strerror(errno);
  return {};
}

std::string readFile(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<pid_t> processesIn(const fs::path& dir) {
  std::vector<pid_t> pids;
  std::istringstream in(readFile(dir / "cgroup.procs"));
  for (pid_t pid = 0; in >> pid;) pids.push_back(pid);
  return pids;
}

// Kills and removes a tree of cgroups left by a crashed run, deepest first.
void removeTree(const fs::path& dir, bool v2) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_directory(ec)) removeTree(entry.path(), v2);
  }
  InstanceCgroup(v2, {dir});  // its destructor kills and removes
}

}  // namespace

InstanceCgroup::InstanceCgroup(bool v2, std::vector<fs::path> dirs) : v2_(v2), dirs_(std::move(dirs)) {}

InstanceCgroup::~InstanceCgroup() {
  if (dirs_.empty()) return;
  killAll();
  // The killed processes need a moment to leave; bounded.
  for (int attempt = 0; attempt < 50 && !remove(); ++attempt) ::usleep(10000);
}

boost::system::result<std::vector<UniqueFd>, std::string> InstanceCgroup::openProcs() const {
  std::vector<UniqueFd> fds;
  for (const auto& dir : dirs_) {
    UniqueFd fd(::open((dir / "cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return "cannot open " + (dir / "cgroup.procs").string() + ": " + std::strerror(errno);
    fds.push_back(std::move(fd));
  }
  return fds;
}

void InstanceCgroup::killAll() const {
  if (v2_) {
    for (const auto& dir : dirs_) {
      if (writeFile(dir / "cgroup.kill", "1")) continue;
      for (pid_t pid : processesIn(dir)) ::kill(pid, SIGKILL);  // kernels before 5.14
    }
    return;
  }
  fs::path freezer;
  for (const auto& dir : dirs_) {
    if (fs::exists(dir / "freezer.state")) freezer = dir;
  }
  const bool frozen = !freezer.empty() && writeFile(freezer / "freezer.state", "FROZEN");
  for (const auto& dir : dirs_) {
    for (pid_t pid : processesIn(dir)) ::kill(pid, SIGKILL);
  }
  if (frozen) (void)writeFile(freezer / "freezer.state", "THAWED");
}

bool InstanceCgroup::remove() {
  std::vector<fs::path> left;
  for (const auto& dir : dirs_) {
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) left.push_back(dir);
  }
  dirs_ = std::move(left);
  return dirs_.empty();
}

CgroupTree CgroupTree::detect(const fs::path& root, std::string_view selfCgroup, const std::string& node) {
  CgroupTree tree;
  tree.reason_.clear();
  std::error_code ec;
  std::vector<std::pair<std::string, std::string>> lines;  // controllers, path
  std::istringstream in{std::string(selfCgroup)};
  for (std::string line; std::getline(in, line);) {
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    lines.emplace_back(line.substr(first + 1, second - first - 1), line.substr(second + 1));
  }
  // Pure v2: the unified hierarchy mounted at the root with controllers.
  if (fs::exists(root / "cgroup.controllers", ec)) {
    for (const auto& [controllers, path] : lines) {
      if (!controllers.empty()) continue;
      tree.v2_ = true;
      tree.v2Own_ = (root / fs::path(path).relative_path()).lexically_normal();
      tree.parents_ = {tree.v2Own_};
      const std::string available = readFile(tree.v2Own_ / "cgroup.controllers");
      for (const char* needed : {"memory", "pids", "cpu"}) {
        if (available.find(needed) == std::string::npos)
          tree.reason_ = std::string("cgroup v2: the controller ") + needed + " is not delegated to " +
                         tree.v2Own_.string() + " (systemd: Delegate=yes)";
      }
      return tree;
    }
    tree.reason_ = "cgroup v2 is mounted but /proc/self/cgroup has no unified entry";
    return tree;
  }
  for (const char* controller : kV1Controllers) {
    bool found = false;
    for (const auto& [controllers, path] : lines) {
      std::istringstream names(controllers);
      for (std::string name; std::getline(names, name, ',');) {
        if (name != controller) continue;
        const fs::path mount = root / controller;
        if (!fs::is_directory(mount, ec)) continue;
        tree.parents_.push_back((mount / fs::path(path).relative_path() / node).lexically_normal());
        found = true;
      }
    }
    // The freezer only makes killing race-free; the limits need the rest.
    if (!found && std::string_view(controller) != "freezer")
      tree.reason_ = std::string("cgroup v1: no ") + controller + " hierarchy under " + root.string();
  }
  return tree;
}

boost::system::result<void, std::string> CgroupTree::prepare(pid_t self) {
  if (!reason_.empty()) return reason_;
  auto fail = [this](std::string why) -> boost::system::result<void, std::string> {
    reason_ = std::move(why);
    return reason_;
  };
  std::error_code ec;
  if (v2_) {
    // No process may sit in a cgroup whose controllers are enabled for
    // children: the daemon moves into a leaf of its own first.
    const fs::path leaf = v2Own_ / "tinyfaas-daemon";
    fs::create_directories(leaf, ec);
    if (ec) return fail("cgroup v2: cannot create " + leaf.string() + ": " + ec.message());
    if (auto moved = writeFile(leaf / "cgroup.procs", std::to_string(self)); !moved) return fail(moved.error());
    for (const char* controller : {"+memory", "+pids", "+cpu"}) {
      if (auto enabled = writeFile(v2Own_ / "cgroup.subtree_control", controller); !enabled)
        return fail(enabled.error());
    }
    return {};
  }
  for (const auto& parent : parents_) {
    removeTree(parent, false);  // a crashed run of this node
    fs::create_directories(parent, ec);
    if (ec) return fail("cgroup v1: cannot create " + parent.string() + ": " + ec.message());
  }
  return {};
}

boost::system::result<void, std::string> InstanceCgroup::setLimits(const CgroupLimits& limits) const {
  const std::string memory = std::to_string(static_cast<long long>(limits.memoryMb) << 20);
  const long period = 100000;
  const long quota = static_cast<long>(std::lround(limits.cpus * period));
  std::error_code ec;
  for (const auto& dir : dirs_) {
    std::vector<std::pair<const char*, std::string>> settings;
    if (v2_) {
      settings = {{"memory.max", memory},
                  {"memory.swap.max", "0"},
                  {"pids.max", std::to_string(limits.pids)},
                  {"cpu.max", std::to_string(quota) + " " + std::to_string(period)}};
    } else {
      // A v1 hierarchy may carry several controllers (cpu,cpuacct).
      if (fs::exists(dir / "memory.limit_in_bytes", ec)) settings.emplace_back("memory.limit_in_bytes", memory);
      // Swap accounting may be off; then there is no memsw file.
      if (fs::exists(dir / "memory.memsw.limit_in_bytes", ec))
        settings.emplace_back("memory.memsw.limit_in_bytes", memory);
      if (fs::exists(dir / "pids.max", ec)) settings.emplace_back("pids.max", std::to_string(limits.pids));
      if (fs::exists(dir / "cpu.cfs_quota_us", ec)) {
        settings.emplace_back("cpu.cfs_period_us", std::to_string(period));
        settings.emplace_back("cpu.cfs_quota_us", std::to_string(quota));
      }
    }
    for (const auto& [file, value] : settings) {
      if (auto written = writeFile(dir / file, value); !written) {
        // memory.swap.max is missing without swap accounting: no swap then.
        if (std::string_view(file) == "memory.swap.max") continue;
        return written.error();
      }
    }
  }
  return {};
}

void CgroupTree::release() const {
  if (v2_ || !enforced()) return;
  for (const auto& parent : parents_) ::rmdir(parent.c_str());
}

boost::system::result<std::unique_ptr<InstanceCgroup>, std::string> CgroupTree::create(
    const std::string& name, const CgroupLimits& limits) const {
  if (!enforced()) return reason_;
  std::vector<fs::path> dirs;
  std::error_code ec;
  for (const auto& parent : parents_) {
    const fs::path dir = parent / (v2_ ? "tinyfaas-" + name : name);
    removeTree(dir, v2_);
    fs::create_directory(dir, ec);
    if (ec) {
      InstanceCgroup cleanup(v2_, dirs);
      return "cannot create cgroup " + dir.string() + ": " + ec.message();
    }
    dirs.push_back(dir);
  }
  auto cgroup = std::make_unique<InstanceCgroup>(v2_, dirs);
  if (auto set = cgroup->setLimits(limits); !set) return set.error();
  return cgroup;
}

std::string cgroupNodeName(const fs::path& stateDir) {
  fs::path dir = stateDir.lexically_normal();
  if (!dir.has_filename()) dir = dir.parent_path();  // "/x/" is "/x"
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016zx", std::hash<std::string>{}(dir.string()));
  return "tinyfaas-" + std::string(hex, 12);
}

}  // namespace tinyfaas::sandbox
