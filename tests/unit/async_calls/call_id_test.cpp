#include "async_calls/call_id.hpp"

#include <gtest/gtest.h>

#include <set>

namespace tinyfaas::async_calls {
namespace {

TEST(CallId, Is32LowerCaseHexDigitsAndNeverRepeats) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = newCallId();
    EXPECT_TRUE(isCallId(id)) << id;
    EXPECT_TRUE(seen.insert(id).second) << id;
  }
}

TEST(CallId, RefusesAnythingElse) {
  const std::string good(32, 'a');
  EXPECT_TRUE(isCallId(good));
  for (std::string bad :
       {std::string(), std::string(31, 'a'), std::string(33, 'a'), std::string(32, 'A'), std::string(32, 'g'),
        std::string(31, 'a') + "/", std::string(31, 'a') + '\0', std::string("' OR 1=1 --") + std::string(21, 'a')}) {
    EXPECT_FALSE(isCallId(bad)) << bad;
  }
}

}  // namespace
}  // namespace tinyfaas::async_calls
