#include "manager/archive.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <map>

#include "test_support.hpp"
#include "zip_builder.hpp"

namespace tinyfaas {
namespace {

namespace fs = std::filesystem;
using test::ZipBuilder;

// A destination and, beside it, a directory an escaping entry would land in.
class ExtractZipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(destination);
    fs::create_directories(outside);
  }

  boost::system::result<void, std::string> extract(const std::string& zip, ExtractLimits limits = {}) {
    return extractZip(zip, destination, limits);
  }

  // Nothing but the two directories at the top, and nothing in `outside`.
  void expectNothingOutside() {
    EXPECT_TRUE(fs::is_empty(outside)) << "something was written to " << outside;
    std::vector<std::string> top;
    for (const auto& entry : fs::directory_iterator(dir.path())) top.push_back(entry.path().filename().string());
    std::sort(top.begin(), top.end());
    EXPECT_EQ(top, (std::vector<std::string>{"dest", "outside"}));
  }

  // Every symlink below the destination, resolved, stays inside it.
  void expectSymlinksInside() {
    const fs::path root = fs::canonical(destination);
    for (const auto& entry : fs::recursive_directory_iterator(destination)) {
      if (!entry.is_symlink()) continue;
      const fs::path resolved = fs::weakly_canonical(entry.path());
      const auto relative = resolved.lexically_relative(root).generic_string();
      EXPECT_FALSE(relative == ".." || relative.rfind("../", 0) == 0)
          << entry.path() << " resolves to " << resolved << ", outside " << root;
    }
  }

  static void expectError(const boost::system::result<void, std::string>& result, const std::string& needle) {
    ASSERT_FALSE(result) << "extraction succeeded; expected an error mentioning \"" << needle << "\"";
    EXPECT_NE(result.error().find(needle), std::string::npos) << result.error();
    EXPECT_EQ(result.error().find('\n'), std::string::npos) << "not one line: " << result.error();
  }

  test::TempDir dir;
  fs::path destination = dir / "dest";
  fs::path outside = dir / "outside";
};

TEST_F(ExtractZipTest, ExtractsFilesAndDirectoriesWithTheirContent) {
  auto zip = ZipBuilder()
                 .file("fn.py", "def fn(i, h):\n    return i\n")
                 .directory("lib/")
                 .file("lib/sub/data.txt", "data")
                 .file("empty.txt", "")
                 .build();
  auto result = extract(zip);
  ASSERT_TRUE(result) << result.error();
  EXPECT_EQ(test::readFile(destination / "fn.py"), "def fn(i, h):\n    return i\n");
  EXPECT_EQ(test::readFile(destination / "lib/sub/data.txt"), "data");
  EXPECT_TRUE(fs::is_regular_file(destination / "empty.txt"));
  EXPECT_EQ(fs::file_size(destination / "empty.txt"), 0u);
  EXPECT_TRUE(fs::is_directory(destination / "lib/sub"));
  expectNothingOutside();
}

// The code is the daemon's: the sandbox reads it through its group, writes
// nothing, and other users see nothing (issue 12, finding 11).
TEST_F(ExtractZipTest, MasksModesToOwnerWriteGroupReadAndNothingForOthers) {
  auto zip = ZipBuilder()
                 .file("fn.sh", "#!/bin/sh\ncat\n", 0755)
                 .file("private.txt", "secret", 0600)
                 .file("setuid", "x", 06777)
                 .file("group-exec", "x", 0610)
                 .directory("open/", 0777)
                 .directory("sticky/", 01777)
                 .directory("locked/", 0700)
                 .file("implicit/deeper/data.txt", "d", 0666)
                 .file("later/f", "f")
                 .directory("later/", 0777)
                 .build();
  ASSERT_TRUE(extract(zip));
  auto mode = [&](const char* name) {
    struct stat st {};
    EXPECT_EQ(::lstat((destination / name).c_str(), &st), 0) << name;
    return st.st_mode & 07777;
  };
  const std::map<std::string, mode_t> expected{{"fn.sh", 0750},
                                               {"private.txt", 0640},
                                               // No setuid, setgid or sticky bit, nothing writable but by the owner.
                                               {"setuid", 0750},
                                               {"group-exec", 0750},
                                               {"open", 0750},
                                               {"sticky", 0750},
                                               {"locked", 0750},
                                               // Folders the zip does not list, and one listed after its contents.
                                               {"implicit", 0750},
                                               {"implicit/deeper", 0750},
                                               {"implicit/deeper/data.txt", 0640},
                                               {"later", 0750},
                                               {"later/f", 0640},
                                               {".", 0750}};
  for (const auto& [name, want] : expected) EXPECT_EQ(mode(name.c_str()), want) << name;
}

// The unit runs the daemon with UMask=0077: the function must still read
// what it uploaded, folders the zip does not list included.
TEST_F(ExtractZipTest, ModesDoNotDependOnTheUmask) {
  auto zip = ZipBuilder().file("a/b/fn.py", "x", 0644).file("run.sh", "x", 0700).build();
  const mode_t previous = ::umask(077);
  auto result = extract(zip);
  ::umask(previous);
  ASSERT_TRUE(result) << result.error();
  EXPECT_EQ(fs::status(destination / "a").permissions() & fs::perms::mask, fs::perms(0750));
  EXPECT_EQ(fs::status(destination / "a/b").permissions() & fs::perms::mask, fs::perms(0750));
  EXPECT_EQ(fs::status(destination / "a/b/fn.py").permissions() & fs::perms::mask, fs::perms(0640));
  EXPECT_EQ(fs::status(destination / "run.sh").permissions() & fs::perms::mask, fs::perms(0750));
}

TEST_F(ExtractZipTest, AcceptsDotSlashPrefixes) {
  auto zip = ZipBuilder().directory("./").file("./fn.py", "x").file("././sub/a", "y").build();
  ASSERT_TRUE(extract(zip));
  EXPECT_EQ(test::readFile(destination / "fn.py"), "x");
  EXPECT_EQ(test::readFile(destination / "sub/a"), "y");
}

TEST_F(ExtractZipTest, ExtractsAnInfoZipArchiveWithASymlink) {
  if (std::system("command -v zip >/dev/null 2>&1") != 0) GTEST_SKIP() << "zip is not installed";
  test::TempDir scratch;
  scratch.writeFile("fn.sh", "#!/bin/sh\necho hi\n", fs::perms(0755));
  scratch.writeFile("lib/helper.txt", "help");
  fs::create_symlink("lib/helper.txt", scratch / "helper-link");
  const fs::path archive = scratch / "function.zip";
  const std::string command = "cd '" + scratch.path().string() + "' && zip -qry function.zip fn.sh lib helper-link";
  ASSERT_EQ(std::system(command.c_str()), 0);
  auto result = extract(test::readFile(archive));
  ASSERT_TRUE(result) << result.error();
  EXPECT_EQ(test::readFile(destination / "fn.sh"), "#!/bin/sh\necho hi\n");
  EXPECT_EQ(fs::status(destination / "fn.sh").permissions() & fs::perms::owner_exec, fs::perms::owner_exec);
  EXPECT_EQ(test::readFile(destination / "lib/helper.txt"), "help");
  ASSERT_TRUE(fs::is_symlink(destination / "helper-link"));
  EXPECT_EQ(fs::read_symlink(destination / "helper-link"), "lib/helper.txt");
}

TEST_F(ExtractZipTest, RejectsDotDotEntries) {
  for (const char* name : {"../outside/x", "a/../../outside/x", "..", "sub/.."}) {
    auto result = extract(ZipBuilder().file(name, "evil").build());
    expectError(result, "points outside the function directory");
  }
  expectNothingOutside();
}

// Found by fuzz/archive_fuzzer.cpp: a file named "." replaced the destination.
TEST_F(ExtractZipTest, RejectsAnEntryThatWouldReplaceTheDestination) {
  expectError(extract(ZipBuilder().file(".", "x").build()), "would replace the function directory");
  expectError(extract(ZipBuilder().symlink("./.", "a/..").build()), "would replace the function directory");
  EXPECT_TRUE(fs::is_directory(fs::symlink_status(destination)));
  expectNothingOutside();
  EXPECT_TRUE(extract(ZipBuilder().directory("./").directory(".").file("fn.py", "x").build()));
  EXPECT_TRUE(fs::is_regular_file(destination / "fn.py"));
}

TEST_F(ExtractZipTest, RejectsAbsolutePaths) {
  const std::string target = (outside / "x").string();
  auto result = extract(ZipBuilder().file(target, "evil").build());
  expectError(result, "has an absolute path");
  EXPECT_FALSE(fs::exists(target));
  expectError(extract(ZipBuilder().file("/etc/tinyfaas-test", "evil").build()), "has an absolute path");
  EXPECT_FALSE(fs::exists("/etc/tinyfaas-test"));
  expectNothingOutside();
}

TEST_F(ExtractZipTest, RejectsSymlinksPointingOutside) {
  for (const char* target : {"../../etc/passwd", "..", "../outside", "sub/../../x", "/etc", "/"}) {
    auto result = extract(ZipBuilder().symlink("link", target).build());
    expectError(result, "symlink pointing outside the function directory");
    EXPECT_FALSE(fs::is_symlink(destination / "link")) << target;
  }
  expectNothingOutside();
}

TEST_F(ExtractZipTest, RejectsEmptySymlinkTargets) {
  expectError(extract(ZipBuilder().symlink("link", "").build()), "symlink");
}

TEST_F(ExtractZipTest, AllowsSymlinksThatStayInside) {
  auto zip = ZipBuilder()
                 .file("fn.py", "x")
                 .symlink("lib/link", "../fn.py")
                 .symlink("self", ".")
                 .symlink("deep/a/b", "../../fn.py")
                 .build();
  auto result = extract(zip);
  ASSERT_TRUE(result) << result.error();
  ASSERT_TRUE(fs::is_symlink(destination / "lib/link"));
  EXPECT_EQ(fs::read_symlink(destination / "lib/link"), "../fn.py");
  EXPECT_EQ(test::readFile(destination / "lib/link"), "x");
  EXPECT_EQ(test::readFile(destination / "deep/a/b"), "x");
  expectSymlinksInside();
}

TEST_F(ExtractZipTest, RefusesToWriteThroughASymlink) {
  auto zip = ZipBuilder().directory("real/").symlink("link", "real").file("link/file", "x").build();
  auto result = extract(zip);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().find("link/file"), std::string::npos) << result.error();
  EXPECT_FALSE(fs::exists(destination / "real/file"));
}

TEST_F(ExtractZipTest, RejectsChainedSymlinksThatEscape) {
  // Each link looks harmless alone: "a/.." is the top, "a/up/.." lexically "a".
  auto zip = ZipBuilder().symlink("a/up", "..").symlink("esc", "a/up/..").build();
  expectError(extract(zip), "esc");
}

TEST_F(ExtractZipTest, RejectsHardLinks) {
  std::string zip;
  try {
    zip = ZipBuilder().file("fn.py", "x").hardlink("copy", "fn.py").build();
  } catch (const std::exception& e) {
    GTEST_SKIP() << "libarchive cannot write a hard link into a zip: " << e.what();
  }
  auto result = extract(zip);
  // libarchive's zip writer may store it as a plain file; then it must not
  // have become a link to anything.
  if (result) {
    EXPECT_FALSE(fs::exists(destination / "copy") && fs::equivalent(destination / "copy", destination / "fn.py"));
  } else {
    expectError(result, "hard link");
  }
  expectNothingOutside();
}

TEST_F(ExtractZipTest, RejectsDeviceNodesAndFifos) {
  const auto base = ZipBuilder().stored().file("fn.py", "x").file("node", "").build();
  for (mode_t type : {S_IFCHR, S_IFBLK, S_IFSOCK}) {
    auto result = extract(test::withFileType(base, 1, type));
    expectError(result, "is not a regular file, directory or symlink");
    EXPECT_FALSE(fs::exists(destination / "node")) << type;
  }
  expectNothingOutside();
}

TEST_F(ExtractZipTest, NeverCreatesAFifo) {
  // libarchive's zip reader reports a FIFO entry as a regular file; either
  // way nothing but a plain file may appear.
  auto result =
      extract(test::withFileType(ZipBuilder().stored().file("fn.py", "x").file("pipe", "").build(), 1, S_IFIFO));
  if (result) {
    EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(destination / "pipe")));
  } else {
    expectError(result, "is not a regular file, directory or symlink");
  }
  EXPECT_FALSE(fs::is_fifo(fs::symlink_status(destination / "pipe")));
}

TEST_F(ExtractZipTest, RejectsEmptyInput) { expectError(extract(""), "not a valid zip archive"); }

TEST_F(ExtractZipTest, RejectsBytesThatAreNotAZip) {
  expectError(extract("this is not a zip file at all, just some text\n"), "zip archive");
  std::string noise(4096, '\0');
  for (std::size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<char>((i * 131 + 7) % 251);
  expectError(extract(noise), "zip archive");
}

TEST_F(ExtractZipTest, RejectsCorruptCompressedData) {
  std::string content;
  for (int i = 0; i < 2000; ++i) content += "line " + std::to_string(i * 7919 % 1000) + "\n";
  auto zip = ZipBuilder().file("fn.py", content).build();
  // Flip bytes in the middle of the deflated data (after the local header).
  for (std::size_t i = 200; i < 260 && i < zip.size(); ++i) zip[i] = static_cast<char>(~zip[i]);
  auto result = extract(zip);
  expectError(result, "corrupt zip archive");
  expectNothingOutside();
}

TEST_F(ExtractZipTest, RejectsAChecksumMismatch) {
  // Stored, so the flipped byte still decompresses: only the CRC can tell.
  const std::string content = "def fn(input, headers):\n    return input\n";
  auto zip = ZipBuilder().stored().file("fn.py", content).build();
  const auto at = zip.find("return input");
  ASSERT_NE(at, std::string::npos);
  zip[at] = 'R';
  expectError(extract(zip), "corrupt zip archive at fn.py");
}

TEST_F(ExtractZipTest, RejectsATruncatedZip) {
  std::string content(20000, 'z');
  for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>('a' + (i * 31) % 26);
  auto zip = ZipBuilder().file("a.txt", content).file("b.txt", content).build();
  // Cut inside the file data: the archive cannot be read.
  for (std::size_t keep : {zip.size() / 2, std::size_t{30}}) {
    auto result = extract(zip.substr(0, keep));
    EXPECT_FALSE(result) << "kept " << keep << " of " << zip.size() << " bytes";
  }
  // Cut inside the end record only: libarchive falls back to the local
  // headers, which is fine as long as what comes out is whole.
  if (extract(zip.substr(0, zip.size() - 10))) {
    EXPECT_EQ(test::readFile(destination / "a.txt"), content);
    EXPECT_EQ(test::readFile(destination / "b.txt"), content);
  }
  expectNothingOutside();
}

TEST_F(ExtractZipTest, StopsAZipBombAtTheSizeLimit) {
  // 4 MiB of zeros deflate to a few KiB.
  auto zip = ZipBuilder().file("bomb", std::string(4 << 20, '\0')).build();
  ASSERT_LT(zip.size(), 64u << 10);
  ExtractLimits limits;
  limits.maxTotalBytes = 1 << 20;
  auto result = extract(zip, limits);
  expectError(result, "zip archive unpacks to more than");
  // libarchive sizes the abandoned file to its declared length, but sparse:
  // what counts is the disk it takes.
  struct stat st {};
  if (::stat((destination / "bomb").c_str(), &st) == 0) {
    EXPECT_LE(static_cast<std::uintmax_t>(st.st_blocks) * 512, limits.maxTotalBytes + (64u << 10));
  }
  expectNothingOutside();
}

TEST_F(ExtractZipTest, CountsTheSizeLimitOverAllEntries) {
  auto zip = ZipBuilder().file("a", std::string(600, 'a')).file("b", std::string(600, 'b')).build();
  ExtractLimits limits;
  limits.maxTotalBytes = 1000;
  expectError(extract(zip, limits), "unpacks to more than");
  limits.maxTotalBytes = 1200;
  EXPECT_TRUE(extract(zip, limits));
}

TEST_F(ExtractZipTest, SizeLimitMessageNamesTheLimit) {
  ExtractLimits limits;
  limits.maxTotalBytes = 1000;
  auto result = extract(ZipBuilder().file("a", std::string(2000, 'a')).build(), limits);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().find("more than 0 MiB"), std::string::npos) << result.error();
}

TEST_F(ExtractZipTest, RejectsTooManyEntries) {
  ZipBuilder builder;
  for (int i = 0; i < 4; ++i) builder.file("f" + std::to_string(i), "x");
  ExtractLimits limits;
  limits.maxEntries = 3;
  expectError(extract(builder.build(), limits), "more than 3 entries");
  limits.maxEntries = 4;
  EXPECT_TRUE(extract(builder.build(), limits));
}

}  // namespace
}  // namespace tinyfaas
