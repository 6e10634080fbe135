#include "cli/function_packer.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "test_support.hpp"
#include "zip_reader.hpp"

namespace tinyfaas::cli {
namespace {

namespace fs = std::filesystem;
using tinyfaas::test::TempDir;

// A function folder with what a real one has: vendored modules and hidden
// files included.
void fillFunctionFolder(const TempDir& dir) {
  dir.writeFile("fn.sh", "#!/bin/sh\ncat\n", fs::perms(0755));
  dir.writeFile("lib/util.py", "X = 1\n");
  dir.writeFile("lib/deep/data.bin", std::string("\0\1\2\xff", 4), fs::perms(0600));
  dir.writeFile("lib/.keep", "");
  dir.writeFile("node_modules/left-pad/index.js", "module.exports = 1;\n");
  dir.writeFile("lib/node_modules/x.js", "");
  dir.writeFile("__pycache__/fn.cpython-311.pyc", "junk");
  dir.writeFile("lib/__pycache__/util.cpython-311.pyc", "junk");
  dir.writeFile(".git/HEAD", "ref: refs/heads/main\n");
  dir.writeFile(".env", "SECRET=1\n");
}

const std::vector<std::string> kEverything{".env",
                                           ".git/",
                                           ".git/HEAD",
                                           "__pycache__/",
                                           "__pycache__/fn.cpython-311.pyc",
                                           "fn.sh",
                                           "lib/",
                                           "lib/.keep",
                                           "lib/__pycache__/",
                                           "lib/__pycache__/util.cpython-311.pyc",
                                           "lib/deep/",
                                           "lib/deep/data.bin",
                                           "lib/node_modules/",
                                           "lib/node_modules/x.js",
                                           "lib/util.py",
                                           "node_modules/",
                                           "node_modules/left-pad/",
                                           "node_modules/left-pad/index.js"};

std::vector<std::string> namesIn(const std::string& zip) {
  std::vector<std::string> names;
  for (const auto& e : test::readZip(zip)) names.push_back(e.name);
  return names;
}

std::map<std::string, test::ZipEntry> byName(const std::vector<test::ZipEntry>& entries) {
  std::map<std::string, test::ZipEntry> map;
  for (const auto& e : entries) map[e.name] = e;
  return map;
}

// Runs a command and returns its stdout; fails the test on a non-zero exit.
std::string run(const std::string& command) {
  std::FILE* pipe = ::popen(command.c_str(), "r");
  EXPECT_NE(pipe, nullptr) << command;
  if (pipe == nullptr) return {};
  std::string out;
  char buffer[4096];
  size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, got);
  EXPECT_EQ(::pclose(pipe), 0) << command << "\n" << out;
  return out;
}

std::string writeZip(const TempDir& where, const std::string& zip) {
  const std::string file = (where.path() / "function.zip").string();
  std::ofstream(file, std::ios::binary) << zip;
  return file;
}

TEST(FunctionPacker, StoresContentsRelativeToTheFolderWithModes) {
  TempDir dir;
  fillFunctionFolder(dir);
  auto packed = packFunctionDirectory(dir.path());
  ASSERT_TRUE(packed) << packed.error();

  const auto entries = test::readZip(packed->zip);
  std::vector<std::string> names;
  for (const auto& e : entries) names.push_back(e.name);
  // Sorted, relative, no "./" prefix; with no .tinyfaasignore everything,
  // as scripts/upload.sh packs it (issue 14: a vendored module went missing).
  EXPECT_EQ(names, kEverything);
  EXPECT_TRUE(packed->leftOut.empty());
  const auto map = byName(entries);
  EXPECT_EQ(map.at("fn.sh").mode, 0755u);
  EXPECT_EQ(map.at("fn.sh").content, "#!/bin/sh\ncat\n");
  EXPECT_EQ(map.at("lib/util.py").mode, 0644u);
  EXPECT_EQ(map.at("lib/deep/data.bin").mode, 0600u);
  EXPECT_EQ(map.at("lib/deep/data.bin").content, std::string("\0\1\2\xff", 4));
  EXPECT_TRUE(map.at("lib/").directory);
}

TEST(FunctionPacker, InfoZipReadsTheArchive) {
  TempDir dir;
  fillFunctionFolder(dir);
  auto packed = packFunctionDirectory(dir.path());
  ASSERT_TRUE(packed) << packed.error();
  TempDir out;
  const std::string file = writeZip(out, packed->zip);

  std::string expected;
  for (const auto& name : kEverything) expected += name + "\n";
  EXPECT_EQ(run("unzip -Z1 '" + file + "'"), expected);
  // zipinfo's long format: mode first, name last.
  std::map<std::string, std::string> modes;
  std::istringstream lines(run("zipinfo '" + file + "'"));
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || (line[0] != '-' && line[0] != 'd')) continue;
    modes[line.substr(line.rfind(' ') + 1)] = line.substr(0, line.find(' '));
  }
  EXPECT_EQ(modes["fn.sh"], "-rwxr-xr-x");
  EXPECT_EQ(modes["lib/util.py"], "-rw-r--r--");
  EXPECT_EQ(modes["lib/deep/data.bin"], "-rw-------");
  EXPECT_EQ(modes["lib/"].substr(0, 1), "d");
  // CRCs and sizes check out.
  run("unzip -tqq '" + file + "'");
}

TEST(FunctionPacker, FollowsSymlinksAndSurvivesLoops) {
  TempDir dir;
  dir.writeFile("real.txt", "hello");
  fs::create_symlink("real.txt", dir.path() / "link.txt");
  fs::create_directories(dir.path() / "sub");
  fs::create_directory_symlink("..", dir.path() / "sub" / "up");
  auto packed = packFunctionDirectory(dir.path());
  ASSERT_TRUE(packed) << packed.error();
  const auto map = byName(test::readZip(packed->zip));
  ASSERT_TRUE(map.contains("link.txt"));
  EXPECT_FALSE(map.at("link.txt").directory);
  EXPECT_EQ(map.at("link.txt").content, "hello");
  // The loop is cut at the second visit of the root: "sub/up/" is a plain
  // (empty) directory entry.
  EXPECT_TRUE(map.contains("sub/up/"));
  EXPECT_FALSE(map.contains("sub/up/real.txt"));
}

TEST(FunctionPacker, ReportsWhatItCannotRead) {
  TempDir dir;
  fs::create_symlink("nowhere", dir.path() / "dangling");
  auto zip = packFunctionDirectory(dir.path());
  ASSERT_FALSE(zip);
  EXPECT_NE(zip.error().find("dangling"), std::string::npos) << zip.error();

  auto missing = packFunctionDirectory(dir.path() / "absent");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().find("absent"), std::string::npos) << missing.error();
}

TEST(FunctionPacker, LeavesOutWhatTinyfaasignoreExcludesAndSaysWhat) {
  TempDir dir;
  fillFunctionFolder(dir);
  dir.writeFile(".tinyfaasignore",
                "# secrets and rebuildable junk\n"
                ".env\n"
                ".git/\n"
                "__pycache__/\n"
                "/lib/deep\n"
                "*.js\n"
                "!node_modules/left-pad/index.js\n");
  auto packed = packFunctionDirectory(dir.path());
  ASSERT_TRUE(packed) << packed.error();
  EXPECT_EQ(namesIn(packed->zip),
            (std::vector<std::string>{"fn.sh", "lib/", "lib/.keep", "lib/node_modules/", "lib/util.py", "node_modules/",
                                      "node_modules/left-pad/", "node_modules/left-pad/index.js"}));
  // A folder is reported once, not file by file; the ignore file is not
  // packed and not reported.
  EXPECT_EQ(packed->leftOut, (std::vector<std::string>{".env", ".git/", "__pycache__/", "lib/__pycache__/", "lib/deep/",
                                                       "lib/node_modules/x.js"}));
  EXPECT_EQ(packed->files, 4u);
}

TEST(FunctionPacker, AnIgnoredFolderCannotBeReincluded) {
  TempDir dir;
  dir.writeFile("fn.py", "");
  dir.writeFile("build/keep.txt", "");
  dir.writeFile(".tinyfaasignore", "build/\n!build/keep.txt\n");
  auto packed = packFunctionDirectory(dir.path());
  ASSERT_TRUE(packed) << packed.error();
  EXPECT_EQ(namesIn(packed->zip), (std::vector<std::string>{"fn.py"}));
}

TEST(FunctionPacker, PacksAnEmptyFolderAsAnEmptyZip) {
  TempDir dir;
  auto packed = packFunctionDirectory(dir.path());
  ASSERT_TRUE(packed) << packed.error();
  EXPECT_EQ(packed->files, 0u);
  EXPECT_TRUE(test::readZip(packed->zip).empty());
}

}  // namespace
}  // namespace tinyfaas::cli
