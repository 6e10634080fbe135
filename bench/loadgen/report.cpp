#include "report.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <ostream>

namespace tinyfaas::bench {
namespace {

std::string format(const char* fmt, auto... args) {
  char buffer[256];
  std::snprintf(buffer, sizeof buffer, fmt, args...);
  return buffer;
}

double ms(std::int64_t us) { return static_cast<double>(us) / 1000.0; }

}  // namespace

Summary summarize(const RunResult& result) {
  Summary s;
  s.counts = countCalls(result.samples);
  s.latency = summarizeSuccesses(result.samples);
  s.successRate =
      s.counts.calls == 0 ? 0 : static_cast<double>(s.counts.successes) / static_cast<double>(s.counts.calls);
  s.throughput = result.wallSeconds > 0 ? static_cast<double>(s.counts.successes) / result.wallSeconds : 0;
  s.cpuPercentOfCore =
      result.wallSeconds > 0 ? 100.0 * (result.cpuUserSeconds + result.cpuSystemSeconds) / result.wallSeconds : 0;
  return s;
}

std::string textReport(const RunOptions& options, const RunResult& result) {
  const Summary s = summarize(result);
  std::string out;
  out += format("target      %s (%s%s)\n", options.target.url.c_str(),
                std::string(protocolName(options.target.protocol)).c_str(),
                options.target.protocol == Protocol::coap ? (options.coapNonConfirmable ? ", NON" : ", CON") : "");
  out += format("load        %u clients x %u calls, %u threads, timeout %lld ms\n", options.clients,
                options.callsPerClient, std::min(options.threads, options.clients),
                static_cast<long long>(options.timeout.count()));
  out += format(
      "calls       %llu  successes %llu  failed %llu (error replies %llu, no reply %llu)  success rate "
      "%.2f%%\n",
      static_cast<unsigned long long>(s.counts.calls), static_cast<unsigned long long>(s.counts.successes),
      static_cast<unsigned long long>(s.counts.calls - s.counts.successes),
      static_cast<unsigned long long>(s.counts.errorReplies), static_cast<unsigned long long>(s.counts.noReply()),
      100.0 * s.successRate);
  out += format("throughput  %.1f successes/s over %.3f s\n", s.throughput, result.wallSeconds);
  out +=
      format("latency ms  min %.3f  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  (successful calls)\n", ms(s.latency.minUs),
             ms(s.latency.p50Us), ms(s.latency.p90Us), ms(s.latency.p99Us), ms(s.latency.maxUs));
  out += format("client cpu  user %.2f s  sys %.2f s  = %.0f%% of one core\n", result.cpuUserSeconds,
                result.cpuSystemSeconds, s.cpuPercentOfCore);
  if (result.stoppedByMaxDuration) out += "note        stopped by --max-seconds before every call was issued\n";
  if (!result.firstError.empty()) out += "first error " + result.firstError + "\n";
  return out;
}

std::string jsonSummary(const RunOptions& options, const RunResult& result) {
  const Summary s = summarize(result);
  nlohmann::ordered_json j;
  j["target"] = options.target.url;
  j["protocol"] = std::string(protocolName(options.target.protocol));
  j["clients"] = options.clients;
  j["calls_per_client"] = options.callsPerClient;
  j["threads"] = std::min(options.threads, options.clients);
  j["timeout_ms"] = options.timeout.count();
  j["calls"] = s.counts.calls;
  j["successes"] = s.counts.successes;
  j["failures"] = s.counts.calls - s.counts.successes;
  j["error_replies"] = s.counts.errorReplies;
  j["no_reply"] = s.counts.noReply();
  j["success_rate"] = s.successRate;
  j["wall_s"] = result.wallSeconds;
  j["throughput"] = s.throughput;
  j["latency_us"] = {{"min", s.latency.minUs}, {"p50", s.latency.p50Us}, {"p90", s.latency.p90Us},
                     {"p99", s.latency.p99Us}, {"max", s.latency.maxUs}, {"mean", s.latency.meanUs}};
  j["cpu"] = {
      {"user_s", result.cpuUserSeconds}, {"sys_s", result.cpuSystemSeconds}, {"percent_of_core", s.cpuPercentOfCore}};
  j["stopped_by_max_seconds"] = result.stoppedByMaxDuration;
  j["first_error"] = result.firstError;
  return j.dump();
}

void writeSamplesCsv(std::ostream& out, const RunResult& result) {
  out << "client,seq,start_us,latency_us,ok\n";
  for (const Sample& s : result.samples) {
    out << s.client << ',' << s.seq << ',' << s.startUs << ',' << s.latencyUs << ',' << (s.ok ? 1 : 0) << '\n';
  }
}

}  // namespace tinyfaas::bench
