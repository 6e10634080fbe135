#include "util/header_names.hpp"

#include <gtest/gtest.h>

namespace tinyfaas {
namespace {

TEST(CanonicalHeaderName, CapitalisesEachDashSeparatedWord) {
  EXPECT_EQ(canonicalHeaderName("user-agent"), "User-Agent");
  EXPECT_EQ(canonicalHeaderName("lab"), "Lab");
  EXPECT_EQ(canonicalHeaderName("content-type"), "Content-Type");
  EXPECT_EQ(canonicalHeaderName("x-forwarded-for"), "X-Forwarded-For");
}

TEST(CanonicalHeaderName, LowersTheRestOfEachWord) {
  EXPECT_EQ(canonicalHeaderName("X-tinyFaaS-Async"), "X-Tinyfaas-Async");
  EXPECT_EQ(canonicalHeaderName("CONTENT-TYPE"), "Content-Type");
  EXPECT_EQ(canonicalHeaderName("Already-Canonical"), "Already-Canonical");
}

TEST(CanonicalHeaderName, OnlyDashStartsANewWord) {
  EXPECT_EQ(canonicalHeaderName("x_custom_header"), "X_custom_header");
  EXPECT_EQ(canonicalHeaderName("x.y"), "X.y");
  EXPECT_EQ(canonicalHeaderName("x--y"), "X--Y");
  EXPECT_EQ(canonicalHeaderName("-leading"), "-Leading");
  EXPECT_EQ(canonicalHeaderName("trailing-"), "Trailing-");
}

TEST(CanonicalHeaderName, DigitsAreKeptAndNotCapitalised) {
  EXPECT_EQ(canonicalHeaderName("1abc"), "1abc");
  EXPECT_EQ(canonicalHeaderName("x-1a"), "X-1a");
  EXPECT_EQ(canonicalHeaderName("md5"), "Md5");
}

TEST(CanonicalHeaderName, KeepsEveryTokenCharacter) {
  EXPECT_EQ(canonicalHeaderName("a!#$%&'*+-.^_`|~b"), "A!#$%&'*+-.^_`|~b");
}

TEST(CanonicalHeaderName, DropsCharactersThatCannotBeInAToken) {
  EXPECT_EQ(canonicalHeaderName("x y"), "Xy");
  EXPECT_EQ(canonicalHeaderName("bad:name"), "Badname");
  EXPECT_EQ(canonicalHeaderName("a\r\nb"), "Ab");
  EXPECT_EQ(canonicalHeaderName("(x)"), "X");
  EXPECT_EQ(canonicalHeaderName("caf\xc3\xa9-au-lait"), "Caf-Au-Lait");
  EXPECT_EQ(canonicalHeaderName(std::string_view("a\0b", 3)), "Ab");
}

TEST(CanonicalHeaderName, DroppedCharacterBeforeAWordKeepsItsCapital) {
  // The capital follows the last kept character, not the dropped one.
  EXPECT_EQ(canonicalHeaderName("x- y"), "X-Y");
}

TEST(CanonicalHeaderName, EmptyWhenNothingLegalIsLeft) {
  EXPECT_EQ(canonicalHeaderName(""), "");
  EXPECT_EQ(canonicalHeaderName(" "), "");
  EXPECT_EQ(canonicalHeaderName("()<>@,;:\\\"/[]?={} \t"), "");
  EXPECT_EQ(canonicalHeaderName("\xff\xfe"), "");
}

}  // namespace
}  // namespace tinyfaas
