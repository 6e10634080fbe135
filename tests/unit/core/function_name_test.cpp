#include "core/function_name.hpp"

#include <gtest/gtest.h>

#include <string>

#include "core/invocation.hpp"
#include "core/runtime.hpp"

namespace tinyfaas {
namespace {

TEST(FunctionName, AcceptsLettersAndDigits) {
  EXPECT_TRUE(isValidFunctionName("sieve"));
  EXPECT_TRUE(isValidFunctionName("Echo2"));
  EXPECT_TRUE(isValidFunctionName("0"));
  EXPECT_TRUE(isValidFunctionName("ABCxyz0123456789"));
  EXPECT_TRUE(isValidFunctionName(std::string(kMaxFunctionNameLength, 'a')));
}

TEST(FunctionName, RejectsEmptyAndTooLong) {
  EXPECT_FALSE(isValidFunctionName(""));
  EXPECT_FALSE(isValidFunctionName(std::string(kMaxFunctionNameLength + 1, 'a')));
}

TEST(FunctionName, AcceptsInnerDashes) {
  EXPECT_TRUE(isValidFunctionName("my-func"));
  EXPECT_TRUE(isValidFunctionName("a--b"));
  EXPECT_TRUE(isValidFunctionName("a-1"));
}

TEST(FunctionName, RejectsDashFirstOrLast) {
  for (const char* name : {"-", "--", "-a", "a-", "-a-"}) EXPECT_FALSE(isValidFunctionName(name)) << name;
}

TEST(FunctionName, RejectsAnythingButLettersDigitsAndDashes) {
  for (const char* name :
       {"a_b", "a.b", "a/b", "..", ".", "a b", "a\n", "-", "caf\xc3\xa9", "a%2F", "a:b", "A~", "x\\y"}) {
    EXPECT_FALSE(isValidFunctionName(name)) << name;
  }
  EXPECT_FALSE(isValidFunctionName(std::string_view("a\0b", 3)));
}

TEST(FunctionName, IsUsableAtCompileTime) {
  static_assert(isValidFunctionName("abc"));
  static_assert(!isValidFunctionName("a/b"));
}

TEST(Runtime, ParsesTheFourUploadEnvs) {
  EXPECT_EQ(parseRuntime("nodejs"), Runtime::nodejs);
  EXPECT_EQ(parseRuntime("python3"), Runtime::python3);
  EXPECT_EQ(parseRuntime("binary"), Runtime::binary);
  EXPECT_EQ(parseRuntime("go"), Runtime::go);
}

TEST(Runtime, RejectsOtherNames) {
  for (const char* name :
       {"", "node", "python", "Python3", "NODEJS", "python3 ", " binary", "Go", "golang", "docker"}) {
    EXPECT_FALSE(parseRuntime(name)) << '"' << name << '"';
  }
}

TEST(Runtime, ToStringRoundTrips) {
  for (Runtime runtime : {Runtime::nodejs, Runtime::python3, Runtime::binary})
    EXPECT_EQ(parseRuntime(toString(runtime)), runtime);
}

TEST(CallStatus, EveryStatusHasAName) {
  EXPECT_EQ(toString(CallStatus::ok), "ok");
  EXPECT_EQ(toString(CallStatus::notFound), "not found");
  EXPECT_EQ(toString(CallStatus::functionError), "function error");
  EXPECT_EQ(toString(CallStatus::unavailable), "unavailable");
  EXPECT_EQ(toString(CallStatus::timeout), "timeout");
  EXPECT_EQ(toString(CallStatus::overloaded), "overloaded");
  EXPECT_EQ(toString(CallStatus::payloadTooLarge), "payload too large");
}

}  // namespace
}  // namespace tinyfaas
