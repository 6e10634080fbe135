#include "stats.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace tinyfaas::bench {

std::int64_t percentile(std::span<const std::int64_t> sorted, double p) {
  if (sorted.empty()) return 0;
  p = std::clamp(p, 0.0, 100.0);
  // Rank in 1..n; ceil(p/100 * n), with p = 0 meaning the minimum.
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

LatencySummary summarizeSuccesses(std::span<const Sample> samples) {
  std::vector<std::int64_t> latencies;
  latencies.reserve(samples.size());
  for (const Sample& s : samples) {
    if (s.ok) latencies.push_back(s.latencyUs);
  }
  LatencySummary out;
  if (latencies.empty()) return out;
  std::sort(latencies.begin(), latencies.end());
  out.minUs = latencies.front();
  out.maxUs = latencies.back();
  out.p50Us = percentile(latencies, 50);
  out.p90Us = percentile(latencies, 90);
  out.p99Us = percentile(latencies, 99);
  out.meanUs = static_cast<double>(std::accumulate(latencies.begin(), latencies.end(), std::int64_t{0})) /
               static_cast<double>(latencies.size());
  return out;
}

Counts countCalls(std::span<const Sample> samples) {
  Counts c;
  c.calls = samples.size();
  for (const Sample& s : samples) {
    c.successes += s.ok ? 1 : 0;
    c.errorReplies += !s.ok && s.answered ? 1 : 0;
  }
  return c;
}

}  // namespace tinyfaas::bench
