// cgroup path logic and limit files against a fake cgroup tree in a temp
// dir (the kernel's files are plain files there).

#include "sandbox/cgroup_limits.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "test_support.hpp"

namespace tinyfaas::sandbox {
namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& file) {
  std::ifstream in(file);
  std::string text;
  std::getline(in, text);
  return text;
}

void touch(const fs::path& file, const std::string& text = "") {
  fs::create_directories(file.parent_path());
  std::ofstream(file) << text;
}

// Polls `done` for up to 5 s.
template <class Done>
bool waitFor(Done done) {
  for (int i = 0; i < 500; ++i) {
    if (done()) return true;
    usleep(10000);
  }
  return done();
}

const char* kV1Self = "9:name=systemd:/\n8:pids:/\n6:freezer:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n";

TEST(CgroupTree, V1PutsTheNodeUnderTheDaemonsCgroupInEachHierarchy) {
  test::TempDir root;
  for (const char* c : {"memory", "pids", "cpu", "freezer"}) fs::create_directories(root.path() / c);
  fs::create_directories(root.path() / "unified");  // hybrid: an empty cgroup2 beside
  const auto tree = CgroupTree::detect(root.path(), kV1Self, "tinyfaas-n1");
  EXPECT_FALSE(tree.v2());
  EXPECT_TRUE(tree.enforced()) << tree.reason();
  EXPECT_EQ(tree.parents(),
            (std::vector<fs::path>{root.path() / "memory/process_api/abc/tinyfaas-n1", root.path() / "pids/tinyfaas-n1",
                                   root.path() / "cpu/tinyfaas-n1", root.path() / "freezer/tinyfaas-n1"}));
}

TEST(CgroupTree, V1WithoutAMemoryHierarchySaysSo) {
  test::TempDir root;
  for (const char* c : {"pids", "cpu"}) fs::create_directories(root.path() / c);
  const auto tree = CgroupTree::detect(root.path(), "8:pids:/\n1:cpu:/\n", "tinyfaas-n1");
  EXPECT_FALSE(tree.enforced());
  EXPECT_NE(tree.reason().find("memory"), std::string::npos) << tree.reason();
}

TEST(CgroupTree, V1InstanceHasADirectoryInEachHierarchy) {
  test::TempDir root;
  for (const char* c : {"memory", "pids", "cpu", "freezer"}) fs::create_directories(root.path() / c);
  auto tree = CgroupTree::detect(root.path(), kV1Self, "tinyfaas-n1");
  ASSERT_TRUE(tree.prepare(getpid())) << tree.reason();
  for (const auto& parent : tree.parents()) EXPECT_TRUE(fs::is_directory(parent)) << parent;
  auto made = tree.create("echo.2", CgroupLimits{64, 0.5, 256});
  ASSERT_TRUE(made) << made.error();
  std::vector<fs::path> want;
  for (const auto& parent : tree.parents()) want.push_back(parent / "echo.2");
  EXPECT_EQ((*made)->dirs(), want);
  made->reset();  // removes them
  for (const auto& dir : want) EXPECT_FALSE(fs::exists(dir)) << dir;
}

TEST(CgroupTree, V2UsesTheDaemonsOwnCgroupAndNeedsDelegation) {
  test::TempDir root;
  touch(root.path() / "cgroup.controllers", "cpuset cpu io memory pids");
  touch(root.path() / "system.slice/tinyfaas.service/cgroup.controllers", "cpu memory pids");
  const auto tree = CgroupTree::detect(root.path(), "0::/system.slice/tinyfaas.service\n", "tinyfaas-n1");
  EXPECT_TRUE(tree.v2());
  EXPECT_TRUE(tree.enforced()) << tree.reason();
  EXPECT_EQ(tree.parents(), (std::vector<fs::path>{root.path() / "system.slice/tinyfaas.service"}));

  touch(root.path() / "user.slice/cgroup.controllers", "cpu");
  const auto undelegated = CgroupTree::detect(root.path(), "0::/user.slice\n", "tinyfaas-n1");
  EXPECT_FALSE(undelegated.enforced());
  EXPECT_NE(undelegated.reason().find("Delegate=yes"), std::string::npos) << undelegated.reason();
}

TEST(CgroupTree, NodeNamesAreStablePerStateDir) {
  EXPECT_EQ(cgroupNodeName("/var/lib/tinyfaas"), cgroupNodeName("/var/lib/tinyfaas/"));
  EXPECT_NE(cgroupNodeName("/var/lib/tinyfaas"), cgroupNodeName("/tmp/t1"));
  EXPECT_EQ(cgroupNodeName("/x").rfind("tinyfaas-", 0), 0u);
}

// The real thing where this machine has v1 memory and pids hierarchies and
// we are root: an instance cgroup limits, and killAll() empties it.
TEST(CgroupTree, RealCgroupKillsEverythingInside) {
  std::ifstream self("/proc/self/cgroup");
  const std::string text((std::istreambuf_iterator<char>(self)), std::istreambuf_iterator<char>());
  auto tree = CgroupTree::detect("/sys/fs/cgroup", text, "tinyfaas-unit-" + std::to_string(getpid()));
  if (geteuid() != 0 || !tree.prepare(getpid())) GTEST_SKIP() << "no usable cgroups here: " << tree.reason();
  auto made = tree.create("kill.1", CgroupLimits{32, 1.0, 16});
  ASSERT_TRUE(made) << made.error();
  auto& cgroup = **made;
  for (const auto& dir : cgroup.dirs()) {
    if (fs::exists(dir / "pids.max")) {
      EXPECT_EQ(read(dir / "pids.max"), "16");
    }
    if (fs::exists(dir / "memory.limit_in_bytes")) {
      EXPECT_EQ(read(dir / "memory.limit_in_bytes"), "33554432");
    }
  }
  auto procs = cgroup.openProcs();
  ASSERT_TRUE(procs) << procs.error();
  const pid_t child = fork();
  if (child == 0) {
    for (const auto& fd : *procs) (void)!write(fd.get(), "0\n", 2);
    if (fork() == 0) setsid();  // a grandchild in its own session
    for (;;) pause();
  }
  ASSERT_TRUE(waitFor([&] {
    std::ifstream in(cgroup.dirs().front() / "cgroup.procs");
    int n = 0;
    for (pid_t p; in >> p;) ++n;
    return n == 2;
  }));
  cgroup.killAll();
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_TRUE(waitFor([&] { return cgroup.remove(); })) << "processes left in the cgroup";
  for (const auto& parent : tree.parents()) fs::remove(parent);
}

}  // namespace
}  // namespace tinyfaas::sandbox
