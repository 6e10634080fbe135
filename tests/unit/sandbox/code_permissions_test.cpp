#include "sandbox/code_permissions.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_support.hpp"

namespace tinyfaas::sandbox {
namespace {

namespace fs = std::filesystem;

mode_t modeOf(const fs::path& p) {
  struct stat st {};
  lstat(p.c_str(), &st);
  return st.st_mode & 07777;
}

TEST(CodePermissions, CodeIsReadableByTheGroupOnlyAndAncestorsArePassable) {
  test::TempDir root;
  const fs::path version = root.path() / "functions" / "echo" / "v1";
  root.writeFile("functions/echo/v1/fn.py", "x");
  root.writeFile("functions/echo/v1/bin/run.sh", "#!/bin/sh\n", fs::perms(0777));
  fs::permissions(version / "bin", fs::perms(0777));
  fs::create_symlink("fn.py", version / "link");
  const gid_t group = getegid();
  ASSERT_TRUE(shareWithSandbox(root.path(), version, group));
  EXPECT_EQ(modeOf(version), 0750u);
  EXPECT_EQ(modeOf(version / "fn.py"), 0640u);
  EXPECT_EQ(modeOf(version / "bin"), 0750u);  // a zip's 0777 is gone
  EXPECT_EQ(modeOf(version / "bin" / "run.sh"), 0750u);
  for (const fs::path& dir : {root.path(), root.path() / "functions", root.path() / "functions" / "echo"})
    EXPECT_EQ(modeOf(dir) & 077, 010u) << dir << ": the group passes, nobody lists";
  EXPECT_FALSE(shareWithSandbox(root.path() / "functions", root.path(), group));
}

TEST(CodePermissions, ReachableByOthers) {
  EXPECT_TRUE(reachableByOthers("/usr/bin/env"));
  test::TempDir root;
  root.writeFile("secret/file", "x");
  fs::permissions(root.path() / "secret", fs::perms(0700));
  EXPECT_FALSE(reachableByOthers(root.path() / "secret" / "file"));
}

// A state dir below a folder of mode 0700 (mktemp -d): the daemon warns.
TEST(CodePermissions, PassableByOthersLooksAboveThePathOnly) {
  test::TempDir root;
  root.writeFile("open/state/x", "x");
  root.writeFile("closed/state/x", "x");
  fs::permissions(root.path(), fs::perms(0755));
  fs::permissions(root.path() / "open", fs::perms(0755));
  fs::permissions(root.path() / "open" / "state", fs::perms(0700));
  fs::permissions(root.path() / "closed", fs::perms(0700));
  EXPECT_TRUE(passableByOthers(root.path() / "open" / "state"));
  EXPECT_FALSE(passableByOthers(root.path() / "closed" / "state"));
}

}  // namespace
}  // namespace tinyfaas::sandbox
