#include "proxy/router.hpp"

#include <utility>

#include <boost/asio/this_coro.hpp>

#include "core/async.hpp"

namespace tinyfaas {

void Router::wake(Entry& entry) {
  for (auto* timer : std::exchange(entry.waiters, {})) timer->cancel();
}

void Router::publish(const std::string& name, InstanceSet instances,
                     std::shared_ptr<std::atomic<std::size_t>> heldCalls) {
  Entry& entry = routes_[name];
  entry.instances = std::move(instances);
  entry.heldCalls = std::move(heldCalls);
  if (!entry.instances.empty() || !entry.heldCalls) wake(entry);
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
  auto held = routes_.find(key)->second.heldCalls;
  if (!held) co_return first;
  held->fetch_add(1, std::memory_order_relaxed);
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, limit);
  routes_.find(key)->second.waiters.push_back(&timer);
  co_await timer.async_wait(useTuple);
  held->fetch_sub(1, std::memory_order_relaxed);
  // Still listed after a timeout; the entry may be gone after a remove.
  if (auto after = routes_.find(key); after != routes_.end()) std::erase(after->second.waiters, &timer);
  co_return pick(key);
}

}  // namespace tinyfaas
