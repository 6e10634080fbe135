#include "metrics/prometheus_text.hpp"

#include <charconv>
#include <cmath>

namespace tinyfaas::metrics {

std::string escapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string formatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[512];  // the longest fixed form of a double fits
  // Plain decimals (0.0001, not 1e-04), as people read bucket bounds.
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed);
  return std::string(buffer, ec == std::errc{} ? end : buffer);
}

namespace {

// HELP text escapes only backslash and line feed.
std::string escapeHelp(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

void PrometheusText::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += escapeHelp(help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void PrometheusText::begin(std::string_view name, Labels labels, std::string_view le) {
  out_ += name;
  if (labels.size() == 0 && le.empty()) {
    out_ += ' ';
    return;
  }
  out_ += '{';
  bool first = true;
  auto add = [&](std::string_view key, std::string_view value) {
    if (!first) out_ += ',';
    first = false;
    out_ += key;
    out_ += "=\"";
    out_ += escapeLabelValue(value);
    out_ += '"';
  };
  for (const auto& [key, value] : labels) add(key, value);
  if (!le.empty()) add("le", le);
  out_ += "} ";
}

void PrometheusText::sample(std::string_view name, Labels labels, std::uint64_t value) {
  begin(name, labels);
  out_ += std::to_string(value);
  out_ += '\n';
}

void PrometheusText::sample(std::string_view name, Labels labels, double value) {
  begin(name, labels);
  out_ += formatValue(value);
  out_ += '\n';
}

void PrometheusText::bucket(std::string_view name, Labels labels, double upperBound, std::uint64_t cumulative) {
  begin(name, labels, formatValue(upperBound));
  out_ += std::to_string(cumulative);
  out_ += '\n';
}

}  // namespace tinyfaas::metrics
