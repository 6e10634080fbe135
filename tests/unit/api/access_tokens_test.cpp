#include "api/access_tokens.hpp"

#include <gtest/gtest.h>

#include "test_support.hpp"

namespace tinyfaas {
namespace {

constexpr const char* kAdmin = "admin-token-0123456789";
constexpr const char* kAlice = "alice-token-0123456789";

std::string parseError(const std::string& text) {
  auto parsed = AccessTokens::parse(text, "tokens.txt");
  EXPECT_FALSE(parsed) << "accepted: " << text;
  return parsed ? std::string() : parsed.error();
}

TEST(AccessTokensTest, FindsEachTokensTenantAndRole) {
  auto tokens = AccessTokens::parse(
      std::string("# operators\n\n") + kAdmin + " ops admin\r\n  " + kAlice + "\talice   tenant  \n# end",
      "tokens.txt");
  ASSERT_TRUE(tokens) << tokens.error();
  EXPECT_EQ(tokens->size(), 2u);
  auto admin = tokens->find(kAdmin);
  ASSERT_TRUE(admin);
  EXPECT_TRUE(admin->admin);
  EXPECT_EQ(admin->tenant, "ops");
  auto alice = tokens->find(kAlice);
  ASSERT_TRUE(alice);
  EXPECT_FALSE(alice->admin);
  EXPECT_EQ(alice->tenant, "alice");
  EXPECT_TRUE(alice->covers("alice"));
  EXPECT_FALSE(alice->covers("bob"));
  EXPECT_FALSE(alice->covers(""));
}

TEST(AccessTokensTest, OnlyTheExactTokenMatches) {
  auto tokens = AccessTokens::parse(std::string(kAlice) + " alice tenant\n", "tokens.txt");
  ASSERT_TRUE(tokens);
  const std::string alice = kAlice;
  EXPECT_FALSE(tokens->find(""));
  EXPECT_FALSE(tokens->find(alice.substr(0, alice.size() - 1)));
  EXPECT_FALSE(tokens->find(alice + "x"));
  EXPECT_FALSE(tokens->find("ALICE-TOKEN-0123456789"));
  EXPECT_FALSE(tokens->find("ops"));
}

TEST(AccessTokensTest, BadLinesNameTheLineAndNeverTheToken) {
  const std::string secret = "secret-token-0123456789";
  for (const auto& [text, reason] : std::vector<std::pair<std::string, std::string>>{
           {"# ok\n" + secret + " alice\n", "tokens.txt line 2: expected TOKEN TENANT ROLE, found 2 field(s)"},
           {secret + " alice tenant extra\n", "tokens.txt line 1: expected TOKEN TENANT ROLE, found 4 field(s)"},
           {"\n\n" + secret + " alice root\n", "tokens.txt line 3: role must be admin or tenant, not \"root\""},
           {"short alice tenant\n", "tokens.txt line 1: the token is shorter than 16 characters"},
           {secret + " al!ce tenant\n", "tokens.txt line 1: tenant must be 1 to 64 letters, digits, - or _"},
           {secret + "\" alice tenant\n", "tokens.txt line 1: the token may hold only letters, digits and -._~+/="},
           {secret + " alice tenant\n" + secret + " bob tenant\n",
            "tokens.txt line 2: the same token appears on an earlier line"},
       }) {
    const std::string error = parseError(text);
    EXPECT_EQ(error, reason);
    EXPECT_EQ(error.find(secret), std::string::npos) << error;
  }
}

TEST(AccessTokensTest, AFileWithoutTokensIsRefused) {
  EXPECT_EQ(parseError("# nobody yet\n\n"), "tokens.txt: no tokens (nobody could use the management API)");
}

TEST(AccessTokensTest, LoadReadsTheFileAndNamesItInErrors) {
  test::TempDir dir;
  dir.writeFile("tokens", std::string(kAlice) + " alice tenant\n");
  auto tokens = AccessTokens::load(dir / "tokens");
  ASSERT_TRUE(tokens) << tokens.error();
  EXPECT_TRUE(tokens->find(kAlice));
  auto missing = AccessTokens::load(dir / "nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), "cannot read token file " + (dir / "nope").string());
}

TEST(ConstantTimeEqualTest, ComparesWholeStrings) {
  EXPECT_TRUE(constantTimeEqual("", ""));
  EXPECT_TRUE(constantTimeEqual("abcdef", "abcdef"));
  EXPECT_FALSE(constantTimeEqual("abcdef", "abcdeg"));
  EXPECT_FALSE(constantTimeEqual("abcdef", "Abcdef"));
  EXPECT_FALSE(constantTimeEqual("abc", "abcdef"));
  EXPECT_FALSE(constantTimeEqual(std::string_view("a\0b", 3), std::string_view("a\0c", 3)));
}

}  // namespace
}  // namespace tinyfaas
