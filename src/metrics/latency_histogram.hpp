#pragma once
// A fixed-bucket latency histogram (Prometheus-style, 100 µs to 60 s) that
// also answers quantiles, so /functions can report p50/p99 without keeping
// samples.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace tinyfaas::metrics {

class LatencyHistogram {
 public:
  // Upper bounds in microseconds; one more bucket (+Inf) follows.
  static constexpr std::array<std::uint64_t, 18> kBoundsMicros = {
      100,     250,     500,     1'000,     2'500,     5'000,     10'000,     25'000,     50'000,
      100'000, 250'000, 500'000, 1'000'000, 2'500'000, 5'000'000, 10'000'000, 30'000'000, 60'000'000};
  static constexpr std::size_t kBuckets = kBoundsMicros.size() + 1;

  void observe(std::chrono::nanoseconds duration);
  void merge(const LatencyHistogram& other);

  // Calls per bucket, not cumulative; the last one is +Inf.
  const std::array<std::uint64_t, kBuckets>& buckets() const { return buckets_; }
  std::uint64_t count() const { return count_; }
  std::uint64_t sumMicros() const { return sumMicros_; }

  // The q-quantile (0 < q < 1) in seconds, interpolated linearly inside its
  // bucket as Prometheus' histogram_quantile does; the largest finite bound
  // when it falls in +Inf; a negative value when nothing was observed.
  double quantileSeconds(double q) const;

 private:
  std::array<std::uint64_t, kBuckets> buckets_{};
  std::uint64_t count_ = 0;
  std::uint64_t sumMicros_ = 0;
};

}  // namespace tinyfaas::metrics
