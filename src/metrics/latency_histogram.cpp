#include "metrics/latency_histogram.hpp"

#include <algorithm>

namespace tinyfaas::metrics {

void LatencyHistogram::observe(std::chrono::nanoseconds duration) {
  const auto micros = static_cast<std::uint64_t>(
      std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(duration).count()));
  const auto bucket = std::lower_bound(kBoundsMicros.begin(), kBoundsMicros.end(), micros) - kBoundsMicros.begin();
  ++buckets_[static_cast<std::size_t>(bucket)];
  ++count_;
  sumMicros_ += micros;
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (std::size_t i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sumMicros_ += other.sumMicros_;
}

double LatencyHistogram::quantileSeconds(double q) const {
  if (count_ == 0) return -1;
  const double rank = q * static_cast<double>(count_);
  std::uint64_t below = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    const std::uint64_t in = buckets_[i];
    if (in > 0 && static_cast<double>(below + in) >= rank) {
      if (i == kBoundsMicros.size()) return static_cast<double>(kBoundsMicros.back()) / 1e6;
      const double lower = i == 0 ? 0.0 : static_cast<double>(kBoundsMicros[i - 1]);
      const double upper = static_cast<double>(kBoundsMicros[i]);
      const double fraction = (rank - static_cast<double>(below)) / static_cast<double>(in);
      return (lower + (upper - lower) * fraction) / 1e6;
    }
    below += in;
  }
  return static_cast<double>(kBoundsMicros.back()) / 1e6;
}

}  // namespace tinyfaas::metrics
