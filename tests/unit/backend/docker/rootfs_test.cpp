// Runtime image pieces that need no engine: ELF parsing, library lookup,
// root file systems assembled from host files, their digest and tar.

#include "backend/docker/rootfs.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "backend/docker/elf_reader.hpp"
#include "backend/docker/runtime_image.hpp"
#include "test_support.hpp"

namespace tinyfaas::test {
namespace {

namespace fs = std::filesystem;
using namespace docker;

fs::path self() { return fs::read_symlink("/proc/self/exe"); }

// Follows `path` through the image's own symlinks, as the kernel will inside
// the container; nullptr when it leads nowhere.
const RootfsEntry* resolveInImage(const RootfsBuilder& rootfs, std::string path, int depth = 0) {
  if (depth > 40) return nullptr;
  fs::path current = "/";
  const fs::path p = fs::path(path).lexically_normal();
  std::vector<fs::path> parts(++p.begin(), p.end());
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const fs::path next = current / parts[i];
    auto it = rootfs.entries().find(next.string());
    if (it == rootfs.entries().end()) return nullptr;
    if (it->second.type == RootfsEntry::Type::symlink) {
      fs::path target = it->second.linkTarget;
      fs::path rest = target.is_absolute() ? target : current / target;
      for (std::size_t j = i + 1; j < parts.size(); ++j) rest /= parts[j];
      return resolveInImage(rootfs, rest.lexically_normal().string(), depth + 1);
    }
    if (i + 1 == parts.size()) return &it->second;
    current = next;
  }
  return nullptr;
}

TEST(ElfReader, ReadsThisTestProgram) {
  auto info = readElf(self());
  ASSERT_TRUE(info) << info.error();
  EXPECT_FALSE(info->interpreter.empty());
  EXPECT_NE(std::find(info->needed.begin(), info->needed.end(), "libc.so.6"), info->needed.end());
}

TEST(ElfReader, TruncatedOrForeignBytesGiveErrors) {
  const std::string bytes = readFile(self());
  // Every cut of the headers: an error or a partial answer, never a crash.
  for (std::size_t size = 0; size < 8192; size += 7) (void)parseElf(std::string_view(bytes).substr(0, size));
  std::string corrupted = bytes.substr(0, 65536);
  for (std::size_t i = 16; i < 256; ++i) corrupted[i] = static_cast<char>(0xff);
  (void)parseElf(corrupted);
  EXPECT_FALSE(parseElf("#!/bin/sh\necho hi\n"));
  EXPECT_FALSE(parseElf(""));
  auto tiny =
      parseElf(std::string("\x7f"
                           "ELF",
                           4));
  ASSERT_FALSE(tiny);
  EXPECT_EQ(tiny.error(), "truncated ELF header");
}

TEST(LibraryResolver, FindsLibcLikeTheLoader) {
  auto info = readElf(self());
  ASSERT_TRUE(info);
  auto found = LibraryResolver::fromHost().find("libc.so.6", *info, self());
  ASSERT_TRUE(found);
  EXPECT_TRUE(fs::exists(*found));
}

TEST(LibraryResolver, ExpandsOriginAndChecksTheMachine) {
  TempDir dir;
  auto info = readElf(self());
  ASSERT_TRUE(info);
  auto libc = LibraryResolver::fromHost().find("libc.so.6", *info, self());
  ASSERT_TRUE(libc);
  fs::create_directories(dir / "app" / "lib");
  fs::copy_file(*libc, dir / "app" / "lib" / "libbundled.so.1");
  dir.writeFile("app/bin/prog", "not run");
  ElfInfo loader = *info;
  loader.runpath = {"$ORIGIN/../lib"};
  LibraryResolver resolver({});
  auto found = resolver.find("libbundled.so.1", loader, dir / "app" / "bin" / "prog");
  ASSERT_TRUE(found);
  EXPECT_EQ(fs::canonical(*found), fs::canonical(dir / "app" / "lib" / "libbundled.so.1"));
  ElfInfo otherMachine = loader;
  otherMachine.machine = static_cast<std::uint16_t>(loader.machine + 1);
  EXPECT_FALSE(resolver.find("libbundled.so.1", otherMachine, dir / "app" / "bin" / "prog"));
}

TEST(RootfsBuilder, HostProgramComesWithItsSymlinksLoaderAndLibraries) {
  RootfsBuilder rootfs(LibraryResolver::fromHost());
  ASSERT_TRUE(rootfs.addHostPath("/bin/sh"));
  const RootfsEntry* shell = resolveInImage(rootfs, "/bin/sh");
  ASSERT_NE(shell, nullptr) << "/bin/sh does not resolve inside the image";
  EXPECT_EQ(shell->type, RootfsEntry::Type::file);
  auto info = readElf(shell->source);
  ASSERT_TRUE(info);
  ASSERT_NE(resolveInImage(rootfs, info->interpreter), nullptr) << info->interpreter;
  auto libc = LibraryResolver::fromHost().find("libc.so.6", *info, shell->source);
  ASSERT_TRUE(libc);
  EXPECT_NE(resolveInImage(rootfs, libc->string()), nullptr) << *libc;
}

TEST(RootfsBuilder, RecreatesSymlinkChains) {
  TempDir dir;
  dir.writeFile("real/file.txt", "content");
  fs::create_directory_symlink("real", dir / "alias");
  fs::create_symlink(dir / "alias" / "file.txt", dir / "absolute-link");
  RootfsBuilder rootfs(LibraryResolver({}));
  ASSERT_TRUE(rootfs.addHostPath(dir / "absolute-link"));
  const auto& entries = rootfs.entries();
  ASSERT_TRUE(entries.count((dir / "absolute-link").string()));
  EXPECT_EQ(entries.at((dir / "absolute-link").string()).type, RootfsEntry::Type::symlink);
  EXPECT_EQ(entries.at((dir / "alias").string()).linkTarget, "real");
  const RootfsEntry* file = resolveInImage(rootfs, (dir / "absolute-link").string());
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(file->source, fs::canonical(dir / "real" / "file.txt"));
  EXPECT_FALSE(rootfs.addHostPath(dir / "missing"));
}

TEST(RootfsBuilder, TreeHonoursTheFilter) {
  TempDir dir;
  dir.writeFile("lib/keep.py", "1");
  dir.writeFile("lib/site-packages/big.py", "2");
  dir.writeFile("lib/sub/also.py", "3");
  RootfsBuilder rootfs(LibraryResolver({}));
  ASSERT_TRUE(rootfs.addHostTree(
      dir / "lib", [](const fs::path& relative) { return relative.begin()->string() != "site-packages"; }));
  const std::string root = fs::canonical(dir / "lib").string();
  EXPECT_TRUE(rootfs.entries().count(root + "/keep.py"));
  EXPECT_TRUE(rootfs.entries().count(root + "/sub/also.py"));
  EXPECT_FALSE(rootfs.entries().count(root + "/site-packages"));
  EXPECT_FALSE(rootfs.entries().count(root + "/site-packages/big.py"));
}

TEST(RootfsBuilder, DigestFollowsContentModesAndSalt) {
  TempDir dir;
  dir.writeFile("a.txt", "one");
  auto build = [&] {
    RootfsBuilder rootfs(LibraryResolver({}));
    EXPECT_TRUE(rootfs.addHostPath(dir / "a.txt"));
    rootfs.addFile("/etc/passwd", "x:1\n");
    return rootfs;
  };
  const auto first = build().digest("salt");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->size(), 64u);
  EXPECT_EQ(must(build().digest("salt")), *first);
  EXPECT_NE(must(build().digest("other salt")), *first);
  auto generated = build();
  generated.addFile("/etc/passwd", "x:2\n");
  EXPECT_NE(must(generated.digest("salt")), *first);
  auto moded = build();
  moded.addFile("/etc/passwd", "x:1\n", 0600);
  EXPECT_NE(must(moded.digest("salt")), *first);
  const auto mtime = fs::last_write_time(dir / "a.txt");
  dir.writeFile("a.txt", "two");
  fs::last_write_time(dir / "a.txt", mtime);
  EXPECT_NE(must(build().digest("salt")), *first) << "same mtime, other content";
}

TEST(RootfsBuilder, TarHoldsExactlyTheEntries) {
  TempDir dir;
  dir.writeFile("data/blob.bin", std::string(300000, 'q'), fs::perms(0755));
  RootfsBuilder rootfs(LibraryResolver({}));
  ASSERT_TRUE(rootfs.addHostPath(dir / "data" / "blob.bin"));
  rootfs.addDirectory("/tmp", 01777);
  rootfs.addDirectory("/home/fn", 0700, 10001, 10001);
  rootfs.addFile("/etc/passwd", "tinyfaas:x:10001:10001::/tmp:/usr/sbin/nologin\n");
  rootfs.addSymlink("/bin", "usr/bin");
  auto size = rootfs.writeTar(dir / "out.tar");
  ASSERT_TRUE(size) << size.error();

  std::map<std::string, std::tuple<int, unsigned, std::string, unsigned>> seen;  // type, mode, content/target, uid
  struct archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  ASSERT_EQ(archive_read_open_filename(a, (dir / "out.tar").c_str(), 65536), ARCHIVE_OK);
  struct archive_entry* entry;
  while (archive_read_next_header(a, &entry) == ARCHIVE_OK) {
    std::string content;
    if (archive_entry_filetype(entry) == AE_IFREG) {
      content.resize(static_cast<std::size_t>(archive_entry_size(entry)));
      archive_read_data(a, content.data(), content.size());
    } else if (archive_entry_filetype(entry) == AE_IFLNK) {
      content = archive_entry_symlink(entry);
    }
    std::string name = archive_entry_pathname(entry);
    if (!name.empty() && name.back() == '/') name.pop_back();  // directories may carry one
    seen["/" + name] = {static_cast<int>(archive_entry_filetype(entry)), archive_entry_perm(entry), content,
                        static_cast<unsigned>(archive_entry_uid(entry))};
  }
  archive_read_free(a);
  const std::string blob = (fs::canonical(dir / "data" / "blob.bin")).string();
  ASSERT_TRUE(seen.count(blob));
  EXPECT_EQ(std::get<2>(seen[blob]), std::string(300000, 'q'));
  EXPECT_EQ(std::get<1>(seen[blob]), 0755u);
  EXPECT_EQ(std::get<1>(seen["/tmp"]), 01777u);
  EXPECT_EQ(std::get<3>(seen["/home/fn"]), 10001u);
  EXPECT_EQ(std::get<0>(seen["/bin"]), static_cast<int>(AE_IFLNK));
  EXPECT_EQ(std::get<2>(seen["/bin"]), "usr/bin");
  EXPECT_EQ(std::get<2>(seen["/etc/passwd"]), "tinyfaas:x:10001:10001::/tmp:/usr/sbin/nologin\n");
  EXPECT_EQ(seen.size() + 1, rootfs.entries().size()) << "every entry but / itself";
}

TEST(RuntimeImage, PythonStdlibIsTrimmed) {
  EXPECT_TRUE(keepInPythonStdlib("os.py"));
  EXPECT_TRUE(keepInPythonStdlib("http/server.py"));
  EXPECT_TRUE(keepInPythonStdlib("__pycache__/os.cpython-311.pyc"));
  EXPECT_TRUE(keepInPythonStdlib("lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so"));
  EXPECT_FALSE(keepInPythonStdlib("site-packages"));
  EXPECT_FALSE(keepInPythonStdlib("dist-packages/six.py"));
  EXPECT_FALSE(keepInPythonStdlib("test/test_os.py"));
  EXPECT_FALSE(keepInPythonStdlib("config-3.11-x86_64-linux-gnu/libpython3.11.a"));
  EXPECT_FALSE(keepInPythonStdlib("__pycache__/os.cpython-311.opt-1.pyc"));
  EXPECT_FALSE(pythonStdlibDir("/usr/bin/python"));
}

RuntimeImageInputs inputs() {
  RuntimeImageInputs in;
  in.runtimesDir = repoDir() / "runtimes";
  in.binaryHandler = TINYFAAS_BINARY_HANDLER;
  in.python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
  return in;
}

TEST(RuntimeImage, BinaryImageHasHandlerShellToolsAndUser) {
  auto plan = planRuntimeImage(Runtime::binary, inputs());
  ASSERT_TRUE(plan) << plan.error();
  EXPECT_EQ(plan->repository, "tinyfaas-runtime-binary");
  EXPECT_EQ(plan->command, std::vector<std::string>{"/opt/tinyfaas/tinyfaas-binary-handler"});
  for (const char* path : {"/opt/tinyfaas/tinyfaas-binary-handler", "/bin/sh", "/usr/bin/cat", "/usr/bin/printenv"})
    EXPECT_NE(resolveInImage(plan->rootfs, path), nullptr) << path;
  const RootfsEntry* passwd = resolveInImage(plan->rootfs, "/etc/passwd");
  ASSERT_NE(passwd, nullptr);
  EXPECT_NE(passwd->content.find(":10001:10001:"), std::string::npos);
  EXPECT_EQ(plan->rootfs.entries().at("/tmp").mode, 01777u);
  EXPECT_NE(std::find(plan->changes.begin(), plan->changes.end(), "USER 10001:10001"), plan->changes.end());
  EXPECT_NE(std::find(plan->changes.begin(), plan->changes.end(), "LABEL tinyfaas.runtime=binary"),
            plan->changes.end());
  auto tag = imageTag(*plan);
  ASSERT_TRUE(tag) << tag.error();
  EXPECT_EQ(tag->size(), 12u);
  auto again = planRuntimeImage(Runtime::binary, inputs());
  ASSERT_TRUE(again);
  EXPECT_EQ(must(imageTag(*again)), *tag) << "the same inputs give the same tag";
}

TEST(RuntimeImage, PythonImageHasItsStdlibAndExtensionLibraries) {
  auto plan = planRuntimeImage(Runtime::python3, inputs());
  ASSERT_TRUE(plan) << plan.error();
  ASSERT_GE(plan->command.size(), 2u);
  const fs::path exe = plan->command[0];
  EXPECT_NE(resolveInImage(plan->rootfs, exe.string()), nullptr);
  const fs::path stdlib = must(pythonStdlibDir(exe));
  EXPECT_NE(resolveInImage(plan->rootfs, (stdlib / "os.py").string()), nullptr);
  EXPECT_NE(resolveInImage(plan->rootfs, (stdlib / "http" / "server.py").string()), nullptr);
  EXPECT_EQ(resolveInImage(plan->rootfs, (stdlib / "site-packages").string()), nullptr);
  EXPECT_NE(resolveInImage(plan->rootfs, "/opt/tinyfaas/handler.py"), nullptr);
  // Every extension module's libraries are there too.
  std::error_code ec;
  for (const auto& module : fs::directory_iterator(stdlib / "lib-dynload", ec)) {
    if (!plan->rootfs.entries().count(module.path().string())) continue;  // left out: missing on the host too
    auto info = readElf(module.path());
    ASSERT_TRUE(info) << module.path();
    for (const auto& needed : info->needed) {
      auto lib = LibraryResolver::fromHost().find(needed, *info, module.path());
      ASSERT_TRUE(lib) << needed;
      EXPECT_NE(resolveInImage(plan->rootfs, lib->string()), nullptr) << module.path() << " needs " << *lib;
    }
  }
}

TEST(RuntimeImage, NodeImageHasNodeAndTheHandler) {
  auto plan = planRuntimeImage(Runtime::nodejs, inputs());
  if (!plan && plan.error().find("not installed") != std::string::npos) GTEST_SKIP() << plan.error();
  ASSERT_TRUE(plan) << plan.error();
  EXPECT_NE(resolveInImage(plan->rootfs, plan->command[0]), nullptr);
  EXPECT_EQ(plan->command[1], "/opt/tinyfaas/handler.js");
  EXPECT_NE(resolveInImage(plan->rootfs, "/opt/tinyfaas/handler.js"), nullptr);
}

TEST(RuntimeImage, WrapperScriptsAreRefusedWithAReason) {
  TempDir dir;
  dir.writeFile("python3", "#!/bin/sh\nexec /usr/bin/python3 \"$@\"\n", fs::perms(0755));
  auto in = inputs();
  in.python = (dir / "python3").string();
  auto plan = planRuntimeImage(Runtime::python3, in);
  ASSERT_FALSE(plan);
  EXPECT_NE(plan.error().find("not a wrapper script"), std::string::npos) << plan.error();
}

}  // namespace
}  // namespace tinyfaas::test
