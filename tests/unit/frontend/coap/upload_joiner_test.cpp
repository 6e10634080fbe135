// Block1 joining on its own: what a hostile client can make it hold, and
// that an honest upload comes out whole.

#include "frontend/coap/upload_joiner.hpp"

#include <string>

#include <gtest/gtest.h>

namespace tinyfaas::coap {
namespace {

using Step = UploadJoiner::Step;

UploadJoiner::Block block(unsigned num, bool more, const std::string& data, unsigned szx = 0) {
  return UploadJoiner::Block{num, more, szx, std::nullopt, data};
}

class UploadJoinerTest : public ::testing::Test {
 protected:
  Step add(const std::string& id, const UploadJoiner::Block& b) { return joiner.add(id, b, now, body); }

  UploadJoiner joiner{UploadLimits{64, 2, 70}};
  Clock::time_point now = Clock::now();
  std::string body;
};

TEST_F(UploadJoinerTest, JoinsBlocksInOrderAndForgetsTheUpload) {
  const std::string a(16, 'a'), b(16, 'b');
  EXPECT_EQ(add("p", block(0, true, a)), Step::more);
  EXPECT_EQ(add("p", block(1, true, b)), Step::more);
  EXPECT_EQ(add("p", block(2, false, "end")), Step::complete);
  EXPECT_EQ(body, a + b + "end");
  // Done: a later block of it is not part of any upload.
  EXPECT_EQ(add("p", block(3, false, "x")), Step::notStarted);
}

TEST_F(UploadJoinerTest, ARetransmittedBlockIsTakenOnce) {
  const std::string a(16, 'a'), b(16, 'b');
  add("p", block(0, true, a));
  add("p", block(1, true, b));
  EXPECT_EQ(add("p", block(1, true, b)), Step::more);
  EXPECT_EQ(add("p", block(2, false, "")), Step::complete);
  EXPECT_EQ(body, a + b);
}

TEST_F(UploadJoinerTest, GapsAndShortMiddleBlocksDropTheUpload) {
  add("p", block(0, true, std::string(16, 'a')));
  EXPECT_EQ(add("p", block(2, true, std::string(16, 'c'))), Step::outOfOrder);
  EXPECT_EQ(add("p", block(1, false, "b")), Step::notStarted);
  EXPECT_EQ(add("q", block(0, true, "short")), Step::outOfOrder);
}

TEST_F(UploadJoinerTest, AnnouncedOrReachedSizeOverTheLimitIsRefused) {
  UploadJoiner::Block announced = block(0, true, std::string(16, 'a'));
  announced.size1 = 4'000'000'000u;
  EXPECT_EQ(add("p", announced), Step::tooLarge);
  for (unsigned i = 0; i < 4; ++i) ASSERT_EQ(add("q", block(i, true, std::string(16, 'x'))), Step::more);
  EXPECT_EQ(add("q", block(4, false, "y")), Step::tooLarge);
  EXPECT_EQ(add("q", block(5, false, "z")), Step::notStarted);  // dropped
}

TEST_F(UploadJoinerTest, UploadsAreBoundedInNumberAndBytesTogether) {
  const std::string chunk(16, 'x');
  for (unsigned i = 0; i < 3; ++i) ASSERT_EQ(add("a", block(i, true, chunk)), Step::more);
  EXPECT_EQ(add("b", block(0, true, chunk)), Step::more);
  EXPECT_EQ(add("c", block(0, true, chunk)), Step::tooManyUploads);
  // 64 of 70 bytes are held: the next block of b would pass the total and
  // b gives way; a goes on.
  EXPECT_EQ(add("b", block(1, true, chunk)), Step::tooManyBytes);
  EXPECT_EQ(add("a", block(3, false, "end")), Step::complete);
  EXPECT_EQ(body, chunk + chunk + chunk + "end");
}

TEST_F(UploadJoinerTest, IdleUploadsExpire) {
  const Clock::time_point start = now;
  add("old", block(0, true, std::string(16, 'a')));
  now += std::chrono::seconds(10);
  add("new", block(0, true, std::string(16, 'b')));
  EXPECT_EQ(joiner.expire(now), start);
  EXPECT_EQ(joiner.expire(start + kUploadIdle), now);  // "old" went
  EXPECT_EQ(add("old", block(1, false, "x")), Step::notStarted);
  EXPECT_EQ(joiner.expire(now + kUploadIdle), Clock::time_point::max());
}

}  // namespace
}  // namespace tinyfaas::coap
