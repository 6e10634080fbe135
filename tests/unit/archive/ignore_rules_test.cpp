#include "archive/ignore_rules.hpp"

#include <gtest/gtest.h>

namespace tinyfaas::cli {
namespace {

bool file(const IgnoreRules& rules, std::string_view path) { return rules.ignores(path, false); }
bool folder(const IgnoreRules& rules, std::string_view path) { return rules.ignores(path, true); }

TEST(IgnoreRules, CommentsAndBlankLinesAreNoRules) {
  const auto rules = IgnoreRules::parse("# a comment\n\n   \n\r\n");
  EXPECT_TRUE(rules.empty());
  EXPECT_FALSE(file(rules, "# a comment"));
  // An escaped '#' is a name.
  EXPECT_TRUE(file(IgnoreRules::parse("\\#notes\n"), "#notes"));
}

TEST(IgnoreRules, ANameWithoutSlashMatchesAtAnyDepth) {
  const auto rules = IgnoreRules::parse("secret.txt\n*.log\n");
  EXPECT_TRUE(file(rules, "secret.txt"));
  EXPECT_TRUE(file(rules, "a/b/secret.txt"));
  EXPECT_TRUE(folder(rules, "secret.txt"));
  EXPECT_TRUE(file(rules, "x.log"));
  EXPECT_TRUE(file(rules, "deep/x.log"));
  EXPECT_FALSE(file(rules, "x.log.txt"));
  EXPECT_FALSE(file(rules, "notsecret.txt"));
}

TEST(IgnoreRules, ASlashAnchorsAtTheFunctionFolder) {
  const auto rules = IgnoreRules::parse("/build\ndocs/*.md\n");
  EXPECT_TRUE(folder(rules, "build"));
  EXPECT_FALSE(folder(rules, "src/build"));
  EXPECT_TRUE(file(rules, "docs/a.md"));
  EXPECT_FALSE(file(rules, "docs/sub/a.md"));  // '*' stays within a segment
  EXPECT_FALSE(file(rules, "x/docs/a.md"));
}

TEST(IgnoreRules, ATrailingSlashMatchesFoldersOnly) {
  const auto rules = IgnoreRules::parse("cache/\n");
  EXPECT_TRUE(folder(rules, "cache"));
  EXPECT_TRUE(folder(rules, "lib/cache"));
  EXPECT_FALSE(file(rules, "cache"));
}

TEST(IgnoreRules, DoubleStarCrossesSegments) {
  const auto rules = IgnoreRules::parse("**/tmp\na/**/b\nlogs/**\n");
  EXPECT_TRUE(folder(rules, "tmp"));
  EXPECT_TRUE(folder(rules, "x/y/tmp"));
  EXPECT_TRUE(file(rules, "a/b"));
  EXPECT_TRUE(file(rules, "a/x/y/b"));
  EXPECT_FALSE(file(rules, "a/xb"));
  EXPECT_TRUE(file(rules, "logs/today"));
  EXPECT_TRUE(file(rules, "logs/2024/today"));
  EXPECT_FALSE(folder(rules, "logs"));  // "logs/**" is what is inside
}

TEST(IgnoreRules, TheLastMatchingRuleDecides) {
  const auto rules = IgnoreRules::parse("*.json\n!package.json\nlib/package.json\n");
  EXPECT_TRUE(file(rules, "data.json"));
  EXPECT_FALSE(file(rules, "package.json"));
  EXPECT_TRUE(file(rules, "lib/package.json"));
  EXPECT_FALSE(file(rules, "x/package.json"));
  EXPECT_TRUE(file(IgnoreRules::parse("\\!important\n"), "!important"));
}

TEST(IgnoreRules, QuestionMarksAndClasses) {
  const auto rules = IgnoreRules::parse("file?.txt\n[ab]*.c\n[!x-z]z\n[unclosed\n");
  EXPECT_TRUE(file(rules, "file1.txt"));
  EXPECT_FALSE(file(rules, "file12.txt"));
  EXPECT_FALSE(file(rules, "file/.txt"));
  EXPECT_TRUE(file(rules, "a.c"));
  EXPECT_TRUE(file(rules, "bcd.c"));
  EXPECT_FALSE(file(rules, "c.c"));
  EXPECT_TRUE(file(rules, "az"));
  EXPECT_FALSE(file(rules, "yz"));
  EXPECT_TRUE(file(rules, "[unclosed"));
}

TEST(IgnoreRules, TrailingBlanksAndCarriageReturnsAreTrimmed) {
  const auto rules = IgnoreRules::parse("a.txt   \r\nb.txt\r\n");
  EXPECT_TRUE(file(rules, "a.txt"));
  EXPECT_TRUE(file(rules, "b.txt"));
}

TEST(IgnoreRules, ManyStarsOnALongPathStayQuick) {
  // Each '*' stops at '/', so a hostile-looking pattern costs little.
  const auto rules = IgnoreRules::parse("*a*a*a*a*a*a*a*a*b\n");
  EXPECT_FALSE(file(rules, std::string(200, 'a')));
}

}  // namespace
}  // namespace tinyfaas::cli
