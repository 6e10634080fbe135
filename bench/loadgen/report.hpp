#pragma once
// What a run prints: a few human lines, a one-line JSON summary for scripts,
// and every sample as CSV for CDF plots.

#include "run.hpp"

#include <iosfwd>
#include <string>

namespace tinyfaas::bench {

struct Summary {
  Counts counts;
  LatencySummary latency;
  double successRate = 0;  // 0..1
  double throughput = 0;   // successes per second of wall time
  double cpuPercentOfCore = 0;
};

Summary summarize(const RunResult& result);

std::string textReport(const RunOptions& options, const RunResult& result);
std::string jsonSummary(const RunOptions& options, const RunResult& result);

// client,seq,start_us,latency_us,ok
void writeSamplesCsv(std::ostream& out, const RunResult& result);

}  // namespace tinyfaas::bench
