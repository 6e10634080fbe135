// Supervision of instances: starts them and waits until they are healthy,
// restarts the ones that die (with backoff), replaces stuck ones, drains and
// stops them.

#include <algorithm>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "manager/deployment.hpp"
#include "manager/health_probe.hpp"
#include "util/async_sync.hpp"

namespace tinyfaas {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

asio::awaitable<boost::system::result<void, std::string>> FunctionManager::startSlot(
    std::shared_ptr<Deployment> deployment, Slot& slot) {
  // Counted until this returns (the hold lives in the coroutine frame):
  // a start a shutdown overtook stops its instance itself once the backend
  // answers, and shutdown waits for that (a container would outlive us).
  WaitGroup::Hold counted(starting_);
  InstanceSpec spec;
  spec.function = deployment->config.name;
  spec.instanceId = deployment->config.name + "." + std::to_string(nextInstance_++);
  spec.runtime = deployment->config.runtime;
  spec.codeDir = deployment->codeDir;
  spec.socketDir = options_.stateDir / "run" / spec.instanceId;
  spec.env = deployment->config.env;
  spec.limits = deployment->config.limits;

  if (handlerSocketPath(spec.socketDir).string().size() >= kMaxSocketPath)
    co_return "socket path " + handlerSocketPath(spec.socketDir).string() +
        " is longer than Unix sockets allow; use a shorter --state-dir or function name";
  slot.healthy = false;
  slot.exited = false;
  slot.exitReason.clear();
  const std::string id = spec.instanceId;
  // Named, not a temporary in the co_await expression: GCC 12 destroys a
  // lambda converted to std::function there twice (here: a weak_ptr's
  // count, i.e. heap corruption at every instance start).
  ExitCallback onExit = [this, weak = std::weak_ptr<Deployment>(deployment), slotPtr = &slot](std::string how) {
    onInstanceExit(weak, slotPtr, std::move(how));
  };
  auto started = co_await backend_.start(std::move(spec), std::move(onExit));
  if (!started) co_return started.error();
  slot.instance = std::move(*started);
  slot.startedAt = Clock::now();
  if (deployment->retired || tasks_.cancelled()) {  // removed, replaced or shut down meanwhile
    co_await stopSlot(slot);
    co_return "instance " + id + " is no longer needed";
  }

  const bool healthy = co_await waitHealthy(slot);
  // A shutdown or remove() may have stopped and taken the instance while
  // the probe was out (seen under ASan: a replacement starting at SIGTERM).
  if (!slot.instance || deployment->retired || tasks_.cancelled()) {
    co_await stopSlot(slot);
    co_return "instance " + id + " is no longer needed";
  }
  if (!healthy) {
    std::string reason = slot.exited ? "instance " + id + " " + slot.exitReason
                                     : "instance " + id + " did not answer /health within " +
                                           std::to_string(options_.healthTimeout.count()) + " s";
    co_await stopSlot(slot);
    co_return reason;
  }
  InstanceEndpoint endpoint{id, slot.instance->socketPath(), options_.upstream};
  endpoint.options.framed = speaksHandlerFrames(deployment->config.runtime);
  const CallLimits& calls = deployment->config.calls;
  if (calls.timeout.count() > 0) endpoint.options.callTimeout = calls.timeout;
  endpoint.options.maxConcurrentCalls = static_cast<std::size_t>(calls.concurrency);
  endpoint.options.maxQueuedCalls = static_cast<std::size_t>(calls.queue);
  slot.endpoint = std::move(endpoint);
  slot.healthy = true;
  co_return boost::system::result<void, std::string>{};
}

asio::awaitable<void> FunctionManager::startSlotAndReport(std::shared_ptr<Deployment> deployment, Slot& slot,
                                                          std::string& firstError) {
  auto started = co_await startSlot(std::move(deployment), slot);
  if (!started && firstError.empty()) firstError = started.error();
}

asio::awaitable<bool> FunctionManager::waitHealthy(Slot& slot) {
  if (slot.instance && slot.instance->saidReady() && !slot.exited) co_return true;
  const auto deadline = Clock::now() + options_.healthTimeout;
  // Short first steps: most handlers are up within tens of milliseconds.
  auto step = std::chrono::milliseconds(5);
  while (Clock::now() < deadline) {
    // A remove() during a restart's wait stops and takes the instance.
    if (slot.exited || !slot.instance) co_return false;
    if (co_await probeHealth(executor_, slot.instance->socketPath(), std::chrono::seconds(2))) co_return true;
    if (!co_await tasks_.sleep(step)) co_return false;  // shutting down
    step = std::min(step * 2, std::chrono::milliseconds(100));
  }
  co_return false;
}

void FunctionManager::onInstanceExit(std::weak_ptr<Deployment> weak, Slot* slot, std::string how) {
  slot->exited = true;
  slot->exitReason = how;
  auto deployment = weak.lock();
  if (!deployment || deployment->retired) return;
  const std::string id = slot->instance ? slot->instance->id() : "?";
  logs_.append(deployment->config.name, id, "tinyfaas: instance " + how);
  if (!slot->healthy || slot->draining) return;  // startSlot or drainInstance reports it
  spdlog::warn("instance {} of {} {}; restarting", id, deployment->config.name, how);
  slot->healthy = false;
  tasks_.spawn(restartSlot(std::move(deployment), slot));
}

void FunctionManager::onInstanceStuck(const std::string& id) {
  // Instance ids are "NAME.N".
  auto it = functions_.find(std::string_view(id).substr(0, id.rfind('.')));
  if (it == functions_.end() || it->second->retired || tasks_.cancelled()) return;
  std::shared_ptr<Deployment> deployment = it->second;
  Slot* slot = nullptr;
  for (auto& candidate : deployment->slots) {
    if (candidate->instance && candidate->instance->id() == id) slot = candidate.get();
  }
  // Restarted, stopped, replaced or being replaced since the data plane noticed.
  if (!slot || !slot->healthy || slot->draining) return;
  std::ostringstream grace;  // "5", "0.5"
  grace << std::chrono::duration<double>(options_.upstream.timeoutGrace).count();
  const std::string why = "a call was still running " + grace.str() + " s after its timeout";
  spdlog::warn("instance {} of {} is replaced: {}", id, deployment->config.name, why);
  logs_.append(deployment->config.name, id, "tinyfaas: instance " + id + " replaced: " + why);
  // Draining: left out of the next publish and out of scaling's count, and
  // its exit from here on is no crash to restart.
  slot->draining = true;
  tasks_.spawn(replaceStuck(std::move(deployment), slot));
}

// A new instance first, so that the function keeps its instance count; then
// the routes swap, and the stuck one is stopped with whatever still runs in
// it once its other calls are done (at most one grace period). Not a
// failure: no backoff, no crash loop.
asio::awaitable<void> FunctionManager::replaceStuck(std::shared_ptr<Deployment> deployment, Slot* stuck) {
  if (deployment->retired) co_return;  // retire() stops the stuck one with the rest
  Slot* fresh = nullptr;
  for (auto& candidate : deployment->slots) {
    if (candidate->parked) fresh = candidate.get();
  }
  if (!fresh) fresh = deployment->slots.emplace_back(std::make_unique<Slot>()).get();
  fresh->parked = false;
  auto started = co_await startLate(deployment, *fresh);
  if (!started) co_return;
  co_await publish(*deployment);
  // Other calls still running there (a python instance serves on beside a
  // sleeping call) get as long as the stuck one had to finish.
  co_await drain(*stuck, Clock::now() + options_.upstream.timeoutGrace);
  co_await stopSlot(*stuck);
  stuck->draining = false;
  stuck->parked = true;
  if (!*started) {
    const std::string& name = deployment->config.name;
    spdlog::warn("replacing a stuck instance of {} failed: {}", name, started->error());
    logs_.append(name, "tinyfaas", "replacing a stuck instance failed: " + started->error());
    co_await restartSlot(std::move(deployment), fresh);
  }
}

asio::awaitable<void> FunctionManager::restartSlot(std::shared_ptr<Deployment> deployment, Slot* slot) {
  co_await publish(*deployment);  // without the dead instance
  if (Clock::now() - slot->startedAt > options_.stableAfter) slot->failures = 0;
  const std::string& name = deployment->config.name;
  for (;;) {
    ++slot->failures;
    ++slot->restarts;
    ++deployment->restarts;
    auto delay = options_.restartBackoffMin * (1 << std::min(slot->failures - 1, 16));
    delay = std::min(delay, options_.restartBackoffMax);
    std::string note =
        "restart " + std::to_string(slot->restarts) + " of an instance in " + std::to_string(delay.count()) + " ms";
    if (slot->failures >= kCrashLoopFailures) {
      note += " (crash loop: " + std::to_string(slot->failures) + " failures in a row)";
      spdlog::warn("{} is in a crash loop: {}", name, note);
    }
    logs_.append(name, "tinyfaas", note);
    if (!co_await tasks_.sleep(delay) || deployment->retired) co_return;
    co_await stopSlot(*slot);
    auto started = co_await startLate(deployment, *slot);
    if (!started) co_return;
    if (*started) {
      spdlog::info("instance {} of {} is serving again", slot->instance->id(), name);
      logs_.append(name, slot->instance->id(),
                   "tinyfaas: serving again after restart " + std::to_string(slot->restarts));
      co_await publish(*deployment);
      co_return;
    }
    spdlog::warn("restarting an instance of {} failed ({} in a row): {}", name, slot->failures, started->error());
    logs_.append(name, "tinyfaas", "restart failed: " + started->error());
  }
}

asio::awaitable<void> FunctionManager::drain(std::vector<std::string> instanceIds, Clock::time_point deadline) {
  if (instanceIds.empty()) co_return;
  // The router waits on the data plane and wakes this loop once: no polling.
  AsyncEvent done(executor_);
  asio::co_spawn(dataPlane_, router_.drain(std::move(instanceIds), deadline),
                 [this, &done](std::exception_ptr) { asio::post(executor_, [&done] { done.set(); }); });
  co_await done.wait();
}

asio::awaitable<void> FunctionManager::drain(const Slot& slot, Clock::time_point deadline) {
  if (!slot.endpoint) co_return;
  std::vector<std::string> ids{slot.endpoint->id};
  co_await drain(std::move(ids), deadline);
}

asio::awaitable<void> FunctionManager::stopSlot(Slot& slot) {
  slot.healthy = false;
  if (slot.endpoint) asio::post(dataPlane_, [this, id = std::move(slot.endpoint->id)] { router_.release(id); });
  slot.endpoint.reset();
  auto instance = std::move(slot.instance);
  if (instance) co_await backend_.stop(*instance);
}

asio::awaitable<std::optional<boost::system::result<void, std::string>>> FunctionManager::startLate(
    std::shared_ptr<Deployment> deployment, Slot& slot) {
  auto started = co_await startSlot(deployment, slot);
  if (deployment->retired) {
    co_await stopSlot(slot);
    co_return std::nullopt;
  }
  co_return started;
}

}  // namespace tinyfaas
