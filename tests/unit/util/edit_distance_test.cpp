#include "util/edit_distance.hpp"

#include <gtest/gtest.h>

namespace tinyfaas {
namespace {

TEST(EditDistanceTest, CountsInsertionsDeletionsAndSubstitutions) {
  EXPECT_EQ(editDistance("memory_mb", "memory_mb"), 0u);
  EXPECT_EQ(editDistance("memroy_mb", "memory_mb"), 2u);  // a swap is two edits
  EXPECT_EQ(editDistance("lst", "list"), 1u);
  EXPECT_EQ(editDistance("list", "lst"), 1u);
  EXPECT_EQ(editDistance("", "rm"), 2u);
  EXPECT_EQ(editDistance("kitten", "sitting"), 3u);
}

}  // namespace
}  // namespace tinyfaas
