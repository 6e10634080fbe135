#include "sandbox/code_links.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_support.hpp"

namespace tinyfaas::sandbox {
namespace {

namespace fs = std::filesystem;

struct stat statOf(const fs::path& p) {
  struct stat st {};
  ::lstat(p.c_str(), &st);
  return st;
}

TEST(CodeLinks, LinksEveryFileAndKeepsFolderModesAndLinks) {
  test::TempDir root;
  root.writeFile("code/index.js", "module.exports = 1;");
  root.writeFile("code/node_modules/dep/index.js", "x");
  fs::permissions(root.path() / "code" / "node_modules", fs::perms(0750));
  fs::create_symlink("index.js", root.path() / "code" / "main.js");
  fs::create_directory(root.path() / "slot");
  auto linked = linkTree(root.path() / "code", root.path() / "slot" / "code");
  ASSERT_TRUE(linked) << linked.error();
  const fs::path to = root.path() / "slot" / "code";
  // The same inode: no copy, and the deployed file's read-only mode.
  EXPECT_EQ(statOf(to / "index.js").st_ino, statOf(root.path() / "code" / "index.js").st_ino);
  EXPECT_EQ(statOf(to / "node_modules" / "dep" / "index.js").st_ino,
            statOf(root.path() / "code" / "node_modules" / "dep" / "index.js").st_ino);
  EXPECT_EQ(statOf(to / "node_modules").st_mode & 07777, 0750u);
  EXPECT_TRUE(fs::is_symlink(to / "main.js"));
  EXPECT_EQ(fs::read_symlink(to / "main.js"), "index.js");
  // Removing the links leaves the deployed code alone.
  fs::remove_all(to);
  EXPECT_TRUE(fs::exists(root.path() / "code" / "node_modules" / "dep" / "index.js"));
}

TEST(CodeLinks, RefusesAnExistingTargetAndSpecialFiles) {
  test::TempDir root;
  root.writeFile("code/fn.py", "x");
  fs::create_directories(root.path() / "taken");
  EXPECT_FALSE(linkTree(root.path() / "code", root.path() / "taken"));
  ASSERT_EQ(::mkfifo((root.path() / "code" / "pipe").c_str(), 0600), 0);
  auto linked = linkTree(root.path() / "code", root.path() / "other");
  ASSERT_FALSE(linked);
  EXPECT_NE(linked.error().find("neither a file"), std::string::npos) << linked.error();
}

}  // namespace
}  // namespace tinyfaas::sandbox
