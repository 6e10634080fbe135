// What a go upload asks of the build sandbox (network or not, replace
// targets), the line a failed build answers with, and the per-owner build
// caches: merged from a build's zip, bounded by evicting whole folders.

#include "manager/go_build.hpp"

#include <algorithm>

#include <gtest/gtest.h>

#include "test_support.hpp"
#include "zip_builder.hpp"

namespace tinyfaas {
namespace {

namespace fs = std::filesystem;

GoBuildPlan plan(const test::TempDir& dir) {
  auto p = planGoBuild(dir.path());
  EXPECT_TRUE(p) << p.error();
  return p ? *p : GoBuildPlan{};
}

TEST(GoImports, ReadsSingleAndGroupedDeclarationsAfterComments) {
  EXPECT_EQ(goImports("// Package doc\n/* block */ package main\n\nimport \"fmt\"\nimport x \"example.com/x\"\n"
                      "import (\n\t\"os\" // why\n\t_ \"embed\"\n\t. `example.org/dot`\n)\n\nfunc main() {}\n"
                      "import \"not/an/import\"\n"),
            (std::vector<std::string>{"fmt", "example.com/x", "os", "embed", "example.org/dot"}));
  EXPECT_TRUE(goImports("package main; import \"fmt\"; func f() {}").size() == 1);
  EXPECT_TRUE(goImports("not go at all").empty());
}

TEST(GoBuildPlan, StandardLibraryAndOwnPackagesNeedNoNetwork) {
  test::TempDir dir;
  dir.writeFile("go.mod", "module example.com/fn\n\ngo 1.22\n");
  dir.writeFile("fn.go", "package main\nimport (\n\"fmt\"\n\"example.com/fn/sub\"\n)\n");
  dir.writeFile("sub/sub.go", "package sub\nimport \"strings\"\n");
  dir.writeFile("fn_test.go", "package main\nimport \"github.com/stretchr/testify\"\n");
  dir.writeFile("testdata/x.go", "package x\nimport \"github.com/a/b\"\n");
  EXPECT_FALSE(plan(dir).network);
  EXPECT_FALSE(plan(dir).vendored);
}

TEST(GoBuildPlan, ModulesNeedTheNetworkUnlessVendored) {
  test::TempDir imports;
  imports.writeFile("go.mod", "module main\n\ngo 1.22\n");
  imports.writeFile("fn.go", "package main\nimport \"github.com/google/uuid\"\n");
  EXPECT_TRUE(plan(imports).network);  // upstream's builds add missing requirements (go mod tidy)

  test::TempDir required;
  required.writeFile("go.mod", "module main\n\ngo 1.22\n\nrequire (\n\tgithub.com/google/uuid v1.6.0 // indirect\n)\n");
  required.writeFile("fn.go", "package main\n");
  EXPECT_TRUE(plan(required).network);
  required.writeFile("vendor/modules.txt", "# github.com/google/uuid v1.6.0\n");
  EXPECT_FALSE(plan(required).network);
  EXPECT_TRUE(plan(required).vendored);
}

TEST(GoBuildPlan, ReplaceOutsideTheFolderIsRefusedByLine) {
  for (const char* target : {"../elsewhere", "/usr/share/x", "./a/../../b"}) {
    test::TempDir dir;
    dir.writeFile("go.mod", std::string("module main\n\nreplace (\n\texample.com/x => ") + target + "\n)\n");
    auto p = planGoBuild(dir.path());
    ASSERT_FALSE(p) << target;
    EXPECT_EQ(p.error(), std::string("go.mod line 4: replace with ") + target + " points outside the function folder");
  }
  test::TempDir inside;
  inside.writeFile("go.mod", "module main\nreplace example.com/x v1.0.0 => ./x\nreplace a => b.org/c v1.2.3\n");
  EXPECT_TRUE(planGoBuild(inside.path()));
}

TEST(GoBuildErrorLine, TheCompilersFirstErrorRelativeToTheFunction) {
  EXPECT_EQ(goBuildErrorLine(
                {"runtime", "net/http", "main", "# main", "./fn.go:5:2: undefined: x", "./fn.go:6:2: undefined: y"}),
            "fn.go:5:2: undefined: x");
  EXPECT_EQ(goBuildErrorLine({"# main/sub", "sub/a.go:1:1: expected 'package', found x"}),
            "sub/a.go:1:1: expected 'package', found x");
  EXPECT_EQ(goBuildErrorLine({"/tmp/caches/mod/example.com/x@v1.0.0/x.go:3:1: syntax error"}),
            "example.com/x@v1.0.0/x.go:3:1: syntax error");
}

TEST(GoBuildErrorLine, AnErrorInTheHandlerMainIsAboutFnsSignature) {
  const std::string line = goBuildErrorLine(
      {"# main", "./tinyfaas_main.go:250:17: assignment mismatch: 2 variables but fn returns 1 value"});
  EXPECT_EQ(line,
            "fn.go must define func fn(data string, headers map[string]string) (string, error): assignment "
            "mismatch: 2 variables but fn returns 1 value");
}

TEST(GoBuildErrorLine, GosOwnLineWithoutSandboxPaths) {
  EXPECT_EQ(goBuildErrorLine({"go: downloading example.com/x v1.0.0",
                              "go: example.com/x@v1.0.0: reading https://proxy.golang.org/x: 404 Not Found"}),
            "go: example.com/x@v1.0.0: reading https://proxy.golang.org/x: 404 Not Found");
  EXPECT_EQ(goBuildErrorLine({"package main: build constraints exclude all Go files in /tmp/gobuild"}),
            "package main: build constraints exclude all Go files in .");
}

std::uintmax_t bytesUnder(const fs::path& dir) {
  std::uintmax_t total = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file()) total += entry.file_size();
  return total;
}

TEST(GoBuildCache, MergesABuildsEntriesIntoItsOwnersFolderOnly) {
  test::TempDir state;
  GoBuildCache cache(state.path(), 64u << 20, std::nullopt);
  auto alice = cache.use("alice");
  ASSERT_TRUE(alice) << alice.error().message;
  ASSERT_TRUE(cache.use(""));
  const std::string zip = test::ZipBuilder()
                              .file("build/ab/abcd-a", "action")
                              .file("build/ab/abcd-d", "output")
                              .file("mod/example.com/x@v1.0.0/x.go", "package x")
                              .file("elsewhere/ignored", "not a cache")
                              .build();
  auto merged = cache.merge("alice", zip);
  ASSERT_TRUE(merged) << merged.error();
  EXPECT_EQ(test::readFile(*alice / "build/ab/abcd-d"), "output");
  EXPECT_EQ(test::readFile(*alice / "mod/example.com/x@v1.0.0/x.go"), "package x");
  EXPECT_FALSE(fs::exists(*alice / "elsewhere"));
  EXPECT_EQ(bytesUnder(cache.root() / "default"), 0u);  // another owner's folder is untouched
  // Nothing of the merge is left beside the folders.
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(cache.root())) left.push_back(entry.path().filename().string());
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"default", "tenant-alice"}));

  EXPECT_FALSE(cache.merge("alice", "not a zip"));
  EXPECT_FALSE(cache.merge("alice", test::ZipBuilder().file("../escape", "x").build()));
  EXPECT_FALSE(fs::exists(state.path() / "escape"));
}

TEST(GoBuildCache, StaysWithinItsBoundByDroppingTheLeastRecentlyUsedFolders) {
  test::TempDir state;
  GoBuildCache cache(state.path(), 3000, std::nullopt);
  const auto entries = [](char fill) {
    return test::ZipBuilder().file("build/aa/entry-d", std::string(1000, fill)).stored().build();
  };
  ASSERT_TRUE(cache.merge("old", entries('o')));
  ASSERT_TRUE(cache.merge("middle", entries('m')));
  ASSERT_TRUE(cache.merge("new", entries('n')));
  EXPECT_TRUE(fs::exists(cache.root() / "tenant-old"));
  ASSERT_TRUE(cache.use("old"));  // used again: now the most recent
  ASSERT_TRUE(cache.merge("newest", entries('x')));
  EXPECT_FALSE(fs::exists(cache.root() / "tenant-middle"));
  EXPECT_TRUE(fs::exists(cache.root() / "tenant-old"));
  EXPECT_TRUE(fs::exists(cache.root() / "tenant-newest"));
  EXPECT_LE(bytesUnder(cache.root()), 3000u);
}

}  // namespace
}  // namespace tinyfaas
