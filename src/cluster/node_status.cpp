#include "cluster/node_status.hpp"

#include <nlohmann/json.hpp>

namespace tinyfaas::cluster {

using nlohmann::json;

std::string statusJson(const NodeStatus& s) {
  json failures = json::object();
  for (const auto& [name, failure] : s.failures)
    failures[name] = {{"version", failure.version}, {"error", failure.error}, {"user_error", failure.userError}};
  json out{{"name", s.name},
           {"instance", s.instance},
           {"last_seen_ms", s.lastSeenMs},
           {"functions", s.functions},
           {"versions", s.versions},
           {"failures", failures},
           {"memory_budget_mb", s.memoryBudgetMb},
           {"reserved_mb", s.reservedMb}};
  if (s.memoryBytes) out["memory_bytes"] = *s.memoryBytes;
  return out.dump();
}

Result<NodeStatus> parseStatus(std::string_view text) {
  const json d = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!d.is_object()) return Failed{"not a node status"};
  NodeStatus s;
  try {
    s.name = d.at("name").get<std::string>();
    s.instance = d.value("instance", "");
    s.lastSeenMs = d.value("last_seen_ms", std::int64_t{0});
    s.functions = d.value("functions", std::vector<std::string>{});
    s.versions = d.value("versions", std::map<std::string, std::string>{});
    const json failures = d.value("failures", json::object());
    for (const auto& [name, failure] : failures.items())
      s.failures[name] = {failure.value("version", ""), failure.value("error", ""), failure.value("user_error", true)};
    s.memoryBudgetMb = d.value("memory_budget_mb", 0);
    s.reservedMb = d.value("reserved_mb", 0LL);
    if (auto it = d.find("memory_bytes"); it != d.end() && it->is_number_unsigned())
      s.memoryBytes = it->get<std::uint64_t>();
  } catch (const json::exception& e) {
    return Failed{std::string("bad node status: ") + e.what()};
  }
  return Result<NodeStatus>(boost::system::in_place_value, std::move(s));
}

Result<bool> nameInUse(KvTransport& kv, const std::string& name, std::chrono::milliseconds watch,
                       const std::function<void(std::chrono::milliseconds)>& sleep) {
  auto before = kv.get(Bucket::nodes, name);
  if (!before) return Failed{before.error()};
  if (!*before) return false;
  sleep(watch);
  auto after = kv.get(Bucket::nodes, name);
  if (!after) return Failed{after.error()};
  return *after && (*after)->revision != (*before)->revision;
}

}  // namespace tinyfaas::cluster
