#pragma once
// What one client coroutine gets: its identity, its bounds and where its
// samples go. Owned by runLoad; each job is touched only by the thread
// running its client.

#include "stats.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace tinyfaas::bench {

using Clock = std::chrono::steady_clock;

struct ClientJob {
  std::uint32_t id = 0;
  std::uint32_t calls = 0;
  std::chrono::milliseconds timeout{1000};
  Clock::time_point runStart;
  Clock::time_point stopIssuing;
  std::vector<Sample> samples;
  std::string firstError;

  bool mayStart(Clock::time_point now) const { return now < stopIssuing; }

  // `answered`: the server replied, with success or an error status.
  void record(std::uint32_t seq, Clock::time_point start, Clock::time_point end, bool ok, bool answered) {
    using std::chrono::duration_cast;
    using std::chrono::microseconds;
    samples.push_back(Sample{id, seq, duration_cast<microseconds>(start - runStart).count(),
                             duration_cast<microseconds>(end - start).count(), ok, answered});
  }

  void noteError(const std::string& what) {
    if (firstError.empty()) firstError = what;
  }
};

}  // namespace tinyfaas::bench
