#include "cli/function_table.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <vector>

#include <nlohmann/json.hpp>

namespace tinyfaas::cli {

namespace {

std::string printf1(const char* format, double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

std::string count(const nlohmann::json& value) { return value.is_number() ? value.dump() : "-"; }

}  // namespace

std::string formatMillis(double ms) {
  if (ms >= 1000) return formatSeconds(ms / 1000);
  if (ms >= 100) return printf1("%.0f ms", ms);
  if (ms >= 10) return printf1("%.1f ms", ms);
  if (ms >= 1) return printf1("%.2f ms", ms);
  return printf1("%.0f µs", ms * 1000);
}

std::string formatSeconds(double seconds) {
  if (seconds < 1) return formatMillis(seconds * 1000);
  if (seconds >= 100) return printf1("%.0f s", seconds);
  if (seconds >= 10) return printf1("%.1f s", seconds);
  return printf1("%.2f s", seconds);
}

std::string functionTable(const nlohmann::json& functions) {
  using Row = std::array<std::string, 6>;
  std::vector<Row> rows{{"NAME", "RUNTIME", "INSTANCES", "CALLS", "ERRORS", "P50"}};
  std::string notes;
  for (const auto& f : functions) {
    // A record the daemon could not read at start: nothing runs, the name stays taken.
    if (f.value("state", "") == "quarantined") {
      const std::string name = f.value("name", "?");
      rows.push_back({name, "-", "quarantined", "-", "-", "-"});
      notes += name + " is quarantined: " + f.value("reason", "no reason given") + "; an admin's upload of " + name +
               " replaces it, `tinyfaas delete " + name + "` removes it\n";
      continue;
    }
    const auto& instances = f.value("instances", nlohmann::json::object());
    const auto p50 = f.value("latency_ms", nlohmann::json::object()).value("p50", nlohmann::json());
    // Functions that scale say why they want what they want: "1/3 load".
    const std::string reason = instances.value("reason", "fixed");
    rows.push_back({f.value("name", "?"), f.value("runtime", "?"),
                    count(instances.value("healthy", nlohmann::json())) + "/" +
                        count(instances.value("desired", nlohmann::json())) + (reason == "fixed" ? "" : " " + reason),
                    count(f.value("calls", nlohmann::json())), count(f.value("errors", nlohmann::json())),
                    p50.is_number() ? formatMillis(p50.get<double>()) : "-"});
  }
  // Display width: µ is two bytes but one column.
  auto width = [](const std::string& cell) {
    return static_cast<std::size_t>(std::count_if(cell.begin(), cell.end(), [](char c) { return (c & 0xC0) != 0x80; }));
  };
  std::array<std::size_t, 6> widths{};
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], width(row[i]));
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - width(row[i]) + 2, ' ');
    }
    out += line + "\n";
  }
  if (!notes.empty()) out += "\n" + notes;
  return out;
}

}  // namespace tinyfaas::cli
