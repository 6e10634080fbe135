// What an upload's manifest asks the install sandbox for, and which line of
// npm's or pip's output a failed install answers with.

#include "manager/dependency_installer.hpp"

#include <gtest/gtest.h>

#include "test_support.hpp"

namespace tinyfaas {
namespace {

boost::system::result<InstallPlan, std::string> plan(const std::string& requirements, bool allowScripts = false) {
  test::TempDir dir;
  dir.writeFile("requirements.txt", requirements);
  return planInstall(Runtime::python3, dir.path(), allowScripts);
}

TEST(InstallPlan, RegistryRequirementsNeedTheNetwork) {
  auto p = plan("# a comment\n\nsix==1.16.0\n");
  ASSERT_TRUE(p) << p.error();
  EXPECT_TRUE(p->needed);
  EXPECT_TRUE(p->network);
  auto empty = plan("# nothing\n");
  ASSERT_TRUE(empty);
  EXPECT_FALSE(empty->needed);
}

TEST(InstallPlan, OptionsPointingOutsideTheFolderAreRefusedByLine) {
  for (const char* line :
       {"-r /etc/shadow", "-r/etc/shadow", "--requirement=/etc/shadow", "--requirement /etc/shadow", "-c ../../x.txt",
        "-e /opt/src", "--find-links file:///srv", "pkg @ file:///etc/passwd", "/etc/passwd", "../outside"}) {
    auto p = plan(std::string("six\n") + line + "\n");
    ASSERT_FALSE(p) << line;
    EXPECT_EQ(p.error().rfind("requirements.txt line 2: ", 0), 0u) << p.error();
    EXPECT_NE(p.error().find("outside the function folder"), std::string::npos) << p.error();
  }
  for (const char* line :
       {"-i https://example.org/simple", "--index-url=https://x", "--extra-index-url https://x", "--trusted-host x"}) {
    auto p = plan(std::string(line) + "\n");
    ASSERT_FALSE(p) << line;
    EXPECT_NE(p.error().find("not allowed"), std::string::npos) << p.error();
  }
  auto inside = plan("-r more.txt\n");
  ASSERT_TRUE(inside) << inside.error();
  EXPECT_TRUE(inside->network);
}

TEST(InstallPlan, SourceFoldersNeedInstallScripts) {
  auto refused = plan("./localpkg\n");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find("--install-scripts"), std::string::npos) << refused.error();
  auto allowed = plan("./localpkg\n", true);
  ASSERT_TRUE(allowed) << allowed.error();
  EXPECT_FALSE(allowed->network);
  auto wheel = plan("./wheels/pkg-1.0-py3-none-any.whl\n");
  ASSERT_TRUE(wheel) << wheel.error();
  EXPECT_FALSE(wheel->network);
}

TEST(InstallPlan, NpmFileDependenciesNeedNoNetwork) {
  test::TempDir dir;
  dir.writeFile("package.json", R"({"dependencies": {"local": "file:./local"}})");
  auto local = planInstall(Runtime::nodejs, dir.path(), false);
  ASSERT_TRUE(local) << local.error();
  EXPECT_TRUE(local->needed);
  EXPECT_FALSE(local->network);
  dir.writeFile("package.json", R"({"dependencies": {"local": "file:./local", "is-number": "7.0.0"}})");
  EXPECT_TRUE(planInstall(Runtime::nodejs, dir.path(), false)->network);
  dir.writeFile("package.json", R"({"dependencies": {"x": "file:../../etc"}})");
  EXPECT_FALSE(planInstall(Runtime::nodejs, dir.path(), false));
}

TEST(InstallErrorLine, NpmsAndPipsOwnLines) {
  EXPECT_EQ(installErrorLine({"npm error code E404",
                              "npm error 404 Not Found - GET https://registry.npmjs.org/leftpadx - Not found",
                              "npm error 404", "npm error A complete log of this run can be found in: /tmp/x.log"}),
            "npm error 404 Not Found - GET https://registry.npmjs.org/leftpadx - Not found");
  EXPECT_EQ(installErrorLine({"ERROR: Could not find a version that satisfies the requirement x (from versions: none)",
                              "ERROR: No matching distribution found for x"}),
            "ERROR: No matching distribution found for x");
  // A missing file: dependency: npm's reason, never its debug log's path.
  EXPECT_EQ(installErrorLine(
                {"npm warn tarball tarball data for x@file:vendor/x.tgz (null) seems to be corrupted.",
                 "npm error code ENOENT", "npm error syscall open", "npm error path /tmp/f/vendor/x.tgz",
                 "npm error errno -2", "npm error enoent ENOENT: no such file or directory, open '/tmp/f/vendor/x.tgz'",
                 "npm error enoent This is related to npm not being able to find a file.", "npm error enoent",
                 "npm error A complete log of this run can be found in: /root/.npm/_logs/x.log"}),
            "npm error enoent ENOENT: no such file or directory, open '/tmp/f/vendor/x.tgz'");
  EXPECT_EQ(installErrorLine({"npm error code ENOENT",
                              "npm error A complete log of this run can be found in: /root/.npm/_logs/x.log"}),
            "npm error code ENOENT");
  EXPECT_EQ(installErrorLine({"something", "last words", ""}), "last words");
  EXPECT_EQ(installErrorLine({}), "no output");
}

}  // namespace
}  // namespace tinyfaas
