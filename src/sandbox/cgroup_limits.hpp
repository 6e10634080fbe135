#pragma once
// Memory, pids and CPU limits per instance through cgroups, and a way to
// kill everything an instance started. cgroup v2 through the daemon's own
// (delegated) cgroup, the daemon itself moved into a leaf first; cgroup v1
// through a `tinyfaas-<node>` child of the daemon's cgroup in each of the
// memory, pids, cpu and freezer hierarchies. The child process joins its
// cgroup before exec (SpawnOptions::cgroupProcs).

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

#include "util/unique_fd.hpp"

namespace tinyfaas::sandbox {

struct CgroupLimits {
  int memoryMb = 256;  // no swap on top
  double cpus = 1.0;
  int pids = 256;  // as the docker backend
};

// One instance's cgroup (one directory per v1 hierarchy, or one in v2).
// Owned by the management thread.
class InstanceCgroup {
 public:
  InstanceCgroup(bool v2, std::vector<std::filesystem::path> dirs);
  ~InstanceCgroup();  // kills what is left and removes the directories
  InstanceCgroup(const InstanceCgroup&) = delete;
  InstanceCgroup& operator=(const InstanceCgroup&) = delete;

  // cgroup.procs of each directory, open for writing: the child writes
  // its pid there before exec.
  boost::system::result<std::vector<UniqueFd>, std::string> openProcs() const;
  // Writes the limits; a v1 hierarchy without a controller's file skips it.
  boost::system::result<void, std::string> setLimits(const CgroupLimits& limits) const;
  // SIGKILL to every process inside (v2: cgroup.kill; v1: freeze, kill
  // each, thaw, so nothing forks away meanwhile).
  void killAll() const;
  // Removes the directories; false while a process is still inside.
  bool remove();
  const std::vector<std::filesystem::path>& dirs() const { return dirs_; }

 private:
  bool v2_;
  std::vector<std::filesystem::path> dirs_;
};

// Where this daemon's instance cgroups go; found once at start.
class CgroupTree {
 public:
  // `root`: where cgroup file systems are mounted (/sys/fs/cgroup);
  // `selfCgroup`: the text of /proc/self/cgroup; `node`: a name unique to
  // this daemon's state dir (tinyfaas-<node> is made in each hierarchy).
  static CgroupTree detect(const std::filesystem::path& root, std::string_view selfCgroup, const std::string& node);

  // Creates the daemon's directories, killing and removing what a crashed
  // earlier run of the same node left; v2 moves process `self` into a leaf
  // and enables the controllers for its children. On failure limits are
  // not enforced and reason() says why.
  boost::system::result<void, std::string> prepare(pid_t self);
  // Removes the daemon's v1 directories once every instance is gone (at
  // shutdown); v2 keeps its leaf.
  void release() const;
  bool enforced() const { return reason_.empty(); }
  const std::string& reason() const { return reason_; }
  bool v2() const { return v2_; }
  // The parent directories instances are made in (one per v1 hierarchy).
  const std::vector<std::filesystem::path>& parents() const { return parents_; }

  boost::system::result<std::unique_ptr<InstanceCgroup>, std::string> create(const std::string& name,
                                                                             const CgroupLimits& limits) const;

 private:
  bool v2_ = false;
  std::filesystem::path v2Own_;  // v2: the daemon's own cgroup
  std::vector<std::filesystem::path> parents_;
  std::string reason_ = "no cgroups were set up";  // a tree not from detect()
};

// A cgroup name for `stateDir`, stable across restarts: tinyfaas-<hash>.
std::string cgroupNodeName(const std::filesystem::path& stateDir);

}  // namespace tinyfaas::sandbox
