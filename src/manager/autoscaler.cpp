// Autoscaling: samples the calls in flight on the data plane, lets the
// ScalingPlanner decide, and adds or drains instances within the memory budget.

#include <algorithm>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "manager/deployment.hpp"
#include "util/run_on.hpp"

namespace tinyfaas {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

void FunctionManager::startScaling() {
  tasks_.spawn(scaleLoop());
  tasks_.spawn(memoryLoop());
}

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

int ceilMb(std::uint64_t bytes) { return static_cast<int>((bytes + kMiB - 1) / kMiB); }

}  // namespace

int FunctionManager::chargeMb(const Deployment& deployment) const {
  if (options_.budgetCounts == ManagerOptions::BudgetCounts::measured && deployment.measuredMb)
    return *deployment.measuredMb;
  return deployment.config.limits.memoryMb;
}

boost::system::result<void, std::string> FunctionManager::checkBudget(const FunctionConfig& config) const {
  if (options_.memoryBudgetMb <= 0) return {};
  long long reserved = 0;
  for (const auto& [name, deployment] : functions_) {
    if (name != config.name)
      reserved += static_cast<long long>(floorInstances(deployment->config)) * chargeMb(*deployment);
  }
  // New code: nothing measured yet.
  const long long needs = static_cast<long long>(floorInstances(config)) * config.limits.memoryMb;
  if (reserved + needs <= options_.memoryBudgetMb) return {};
  return "the node's memory budget is " + std::to_string(options_.memoryBudgetMb) + " MB and other functions' " +
         "minimum instances take " + std::to_string(reserved) + " MB; this function's minimum needs " +
         std::to_string(needs) + " MB (lower min_instances, threads or memory_mb)";
}

long long FunctionManager::occupiedMb() const {
  long long total = 0;
  for (const auto& [name, deployment] : functions_) {
    const int estimate = chargeMb(*deployment);
    for (const auto& slot : deployment->slots) {
      if (slot->parked) continue;
      const bool measured = options_.budgetCounts == ManagerOptions::BudgetCounts::measured && slot->memoryBytes;
      total += measured ? std::min(ceilMb(*slot->memoryBytes), deployment->config.limits.memoryMb) : estimate;
    }
  }
  return total;
}

asio::awaitable<void> FunctionManager::scaleLoop() {
  auto sample = [this] { return router_.load(); };
  for (;;) {
    // Cut short by a held call (Router::onHeld) and by shutdown.
    if (!std::exchange(scaleSoon_, false)) {
      scaleTimer_.expires_after(options_.scaleInterval);
      co_await scaleTimer_.async_wait(asio::as_tuple(asio::use_awaitable));
      scaleSoon_ = false;
    }
    if (tasks_.cancelled()) break;
    const RouterLoad load = co_await runOn(dataPlane_, sample);
    if (tasks_.cancelled()) break;
    scaleOnce(load);
  }
}

asio::awaitable<void> FunctionManager::memoryLoop() {
  for (;;) {
    const bool slept = co_await tasks_.sleep(options_.memoryInterval);
    if (!slept || tasks_.cancelled()) break;
    measureMemory();
  }
}

// On the management thread, which owns the slots: /proc reads take tens of
// microseconds per process, a few milliseconds for a node's instances.
void FunctionManager::measureMemory() {
  for (const auto& entry : functions_) {
    Deployment& deployment = *entry.second;
    std::uint64_t sum = 0;
    std::uint64_t measured = 0;
    for (const auto& slot : deployment.slots) {
      const pid_t pid = slot->healthy && slot->instance ? slot->instance->hostPid() : 0;
      slot->memoryBytes = pid > 0 ? options_.measure(pid) : std::nullopt;
      if (slot->memoryBytes) {
        sum += *slot->memoryBytes;
        ++measured;
      }
    }
    // Kept while the function is at zero: its next instance will use as much.
    if (measured > 0) deployment.measuredMb = std::clamp(ceilMb(sum / measured), 1, deployment.config.limits.memoryMb);
  }
}

void FunctionManager::scaleOnce(const RouterLoad& load) {
  auto callsOn = [&load](const Slot& slot) -> std::size_t {
    if (!slot.endpoint) return 0;
    auto it = load.calls.find(slot.endpoint->id);
    return it == load.calls.end() ? 0 : it->second;
  };
  std::vector<ScalingPlanner::Input> inputs;
  std::vector<std::shared_ptr<Deployment>> deployments;
  for (const auto& [name, deployment] : functions_) {
    if (!deployment->ready || deployment->retired) continue;
    ScalingPlanner::Input& input = inputs.emplace_back();
    input.name = name;
    input.policy = deployment->config.scaling;
    input.fixedInstances = deployment->config.threads;
    input.memoryMb = chargeMb(*deployment);
    for (const auto& slot : deployment->slots) {
      if (slot->parked || slot->draining) continue;
      ++input.current;
      input.inFlight += callsOn(*slot);
    }
    if (auto held = load.held.find(name); held != load.held.end()) input.inFlight += held->second;
    deployments.push_back(deployment);
  }
  const auto decisions = planner_.decide(inputs, options_.now());

  // Drains first: the memory they free counts only once they stopped, and
  // the starts below wait for it.
  for (std::size_t i = 0; i < deployments.size(); ++i) {
    Deployment& deployment = *deployments[i];
    deployment.desired = decisions[i].desired;
    deployment.reason = decisions[i].reason;
    if (!deployment.config.scaling.dynamic) continue;
    for (int surplus = inputs[i].current - decisions[i].desired; surplus > 0; --surplus) {
      // The serving instance with the fewest calls drains fastest.
      Slot* quietest = nullptr;
      for (auto& slot : deployment.slots) {
        if (!slot->healthy || slot->draining || slot->parked || !slot->endpoint) continue;
        if (!quietest || callsOn(*slot) < callsOn(*quietest)) quietest = slot.get();
      }
      if (!quietest) break;  // the rest are starting or restarting: next round
      quietest->draining = true;
      tasks_.spawn(drainInstance(deployments[i], quietest));
    }
  }
  long long occupied = occupiedMb();
  for (std::size_t i = 0; i < deployments.size(); ++i) {
    Deployment& deployment = *deployments[i];
    if (!deployment.config.scaling.dynamic) continue;
    const int memoryMb = chargeMb(deployment);
    for (int missing = decisions[i].desired - inputs[i].current; missing > 0; --missing) {
      if (options_.memoryBudgetMb > 0 && occupied + memoryMb > options_.memoryBudgetMb) break;
      Slot* slot = nullptr;
      for (auto& candidate : deployment.slots) {
        if (candidate->parked) slot = candidate.get();
      }
      if (!slot) slot = deployment.slots.emplace_back(std::make_unique<Slot>()).get();
      slot->parked = false;
      occupied += memoryMb;
      tasks_.spawn(addInstance(deployments[i], slot));
    }
  }
}

asio::awaitable<void> FunctionManager::addInstance(std::shared_ptr<Deployment> deployment, Slot* slot) {
  auto started = co_await startLate(deployment, *slot);
  if (!started) co_return;
  if (!*started) {
    spdlog::warn("scaling up {} failed: {}", deployment->config.name, started->error());
    logs_.append(deployment->config.name, "tinyfaas", "scaling up failed: " + started->error());
    // Retried with the crash backoff, like an instance that died.
    co_await restartSlot(std::move(deployment), slot);
    co_return;
  }
  co_await publish(*deployment);
}

asio::awaitable<void> FunctionManager::drainInstance(std::shared_ptr<Deployment> deployment, Slot* slot) {
  co_await publish(*deployment);  // no new calls from here on
  co_await drain(*slot, Clock::now() + options_.drainTimeout);
  co_await stopSlot(*slot);
  slot->draining = false;
  slot->parked = true;
}

}  // namespace tinyfaas
