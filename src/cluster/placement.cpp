#include "cluster/placement.hpp"

#include <algorithm>
#include <cstdint>
#include <tuple>

namespace tinyfaas::cluster {

namespace {

// FNV-1a: the same on every node and build (std::hash need not be).
std::uint64_t stableHash(std::string_view text) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

bool fits(const Candidate& node, const std::string& function, int memoryMb) {
  if (node.budgetMb <= 0) return true;
  const bool runs = std::find(node.running.begin(), node.running.end(), function) != node.running.end();
  const long long free = node.budgetMb - node.reservedMb + (runs ? memoryMb : 0);
  return free >= memoryMb;
}

}  // namespace

std::vector<std::string> place(const std::string& function, int count, int memoryMb,
                               const std::vector<Candidate>& nodes) {
  std::vector<std::tuple<bool, std::uint64_t, std::string>> ranked;
  for (const auto& node : nodes) {
    if (!node.up) continue;
    ranked.emplace_back(!fits(node, function, memoryMb), stableHash(function + "/" + node.name), node.name);
  }
  // Fitting nodes first, then the highest hash (negated by sorting descending on it).
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    if (std::get<0>(a) != std::get<0>(b)) return !std::get<0>(a);
    if (std::get<1>(a) != std::get<1>(b)) return std::get<1>(a) > std::get<1>(b);
    return std::get<2>(a) < std::get<2>(b);
  });
  std::vector<std::string> chosen;
  for (const auto& entry : ranked) {
    if (static_cast<int>(chosen.size()) >= count) break;
    chosen.push_back(std::get<2>(entry));
  }
  return chosen;
}

bool placedOn(const FunctionRecord& record, const std::vector<Candidate>& nodes, const std::string& self) {
  if (record.nodes <= 0) return true;
  const auto chosen = place(record.config.name, record.nodes, record.config.limits.memoryMb, nodes);
  return std::find(chosen.begin(), chosen.end(), self) != chosen.end();
}

Plan plan(const std::map<std::string, FunctionRecord>& records, const std::vector<Candidate>& nodes,
          const std::string& self, const std::map<std::string, std::string>& applied,
          const std::map<std::string, std::string>& failed, bool settled) {
  Plan out;
  for (const auto& [name, record] : records) {
    const auto here = applied.find(name);
    if (placedOn(record, nodes, self)) {
      const auto failure = failed.find(name);
      const bool current = here != applied.end() && here->second == record.version;
      const bool failedBefore = failure != failed.end() && failure->second == record.version;
      const bool newHere = here == applied.end() && record.nodes > 0;
      if (!current && !failedBefore && (settled || !newHere)) out.deploy.push_back(record);
    } else if (here != applied.end()) {
      out.remove.push_back(name);
    }
  }
  for (const auto& [name, version] : applied) {
    if (!records.contains(name)) out.remove.push_back(name);
  }
  return out;
}

}  // namespace tinyfaas::cluster
