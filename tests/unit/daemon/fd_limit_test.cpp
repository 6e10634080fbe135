#include "daemon/fd_limit.hpp"

#include <gtest/gtest.h>

namespace tinyfaas {
namespace {

TEST(FdLimit, RaisesTheSoftLimitToTheHardOne) {
  const FdLimit limit = raiseFdLimit();
  rlimit now{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &now), 0);
  EXPECT_EQ(limit.soft, now.rlim_cur);
  EXPECT_EQ(now.rlim_cur, now.rlim_max);
  EXPECT_LE(limit.before, limit.soft);
}

TEST(FdLimit, ConnectionCapsStayWithinTheirShareOfTheLimit) {
  EXPECT_EQ(connectionsWithin(1024, 1024, 4), 256u);
  EXPECT_EQ(connectionsWithin(1024, 1 << 20, 4), 1024u);
  EXPECT_EQ(connectionsWithin(32, 1024, 16), 32u);
  EXPECT_EQ(connectionsWithin(32, 256, 16), 16u);
  EXPECT_EQ(connectionsWithin(32, 8, 16), 1u);
  EXPECT_EQ(connectionsWithin(32, RLIM_INFINITY, 16), 32u);
}

}  // namespace
}  // namespace tinyfaas
