// Multiplexed log frames into lines, whatever the cuts.

#include "backend/docker/log_demux.hpp"

#include <gtest/gtest.h>

#include "fake_engine.hpp"

namespace tinyfaas::test {
namespace {

using docker::LogDemuxer;
using Lines = std::vector<std::pair<int, std::string>>;

Lines demux(const std::string& bytes, std::size_t piece, std::size_t maxLine = 8192,
            LogDemuxer::Framing framing = LogDemuxer::Framing::multiplexed) {
  Lines lines;
  LogDemuxer d(
      framing, [&](int stream, std::string_view line) { lines.emplace_back(stream, line); }, maxLine);
  for (std::size_t i = 0; i < bytes.size(); i += piece) EXPECT_TRUE(d.feed(bytes.substr(i, piece)));
  d.finish();
  return lines;
}

TEST(LogDemuxer, EveryCutGivesTheSameLines) {
  const std::string stream = logFrame(1, "alpha\nbe") + logFrame(2, "err one\r\n") + logFrame(1, "ta\ngam") +
                             logFrame(0, "") + logFrame(1, "ma\n") + logFrame(2, "tail");
  const Lines expected = {{1, "alpha"}, {2, "err one"}, {1, "beta"}, {1, "gamma"}, {2, "tail"}};
  for (std::size_t piece = 1; piece <= stream.size(); ++piece) EXPECT_EQ(demux(stream, piece), expected) << piece;
}

TEST(LogDemuxer, LongLinesAreHandedOnInPieces) {
  const Lines lines = demux(logFrame(1, std::string(25, 'a') + "\n"), 7, 10);
  const Lines expected = {{1, std::string(10, 'a')}, {1, std::string(10, 'a')}, {1, std::string(5, 'a')}};
  EXPECT_EQ(lines, expected);
}

TEST(LogDemuxer, LargeFrameIsNotBuffered) {
  // 1 MiB in one frame, no newline: memory stays at one line's worth.
  Lines lines;
  LogDemuxer d(
      LogDemuxer::Framing::multiplexed, [&](int, std::string_view line) { lines.emplace_back(1, line); }, 4096);
  EXPECT_TRUE(d.feed(logFrame(1, std::string(1 << 20, 'z'))));
  EXPECT_EQ(lines.size(), 256u);
}

TEST(LogDemuxer, MalformedHeaderStopsTheStream) {
  Lines lines;
  LogDemuxer d(LogDemuxer::Framing::multiplexed, [&](int s, std::string_view line) { lines.emplace_back(s, line); });
  EXPECT_TRUE(d.feed(logFrame(1, "ok\n")));
  EXPECT_FALSE(d.feed("plain text that is not a frame header\n"));
  EXPECT_TRUE(d.broken());
  EXPECT_FALSE(d.feed(logFrame(1, "after\n")));
  EXPECT_EQ(lines, (Lines{{1, "ok"}}));
}

TEST(LogDemuxer, RawStreamIsStdout) {
  EXPECT_EQ(demux("one\ntwo", 3, 8192, LogDemuxer::Framing::raw), (Lines{{1, "one"}, {1, "two"}}));
}

}  // namespace
}  // namespace tinyfaas::test
