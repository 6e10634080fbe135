// FunctionManager's deploys, removals, restore and shutdown; its other jobs
// are in deploy_pipeline.cpp, instance_supervisor.cpp and autoscaler.cpp.
#include "manager/function_manager.hpp"

#include <algorithm>
#include <set>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "core/async.hpp"
#include "core/function_name.hpp"
#include "manager/deployment.hpp"
#include "sandbox/code_permissions.hpp"
#include "util/async_sync.hpp"
#include "util/private_dir.hpp"
#include "util/run_on.hpp"

namespace tinyfaas {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

FunctionManager::FunctionManager(asio::any_io_executor executor, asio::any_io_executor dataPlane, Router& router,
                                 Backend& backend, LogStore& logs, ManagerOptions options)
    : executor_(executor),
      dataPlane_(std::move(dataPlane)),
      router_(router),
      backend_(backend),
      logs_(logs),
      options_(std::move(options)),
      store_(options_.stateDir / "functions"),
      installer_(executor,
                 InstallerOptions{options_.npm, options_.python, options_.go, options_.goProxy, options_.goCacheBytes,
                                  options_.runtimesDir, options_.installTimeout, options_.identity, options_.offline,
                                  options_.installScripts, 512u << 20, options_.stateDir, options_.cgroups}),
      planner_(options_.memoryBudgetMb),
      tasks_(executor),
      starting_(executor),
      scaleTimer_(executor) {
  // The router calls this on the data plane; the slots are this thread's.
  Router::StuckCallback onStuck = [this](const std::string& id) {
    asio::post(executor_, [this, id] { onInstanceStuck(id); });
  };
  // The router, not this: a manager destroyed before the loop runs (tests)
  // leaves the registration valid.
  // A call held for a function scaled to zero starts an instance now, not
  // at the scaler's next sample.
  std::function<void()> onHeld = [this] {
    asio::post(executor_, [this] {
      scaleSoon_ = true;
      scaleTimer_.cancel();
    });
  };
  asio::post(dataPlane_, [&router = router_, onStuck = std::move(onStuck), onHeld = std::move(onHeld)]() mutable {
    router.onStuck(std::move(onStuck));
    router.onHeld(std::move(onHeld));
  });
}

FunctionManager::~FunctionManager() = default;

boost::system::result<void, std::string> FunctionManager::prepareStateDir() {
  if (auto made = makePrivateDirectory(options_.stateDir); !made) return made.error();
  // The state dir itself lets the sandbox's group pass; what is above it is
  // the operator's. bwrap of a networked install resolves the code's
  // descriptor by path as the sandbox user and stops there otherwise.
  if (options_.identity.switchUser && !sandbox::passableByOthers(options_.stateDir))
    spdlog::warn(
        "the sandbox user cannot pass through a folder above the state directory {}: installs that need "
        "the network will fail (bwrap: Permission denied); let others search it (chmod o+x) or choose "
        "another --state-dir",
        options_.stateDir.string());
  std::error_code ec;
  // Sockets of instances that died with an earlier run.
  fs::remove_all(options_.stateDir / "run", ec);
  if (ec) return "cannot clean " + (options_.stateDir / "run").string() + ": " + ec.message();
  for (const char* sub : {"functions", "run"}) {
    if (auto made = makePrivateDirectory(options_.stateDir / sub); !made) return made.error();
  }
  // sockaddr_un holds 108 bytes: a long state dir leaves less room for
  // "run/NAME.N/handler.sock". Refuse what cannot work for any name; long
  // names are refused at deploy time with the same explanation.
  auto socketFor = [&](std::size_t nameLength) {
    return handlerSocketPath(options_.stateDir / "run" / (std::string(nameLength, 'x') + ".999999"));
  };
  if (socketFor(1).string().size() >= kMaxSocketPath)
    return "state directory path " + options_.stateDir.string() + " is too long for Unix socket paths";
  if (socketFor(kMaxFunctionNameLength).string().size() >= kMaxSocketPath)
    spdlog::warn("state directory {} is long: function names over {} characters will not deploy",
                 options_.stateDir.string(), kMaxSocketPath - 1 - (socketFor(0).string().size()));

  auto loaded = store_.load();
  if (!loaded) return loaded.error();
  nextVersion_ = std::max(nextVersion_, loaded->nextVersion);
  for (auto& stored : loaded->functions) {
    auto deployment = std::make_shared<Deployment>();
    deployment->config = std::move(stored.config);
    deployment->version = stored.version;
    deployment->versionDir = options_.stateDir / "functions" / deployment->config.name / stored.version;
    deployment->codeDir = (deployment->versionDir / stored.codeSubdir).lexically_normal();
    deployment->created = stored.created;
    deployment->updated = stored.updated;
    // Restored with their minimum: load brings the rest.
    const int instances = floorInstances(deployment->config);
    prepareScaling(*deployment, instances);
    for (int i = 0; i < instances; ++i) deployment->slots.push_back(std::make_unique<Slot>());
    // Code stored by an earlier version, or before sandbox-user changed.
    if (auto shared = shareCode(deployment->versionDir); !shared)
      spdlog::warn("{}: {}", deployment->config.name, shared.error());
    logs_.claim(deployment->config.name, deployment->config.owner);
    functions_[deployment->config.name] = std::move(deployment);
  }
  for (auto& function : loaded->quarantined) quarantined_[function.name] = std::move(function);
  keepWarm();
  if (!functions_.empty()) spdlog::info("state: {} stored function(s) to restore", functions_.size());
  return {};
}

asio::awaitable<void> FunctionManager::restore() {
  auto guard = co_await mutex_.lock();
  std::vector<std::shared_ptr<Deployment>> deployments;
  for (auto& entry : functions_) {
    if (entry.second->ready) continue;  // deployed since
    deployments.push_back(entry.second);
  }
  for (auto& deployment : deployments) co_await publish(*deployment);  // no instance yet: calls get 503, not 404
  std::string ignored;
  WaitGroup starting(executor_);
  for (auto& deployment : deployments) {
    for (auto& slot : deployment->slots) starting.spawn(executor_, startSlotAndReport(deployment, *slot, ignored));
  }
  co_await starting.wait();
  for (auto& deployment : deployments) {
    if (deployment->retired) continue;
    int up = 0;
    for (auto& slot : deployment->slots) {
      if (slot->healthy) {
        ++up;
        continue;
      }
      logs_.append(deployment->config.name, "tinyfaas", "an instance did not start after the restart; retrying");
      tasks_.spawn(restartSlot(deployment, slot.get()));
    }
    deployment->ready = true;
    co_await publish(*deployment);
    spdlog::info("restored {} ({}, {} of {} instance{} up)", deployment->config.name,
                 toString(deployment->config.runtime), up, deployment->slots.size(),
                 deployment->slots.size() == 1 ? "" : "s");
  }
}

std::vector<std::string> FunctionManager::names(const Scope& scope) const {
  std::vector<std::string> out;
  for (const auto& [name, deployment] : functions_) {
    if (scope.covers(deployment->config.owner)) out.push_back(name);
  }
  return out;
}

bool FunctionManager::visible(std::string_view name, const Scope& scope) const {
  const auto it = functions_.find(name);
  return it != functions_.end() && scope.covers(it->second->config.owner);
}

std::vector<QuarantinedFunction> FunctionManager::quarantined(const Scope& scope) const {
  std::vector<QuarantinedFunction> out;
  if (!scope.admin) return out;
  for (const auto& entry : quarantined_) out.push_back(entry.second);
  return out;
}

std::vector<FunctionStatus> FunctionManager::status(const Scope& scope) const {
  std::vector<FunctionStatus> out;
  for (const auto& [name, deployment] : functions_) {
    if (!scope.covers(deployment->config.owner)) continue;
    FunctionStatus& function = out.emplace_back();
    function.name = name;
    function.runtime = deployment->config.runtime;
    function.desired = deployment->desired;
    function.reason = deployment->reason;
    function.scaling = deployment->config.scaling;
    function.healthy = static_cast<int>(std::count_if(deployment->slots.begin(), deployment->slots.end(),
                                                      [](const auto& slot) { return slot->healthy; }));
    function.limits = deployment->config.limits;
    function.limitsUnenforced = backend_.limitsUnenforced();
    function.calls = deployment->config.calls;
    function.triggers = deployment->config.triggers;
    if (function.calls.timeout.count() == 0) function.calls.timeout = options_.upstream.callTimeout;
    for (const auto& var : deployment->config.env) function.envNames.push_back(var.substr(0, var.find('=')));
    function.created = deployment->created;
    function.updated = deployment->updated;
    function.restarts = deployment->restarts;
    function.crashLoop = std::any_of(deployment->slots.begin(), deployment->slots.end(), [](const auto& slot) {
      return !slot->healthy && slot->failures >= kCrashLoopFailures;
    });
    for (const auto& slot : deployment->slots) {
      if (slot->healthy && slot->memoryBytes)
        function.memoryBytes = function.memoryBytes.value_or(0) + *slot->memoryBytes;
      if (const pid_t pid = slot->instance ? slot->instance->hostPid() : 0; pid > 0)
        function.pids.emplace(slot->instance->id(), pid);
    }
  }
  return out;
}

void FunctionManager::keepWarm(std::optional<Runtime> deploying) {
  std::set<Runtime> runtimes;
  if (deploying) runtimes.insert(*deploying);
  for (const auto& entry : functions_) runtimes.insert(entry.second->config.runtime);
  backend_.keepWarm(runtimes);
}

asio::awaitable<boost::system::result<void, DeployError>> FunctionManager::deploy(FunctionConfig config,
                                                                                  std::string zip,
                                                                                  std::string subfolder, Scope scope) {
  const std::string name = config.name;
  auto deployment = std::make_shared<Deployment>();
  deployment->config = std::move(config);
  // Checked now for a quick answer, and again under the lock: the name may
  // be taken while this upload installs.
  auto claimName = [&]() -> std::optional<DeployError> {
    // The reply must not tell whose it is: only that the name is in use.
    const DeployError nameTaken{true, "function name " + name + " is taken; choose another name", true};
    deployment->config.owner = scope.tenant;
    if (auto it = functions_.find(name); it != functions_.end()) {
      if (!scope.covers(it->second->config.owner)) return nameTaken;
      deployment->config.owner = it->second->config.owner;
    }
    // A quarantined record cannot be trusted to say whose the name is.
    if (auto it = quarantined_.find(name); it != quarantined_.end()) {
      if (!scope.admin) return nameTaken;
      if (!it->second.owner.empty()) deployment->config.owner = it->second.owner;
    }
    logs_.claim(name, deployment->config.owner);  // the deploy's own lines are its owner's
    return std::nullopt;
  };
  if (auto taken = claimName()) co_return *taken;
  const std::uint64_t version = nextVersion_++;
  deployment->version = "v" + std::to_string(version);
  deployment->versionDir = store_.versionDir(name, version);

  auto fail = [&](std::string message, bool userError = true) {
    std::error_code ignored;
    fs::remove_all(deployment->versionDir, ignored);
    if (!functions_.contains(name) && !quarantined_.contains(name)) {
      // Only when empty: another upload of this name may be unpacking there.
      fs::remove(options_.stateDir / "functions" / name, ignored);
      // The lines stay for `tinyfaas logs NAME`: they are the uploader's, and
      // a next owner's claim drops them (LogStore::claim).
      logs_.release(name);
    }
    spdlog::warn("deploy of {} failed: {}", name, message);
    return DeployError{userError, std::move(message)};
  };

  // Shutdown cancels installs and stops instances that start late; the
  // uploader hears why, not what that broke.
  auto shuttingDown = [&] {
    DeployError error = fail("tinyFaaS is shutting down; upload again once it is back", false);
    error.shuttingDown = true;
    return error;
  };
  // Unpacking and installing happen before the deploy lock: a slow install
  // of one tenant holds up nobody's deploy, delete or wipe.
  auto prepared = co_await prepareCode(*deployment, std::move(zip), subfolder);
  if (tasks_.cancelled()) co_return shuttingDown();
  if (!prepared) co_return fail(std::move(prepared.error().message), prepared.error().userError);
  const fs::path relative = std::move(*prepared);

  auto guard = co_await mutex_.lock();
  if (tasks_.cancelled()) co_return shuttingDown();
  if (auto taken = claimName()) {
    fail(taken->message);
    co_return *taken;
  }
  if (auto budget = checkBudget(deployment->config); !budget) co_return fail(budget.error());
  keepWarm(deployment->config.runtime);
  const int instances = deployInstances(deployment->config);
  prepareScaling(*deployment, instances);
  for (int i = 0; i < instances; ++i) deployment->slots.push_back(std::make_unique<Slot>());
  // All instances start at once: each mostly waits for its interpreter.
  std::string startError;
  WaitGroup starting(executor_);
  for (auto& slot : deployment->slots) starting.spawn(executor_, startSlotAndReport(deployment, *slot, startError));
  co_await starting.wait();
  if (!startError.empty()) {
    deployment->retired = true;
    for (auto& slot : deployment->slots) co_await stopSlot(*slot);
    keepWarm();
    if (tasks_.cancelled()) co_return shuttingDown();
    // The handler's own reason first ("index.js:2: SyntaxError: ..."), else
    // the last lines it wrote.
    if (std::string cause = loadFailure(name); !cause.empty())
      co_return fail("function did not start: " + cause + " (" + startError + ")" + logsHint(name));
    std::string logs = recentLogs(name);
    co_return fail("function did not start: " + startError + (logs.empty() ? "" : "; last output: " + logs) +
                   (logs.empty() ? "" : logsHint(name)));
  }
  std::shared_ptr<Deployment> previous;
  if (auto it = functions_.find(name); it != functions_.end()) previous = it->second;
  deployment->updated = std::chrono::system_clock::now();
  deployment->created = previous ? previous->created : deployment->updated;
  deployment->restarts = previous ? previous->restarts : 0;
  // Stored before it serves: a crash from here on brings this version back.
  const StoredFunction stored{deployment->config, deployment->version, relative, deployment->created,
                              deployment->updated};
  if (auto saved = store_.save(stored); !saved) {
    deployment->retired = true;
    for (auto& slot : deployment->slots) co_await stopSlot(*slot);
    co_return fail("cannot store the function: " + saved.error(), false);
  }
  functions_[name] = deployment;
  if (previous && previous->config.runtime != deployment->config.runtime) keepWarm();
  if (quarantined_.erase(name) > 0) store_.removeOtherVersions(name, deployment->version);
  deployment->ready = true;
  co_await publish(*deployment);
  spdlog::info("deployed {} ({}, {} instance{})", name, toString(deployment->config.runtime), instances,
               instances == 1 ? "" : "s");
  if (previous) co_await retire(previous);
  co_return boost::system::result<void, DeployError>{};
}

asio::awaitable<void> FunctionManager::publish(const Deployment& deployment) {
  auto it = functions_.find(deployment.config.name);
  if (it == functions_.end() || it->second.get() != &deployment) co_return;
  std::vector<InstanceEndpoint> instances;
  for (const auto& slot : deployment.slots) {
    if (slot->healthy && slot->endpoint && !slot->draining) instances.push_back(*slot->endpoint);
  }
  auto swap = [this, &name = deployment.config.name, &instances, holds = deployment.config.scaling.dynamic] {
    router_.publishInstances(dataPlane_, name, instances, holds);
  };
  co_await runOn(dataPlane_, swap);
}

asio::awaitable<void> FunctionManager::unpublish(const std::string& name) {
  auto erase = [this, &name] { router_.remove(name); };
  co_await runOn(dataPlane_, erase);
}

asio::awaitable<void> FunctionManager::retire(std::shared_ptr<Deployment> deployment) {
  deployment->retired = true;
  // Calls that picked an old instance before the swap finish on it.
  std::vector<std::string> ids;
  for (auto& slot : deployment->slots) {
    if (slot->endpoint) ids.push_back(slot->endpoint->id);
  }
  co_await drain(std::move(ids), Clock::now() + options_.drainTimeout);
  for (auto& slot : deployment->slots) co_await stopSlot(*slot);
  std::error_code ignored;
  fs::remove_all(deployment->versionDir, ignored);
}

asio::awaitable<bool> FunctionManager::remove(std::string name, Scope scope) {
  auto guard = co_await mutex_.lock();
  if (auto q = quarantined_.find(name); q != quarantined_.end()) {
    if (!scope.admin) co_return false;
    quarantined_.erase(q);
    logs_.forget(name);
    if (auto erased = store_.erase(name); !erased) spdlog::error("deleting {}: {}", name, erased.error());
    spdlog::info("deleted quarantined {}", name);
    co_return true;
  }
  auto it = functions_.find(name);
  if (it == functions_.end() || !scope.covers(it->second->config.owner)) co_return false;
  auto deployment = std::move(it->second);
  functions_.erase(it);
  keepWarm();
  co_await unpublish(name);
  co_await retire(std::move(deployment));
  logs_.forget(name);
  if (auto erased = store_.erase(name); !erased) spdlog::error("deleting {}: {}", name, erased.error());
  spdlog::info("deleted {}", name);
  co_return true;
}

asio::awaitable<void> FunctionManager::removeAll(Scope scope) {
  // A named copy: GCC 12 mishandles temporaries kept alive across co_await.
  std::vector<std::string> all = names(scope);
  for (const auto& function : quarantined(scope)) all.push_back(function.name);
  for (const auto& name : all) co_await remove(name, scope);
  logs_.forgetReleased(scope);  // the lines of failed deploys too
}

asio::awaitable<void> FunctionManager::shutdown() {
  // No deploy lock: a deploy in progress (possibly a long npm install) must
  // not hold up shutdown. Its install is killed here, and an instance it
  // starts later stops itself (startSlot sees the cancelled tasks).
  tasks_.cancel();
  scaleTimer_.cancel();
  installer_.cancel();
  std::vector<std::shared_ptr<Deployment>> deployments;
  for (auto& entry : functions_) deployments.push_back(entry.second);
  functions_.clear();
  std::vector<Slot*> slots;
  for (auto& deployment : deployments) {
    deployment->retired = true;  // no restarts from here on
    for (auto& slot : deployment->slots) slots.push_back(slot.get());
  }
  // Plain loops and no lambdas over structured bindings here: GCC 12
  // miscompiled that form inside this coroutine (a crash on every shutdown).
  auto clearRoutes = [this] { router_.clear(); };
  co_await runOn(dataPlane_, clearRoutes);

  WaitGroup stopping(executor_);
  for (Slot* slot : slots) stopping.spawn(executor_, stopSlot(*slot));
  // The code stays: the next start restores these functions.
  co_await stopping.wait();
  // Instances still starting (restore, deploys, scale-ups, restarts) stop
  // themselves once their start returns (a container would otherwise
  // outlive the daemon); the background tasks end at their next sleep.
  asio::steady_timer deadline(executor_, options_.healthTimeout);
  co_await ((starting_.wait() && tasks_.join()) || deadline.async_wait(useTuple));
}

}  // namespace tinyfaas
