#pragma once
// Writes the Prometheus text exposition format 0.0.4: one `# HELP` and
// `# TYPE` line per family, then its samples with escaped label values.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace tinyfaas::metrics {

inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

// Backslash, double quote and line feed escaped as the format requires.
std::string escapeLabelValue(std::string_view value);
// Shortest decimal that reads back as `value`; +Inf, -Inf, NaN.
std::string formatValue(double value);

class PrometheusText {
 public:
  // type: counter, gauge or histogram. Samples of the family follow.
  void family(std::string_view name, std::string_view type, std::string_view help);
  // `name` is the family's name, or for histograms with _bucket/_sum/_count.
  void sample(std::string_view name, Labels labels, std::uint64_t value);
  void sample(std::string_view name, Labels labels, double value);
  // A _bucket sample: `labels` plus le="upperBound" (infinity for +Inf).
  void bucket(std::string_view name, Labels labels, double upperBound, std::uint64_t cumulative);

  const std::string& text() const { return out_; }

 private:
  void begin(std::string_view name, Labels labels, std::string_view le = {});
  std::string out_;
};

}  // namespace tinyfaas::metrics
