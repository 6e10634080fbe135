#include "metrics/prometheus_text.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace tinyfaas::metrics {
namespace {

TEST(PrometheusText, FamilyHasHelpThenType) {
  PrometheusText out;
  out.family("tinyfaas_calls_total", "counter", "Calls.");
  out.sample("tinyfaas_calls_total", {{"function", "echo"}, {"protocol", "http"}}, std::uint64_t{3});
  EXPECT_EQ(out.text(),
            "# HELP tinyfaas_calls_total Calls.\n"
            "# TYPE tinyfaas_calls_total counter\n"
            "tinyfaas_calls_total{function=\"echo\",protocol=\"http\"} 3\n");
}

TEST(PrometheusText, SampleWithoutLabelsHasNoBraces) {
  PrometheusText out;
  out.sample("tinyfaas_functions", {}, std::uint64_t{0});
  EXPECT_EQ(out.text(), "tinyfaas_functions 0\n");
}

TEST(PrometheusText, LabelValuesAreEscaped) {
  EXPECT_EQ(escapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  PrometheusText out;
  out.sample("m", {{"path", "C:\\x \"q\"\n"}}, std::uint64_t{1});
  EXPECT_EQ(out.text(), "m{path=\"C:\\\\x \\\"q\\\"\\n\"} 1\n");
}

TEST(PrometheusText, HelpEscapesBackslashAndNewlineOnly) {
  PrometheusText out;
  out.family("m", "gauge", "a \"b\" \\ c\nd");
  EXPECT_EQ(out.text(), "# HELP m a \"b\" \\\\ c\\nd\n# TYPE m gauge\n");
}

TEST(PrometheusText, FloatsAndSpecialValues) {
  EXPECT_EQ(formatValue(0.25), "0.25");
  EXPECT_EQ(formatValue(60.0), "60");
  EXPECT_EQ(formatValue(0.0001), "0.0001");
  EXPECT_EQ(formatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(formatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(formatValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(PrometheusText, BucketAddsLeAfterTheOtherLabels) {
  PrometheusText out;
  out.bucket("h_bucket", {{"function", "f"}}, 0.5, 7);
  out.bucket("h_bucket", {}, std::numeric_limits<double>::infinity(), 9);
  EXPECT_EQ(out.text(), "h_bucket{function=\"f\",le=\"0.5\"} 7\nh_bucket{le=\"+Inf\"} 9\n");
}

}  // namespace
}  // namespace tinyfaas::metrics
