#include "proxy/router.hpp"

namespace tinyfaas {

void Router::publish(const std::string& name, InstanceSet instances) {
  routes_[name].instances = std::move(instances);
}

void Router::remove(std::string_view name) {
  if (auto it = routes_.find(name); it != routes_.end()) routes_.erase(it);
}

bool Router::contains(std::string_view name) const { return routes_.find(name) != routes_.end(); }

Router::Pick Router::pick(std::string_view name) {
  auto it = routes_.find(name);
  if (it == routes_.end()) return {};
  Entry& entry = it->second;
  const std::size_t count = entry.instances.size();
  if (count == 0) return {true, nullptr};
  const std::size_t start = entry.next % count;
  std::size_t best = start;
  for (std::size_t i = 1; i < count; ++i) {
    const std::size_t candidate = (start + i) % count;
    if (entry.instances[candidate]->outstanding() < entry.instances[best]->outstanding()) best = candidate;
  }
  // The next search starts after the winner, so tied instances take turns
  // even when a busy one sits between them.
  entry.next = best + 1;
  return {true, entry.instances[best]};
}

}  // namespace tinyfaas
