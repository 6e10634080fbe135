#include "proxy/function_answer.hpp"

#include <gtest/gtest.h>

namespace tinyfaas {
namespace {

TEST(FunctionAnswerTest, StatusesBelow500AreAnswersAndFrom500Failures) {
  EXPECT_EQ(functionAnswer(200, {}, "x").status, CallStatus::ok);
  EXPECT_EQ(functionAnswer(404, {}, "x").status, CallStatus::ok);
  EXPECT_EQ(functionAnswer(404, {}, "x").code, 404u);
  EXPECT_EQ(functionAnswer(599, {}, "x").status, CallStatus::functionError);
  EXPECT_EQ(functionAnswer(503, {}, "").body, "function failed with status 503");
}

// 1xx would make the client wait for another answer, or switch protocols.
TEST(FunctionAnswerTest, StatusesOutside200To599AreRefused) {
  for (unsigned status : {0u, 100u, 101u, 199u, 600u, 4294967295u}) {
    const CallResult result = functionAnswer(status, {{"Upgrade", "h2c"}}, "x");
    EXPECT_EQ(result.status, CallStatus::functionError) << status;
    EXPECT_EQ(result.code, 0u);
    EXPECT_EQ(result.body, "function answered status " + std::to_string(status) + "; a function may answer 200 to 599");
  }
}

TEST(FunctionAnswerTest, InjectedLinesAndFramingHeadersAreRemoved) {
  const CallResult result = functionAnswer(200,
                                           {{"x-a", "1\r\nSet-Cookie: evil=1"},
                                            {"Content-Length", "1"},
                                            {"transfer-encoding", "chunked"},
                                            {"Bad Name", "v"},
                                            {"Bad\r\nName", "v"},
                                            {"", "v"},
                                            {"set-cookie", "id=1; HttpOnly"},
                                            {"content-type", "application/json"}},
                                           "{}");
  EXPECT_EQ(result.status, CallStatus::ok);
  const HeaderList expected{
      {"X-A", "1Set-Cookie: evil=1"}, {"Set-Cookie", "id=1; HttpOnly"}, {"Content-Type", "application/json"}};
  EXPECT_EQ(result.headers, expected);
}

TEST(FunctionAnswerTest, TooManyOrTooLargeHeadersAreAFunctionError) {
  HeaderList many;
  for (int i = 0; i < 65; ++i) many.emplace_back("X-" + std::to_string(i), "v");
  EXPECT_EQ(functionAnswer(200, many, "x").status, CallStatus::functionError);
  many.pop_back();
  EXPECT_EQ(functionAnswer(200, many, "x").status, CallStatus::ok);
  const CallResult large = functionAnswer(200, {{"X-Big", std::string(17 << 10, 'a')}}, "x");
  EXPECT_EQ(large.status, CallStatus::functionError);
  EXPECT_EQ(large.body, "function response headers exceed the limit (64 headers, 16 KiB)");
}

}  // namespace
}  // namespace tinyfaas
