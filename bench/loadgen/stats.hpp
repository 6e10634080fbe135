#pragma once
// Latency samples and what a run report says about them.

#include <cstdint>
#include <span>
#include <vector>

namespace tinyfaas::bench {

// One call. Times are microseconds; startUs counts from the run's start.
struct Sample {
  std::uint32_t client = 0;
  std::uint32_t seq = 0;
  std::int64_t startUs = 0;
  std::int64_t latencyUs = 0;
  bool ok = false;
  bool answered = false;  // the server replied (a failed call may still have)
};

// Nearest-rank percentile (the smallest value with at least p% of the
// samples at or below it), p in [0, 100], over ascending `sorted`. No
// interpolation: every reported latency is one that was measured.
// Returns 0 for no samples.
std::int64_t percentile(std::span<const std::int64_t> sorted, double p);

struct LatencySummary {
  std::int64_t minUs = 0, p50Us = 0, p90Us = 0, p99Us = 0, maxUs = 0;
  double meanUs = 0;
};

// Over successful calls only: a failed call's "latency" is the timeout.
LatencySummary summarizeSuccesses(std::span<const Sample> samples);

struct Counts {
  std::uint64_t calls = 0;
  std::uint64_t successes = 0;
  std::uint64_t errorReplies = 0;  // failed with an answer (an error status)
  std::uint64_t noReply() const { return calls - successes - errorReplies; }
};
Counts countCalls(std::span<const Sample> samples);

}  // namespace tinyfaas::bench
