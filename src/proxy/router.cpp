#include "proxy/router.hpp"

#include <utility>

#include <boost/asio/this_coro.hpp>

#include "core/async.hpp"

namespace tinyfaas {

void Router::wake(Entry& entry) {
  for (auto* timer : std::exchange(entry.waiters, {})) timer->cancel();
}

void Router::publish(const std::string& name, InstanceSet instances, bool holdsCalls) {
  Entry& entry = routes_[name];
  entry.instances = std::move(instances);
  entry.holdsCalls = holdsCalls;
  if (!entry.instances.empty() || !entry.holdsCalls) wake(entry);
}

void Router::publishInstances(const boost::asio::any_io_executor& executor, const std::string& name,
                              const std::vector<InstanceEndpoint>& instances, bool holdsCalls) {
  InstanceSet set;
  set.reserve(instances.size());
  for (const InstanceEndpoint& instance : instances) {
    auto& upstream = upstreams_[instance.id];
    if (!upstream) {
      Upstream::StuckCallback stuck = [this, id = instance.id] {
        if (onStuck_) onStuck_(id);
      };
      upstream =
          std::make_shared<Upstream>(executor, instance.id, instance.socketPath, instance.options, std::move(stuck));
    }
    set.push_back(upstream);
  }
  publish(name, std::move(set), holdsCalls);
}

void Router::release(const std::string& instanceId) { upstreams_.erase(instanceId); }

boost::asio::awaitable<void> Router::drain(std::vector<std::string> instanceIds,
                                           std::chrono::steady_clock::time_point deadline) {
  for (const auto& id : instanceIds) {
    auto it = upstreams_.find(id);
    if (it == upstreams_.end()) continue;
    // Held: a release() meanwhile must not destroy what this waits on.
    std::shared_ptr<Upstream> upstream = it->second;
    co_await upstream->drained(deadline);
  }
}

RouterLoad Router::load() const {
  RouterLoad out;
  for (const auto& [id, upstream] : upstreams_) out.calls.emplace(id, upstream->outstanding());
  for (const auto& [name, entry] : routes_) {
    if (!entry.waiters.empty()) out.held.emplace(name, entry.waiters.size());
  }
  return out;
}

void Router::remove(std::string_view name) {
  if (auto it = routes_.find(name); it != routes_.end()) {
    wake(it->second);
    routes_.erase(it);
  }
}

void Router::clear() {
  for (auto& entry : routes_) wake(entry.second);
  routes_.clear();
}

bool Router::contains(std::string_view name) const { return routes_.find(name) != routes_.end(); }

Router::Pick Router::pick(std::string_view name) {
  auto it = routes_.find(name);
  if (it == routes_.end()) return {};
  Entry& entry = it->second;
  const std::size_t count = entry.instances.size();
  if (count == 0) return {true, nullptr};
  // A stuck instance (a call outlived its timeout's grace there) only gets
  // calls when every instance is stuck: it is about to be replaced.
  const auto load = [&entry](std::size_t i) {
    const Upstream& upstream = *entry.instances[i];
    return std::pair{upstream.stuck(), upstream.outstanding()};
  };
  const std::size_t start = entry.next % count;
  std::size_t best = start;
  for (std::size_t i = 1; i < count; ++i) {
    const std::size_t candidate = (start + i) % count;
    if (load(candidate) < load(best)) best = candidate;
  }
  // The next search starts after the winner, so tied instances take turns
  // even when a busy one sits between them.
  entry.next = best + 1;
  return {true, entry.instances[best]};
}

boost::asio::awaitable<Router::Pick> Router::pickOrWait(std::string_view name, std::chrono::milliseconds limit) {
  Pick first = pick(name);
  if (!first.known || first.upstream) co_return first;
  // A copy: the caller's name may not outlive the wait.
  const std::string key(name);
  if (!routes_.find(key)->second.holdsCalls) co_return first;
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, limit);
  // Listed, it counts as held in load() until a publish wakes it.
  auto& waiters = routes_.find(key)->second.waiters;
  waiters.push_back(&timer);
  if (waiters.size() == 1 && onHeld_) onHeld_();
  co_await timer.async_wait(useTuple);
  // Still listed after a timeout; the entry may be gone after a remove.
  if (auto after = routes_.find(key); after != routes_.end()) std::erase(after->second.waiters, &timer);
  co_return pick(key);
}

}  // namespace tinyfaas
