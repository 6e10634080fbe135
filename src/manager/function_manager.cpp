#include "manager/function_manager.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/async.hpp"
#include "core/function_name.hpp"
#include "manager/archive.hpp"
#include "manager/health_probe.hpp"
#include "sandbox/code_permissions.hpp"
#include "util/child_process.hpp"
#include "util/private_dir.hpp"
#include "util/async_sync.hpp"
#include "util/run_on.hpp"

namespace tinyfaas {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// An instance that failed this often without staying up for
// stableAfter in between is in a crash loop (in /logs and /functions).
constexpr int kCrashLoopFailures = 3;

// sizeof(sockaddr_un::sun_path), including the terminating NUL.
constexpr std::size_t kMaxSocketPath = 108;

struct FunctionManager::Slot {
  std::unique_ptr<Instance> instance;
  // Set once healthy: what publish() hands the router. The data plane owns
  // the Upstream it makes of it.
  std::optional<InstanceEndpoint> endpoint;
  bool healthy = false;
  bool exited = false;
  std::string exitReason;
  int failures = 0;  // in a row, for the backoff
  int restarts = 0;  // since the deploy
  Clock::time_point startedAt;
  // Scaling: a parked slot has no instance and takes no memory; a draining
  // one gets no new calls and stops once its running calls are done.
  bool parked = false;
  bool draining = false;
};

struct FunctionManager::Deployment {
  FunctionConfig config;
  std::string version;  // "vN": the folder under the function's state folder
  fs::path versionDir;
  fs::path codeDir;
  std::vector<std::unique_ptr<Slot>> slots;  // unique_ptr: exit callbacks hold Slot*
  bool retired = false;
  std::chrono::system_clock::time_point created;
  std::chrono::system_clock::time_point updated;
  std::uint64_t restarts = 0;
  bool ready = false;  // deployed or restored: the scaler may change it
  int desired = 0;
  ScaleReason reason = ScaleReason::fixed;
};

namespace {

asio::awaitable<void> sleepFor(const asio::any_io_executor& executor, Clock::duration duration) {
  asio::steady_timer timer(executor, duration);
  co_await timer.async_wait(useTuple);
}

bool fileExists(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// The file a runtime cannot start without, named in the error users see.
boost::system::result<void, std::string> checkEntryPoint(Runtime runtime, const fs::path& dir) {
  switch (runtime) {
    case Runtime::python3:
      if (!fileExists(dir / "fn.py")) return std::string("python3 function needs fn.py at the top of the zip");
      break;
    case Runtime::nodejs:
      if (!fileExists(dir / "package.json") && !fileExists(dir / "index.js"))
        return std::string("nodejs function needs package.json or index.js at the top of the zip");
      break;
    case Runtime::binary:
      if (!fileExists(dir / "fn.sh")) return std::string("binary function needs fn.sh at the top of the zip");
      break;
    case Runtime::go:
      if (!fileExists(dir / "fn.go") || !fileExists(dir / "go.mod"))
        return std::string("go function needs fn.go and go.mod at the top of the zip");
      break;
  }
  return {};
}

// Instances a deploy starts: a function that scales to zero still starts
// one, so that a broken upload fails its deploy; idleness stops it later.
int deployInstances(const FunctionConfig& config) {
  return config.scaling.dynamic ? std::max(config.scaling.minInstances, 1) : config.threads;
}

// Instances a function keeps whatever the load.
int floorInstances(const FunctionConfig& config) {
  return config.scaling.dynamic ? config.scaling.minInstances : config.threads;
}

// A template: Deployment is private to the manager.
template <class Deployment>
void prepareScaling(Deployment& deployment, int instances) {
  const auto& config = deployment.config;
  deployment.desired = instances;
  deployment.reason = config.scaling.dynamic ? ScaleReason::min : ScaleReason::fixed;
}

}  // namespace

FunctionManager::FunctionManager(asio::any_io_executor executor, asio::any_io_executor dataPlane, Router& router,
                                 Backend& backend, LogStore& logs, ManagerOptions options)
    : executor_(executor),
      dataPlane_(std::move(dataPlane)),
      router_(router),
      backend_(backend),
      logs_(logs),
      options_(std::move(options)),
      store_(options_.stateDir / "functions"),
      installer_(executor, InstallerOptions{options_.npm, options_.python, options_.go, options_.goProxy,
                                            options_.goCacheBytes, options_.runtimesDir, options_.installTimeout,
                                            options_.identity, options_.offline, options_.installScripts, 512u << 20,
                                            options_.stateDir, options_.cgroups}),
      planner_(options_.memoryBudgetMb),
      scaleTimer_(executor) {
  // The router calls this on the data plane; the slots are this thread's.
  Router::StuckCallback onStuck = [this](const std::string& id) {
    asio::post(executor_, [this, id] { onInstanceStuck(id); });
  };
  asio::post(dataPlane_, [this, onStuck = std::move(onStuck)]() mutable { router_.onStuck(std::move(onStuck)); });
}

FunctionManager::~FunctionManager() = default;

boost::system::result<void, std::string> FunctionManager::prepareStateDir() {
  if (auto made = makePrivateDirectory(options_.stateDir); !made) return made.error();
  // The state dir itself lets the sandbox's group pass; what is above it is
  // the operator's. bwrap of a networked install resolves the code's
  // descriptor by path as the sandbox user and stops there otherwise.
  if (options_.identity.switchUser && !sandbox::passableByOthers(options_.stateDir))
    spdlog::warn("the sandbox user cannot pass through a folder above the state directory {}: installs that need "
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
    return options_.stateDir / "run" / (std::string(nameLength, 'x') + ".999999") / "handler.sock";
  };
  if (socketFor(1).string().size() >= kMaxSocketPath)
    return "state directory path " + options_.stateDir.string() + " is too long for Unix socket paths";
  if (socketFor(kMaxFunctionNameLength).string().size() >= kMaxSocketPath)
    spdlog::warn("state directory {} is long: function names over {} characters will not deploy",
                 options_.stateDir.string(),
                 kMaxSocketPath - 1 - (socketFor(0).string().size()));

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
      asio::co_spawn(executor_, restartSlot(deployment, slot.get()), asio::detached);
    }
    deployment->ready = true;
    co_await publish(*deployment);
    spdlog::info("restored {} ({}, {} of {} instance{} up)", deployment->config.name,
                 toString(deployment->config.runtime), up, deployment->slots.size(),
                 deployment->slots.size() == 1 ? "" : "s");
  }
}

boost::system::result<void, std::string> FunctionManager::shareCode(const fs::path& versionDir) const {
  if (!options_.identity.switchUser) return {};
  return sandbox::shareWithSandbox(options_.stateDir, versionDir, options_.identity.gid);
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
    if (function.calls.timeout.count() == 0) function.calls.timeout = options_.upstream.callTimeout;
    for (const auto& var : deployment->config.env) function.envNames.push_back(var.substr(0, var.find('=')));
    function.created = deployment->created;
    function.updated = deployment->updated;
    function.restarts = deployment->restarts;
    function.crashLoop = std::any_of(deployment->slots.begin(), deployment->slots.end(), [](const auto& slot) {
      return !slot->healthy && slot->failures >= kCrashLoopFailures;
    });
  }
  return out;
}

asio::awaitable<boost::system::result<void, DeployError>> FunctionManager::deploy(FunctionConfig config,
                                                                                  std::string zip,
                                                                                  std::string subfolder,
                                                                                  Scope scope) {
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

  // Unpacking and installing happen before the deploy lock: a slow install
  // of one tenant holds up nobody's deploy, delete or wipe.
  std::error_code ec;
  fs::create_directories(deployment->versionDir, ec);
  if (ec) co_return fail("cannot create " + deployment->versionDir.string() + ": " + ec.message(), false);
  if (auto extracted = extractZip(zip, deployment->versionDir); !extracted) co_return fail(extracted.error());
  zip.clear();
  zip.shrink_to_fit();

  fs::path relative = fs::path(subfolder).lexically_normal().relative_path();
  for (const auto& part : relative) {
    if (part == "..") co_return fail("subfolder_path " + subfolder + " points outside the archive");
  }
  deployment->codeDir = deployment->versionDir / relative;
  if (!fs::is_directory(deployment->codeDir, ec) || fs::is_symlink(deployment->codeDir, ec))
    co_return fail("subfolder_path " + subfolder + " is not a folder in the archive");
  if (auto entry = checkEntryPoint(deployment->config.runtime, deployment->codeDir); !entry)
    co_return fail(entry.error());
  // Readable by the sandbox's group before the install (which reads it as
  // the sandbox uid) and again after (the installed files).
  if (auto shared = shareCode(deployment->versionDir); !shared) co_return fail(shared.error(), false);
  // A named handler, not a temporary in the co_await expression: GCC 12
  // destroys such temporaries twice.
  bool installLogged = false;
  ChildProcess::LineHandler onInstallLine = [&logs = logs_, name, label = name + ".install",
                                             &installLogged](std::string_view line) {
    logs.append(name, label, line);
    installLogged = true;
  };
  auto installed = co_await installer_.install(deployment->config.runtime, deployment->codeDir,
                                               deployment->config.owner, std::move(onInstallLine));
  if (!installed) co_return fail(installed.error() + (installLogged ? logsHint(name) : ""));
  if (auto shared = shareCode(deployment->versionDir); !shared) co_return fail(shared.error(), false);

  auto guard = co_await mutex_.lock();
  if (auto taken = claimName()) {
    fail(taken->message);
    co_return *taken;
  }
  if (auto budget = checkBudget(deployment->config); !budget) co_return fail(budget.error());
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
  if (quarantined_.erase(name) > 0) store_.removeOtherVersions(name, deployment->version);
  deployment->ready = true;
  co_await publish(*deployment);
  spdlog::info("deployed {} ({}, {} instance{})", name, toString(deployment->config.runtime), instances,
               instances == 1 ? "" : "s");
  if (previous) co_await retire(previous);
  co_return boost::system::result<void, DeployError>{};
}

asio::awaitable<boost::system::result<void, std::string>> FunctionManager::startSlot(
    std::shared_ptr<Deployment> deployment, Slot& slot) {
  InstanceSpec spec;
  spec.function = deployment->config.name;
  spec.instanceId = deployment->config.name + "." + std::to_string(nextInstance_++);
  spec.runtime = deployment->config.runtime;
  spec.codeDir = deployment->codeDir;
  spec.socketDir = options_.stateDir / "run" / spec.instanceId;
  spec.env = deployment->config.env;
  spec.limits = deployment->config.limits;

  if ((spec.socketDir / "handler.sock").string().size() >= kMaxSocketPath)
    co_return "socket path " + (spec.socketDir / "handler.sock").string() +
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
  if (deployment->retired) {  // removed, replaced or shut down meanwhile
    co_await stopSlot(slot);
    co_return "instance " + id + " is no longer needed";
  }

  const bool healthy = co_await waitHealthy(slot);
  // A shutdown or remove() may have stopped and taken the instance while
  // the probe was out (seen under ASan: a replacement starting at SIGTERM).
  if (!slot.instance || deployment->retired) {
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
  const auto deadline = Clock::now() + options_.healthTimeout;
  // Short first steps: most handlers are up within tens of milliseconds.
  auto step = std::chrono::milliseconds(5);
  while (Clock::now() < deadline) {
    // A remove() during a restart's wait stops and takes the instance.
    if (slot.exited || !slot.instance) co_return false;
    if (co_await probeHealth(executor_, slot.instance->socketPath(), std::chrono::seconds(2))) co_return true;
    co_await sleepFor(executor_, step);
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
  asio::co_spawn(executor_, restartSlot(std::move(deployment), slot), asio::detached);
}

void FunctionManager::onInstanceStuck(const std::string& id) {
  // Instance ids are "NAME.N".
  auto it = functions_.find(std::string_view(id).substr(0, id.rfind('.')));
  if (it == functions_.end() || it->second->retired || stopped_) return;
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
  asio::co_spawn(executor_, replaceStuck(std::move(deployment), slot), asio::detached);
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
    std::string note = "restart " + std::to_string(slot->restarts) + " of an instance in " +
                       std::to_string(delay.count()) + " ms";
    if (slot->failures >= kCrashLoopFailures) {
      note += " (crash loop: " + std::to_string(slot->failures) + " failures in a row)";
      spdlog::warn("{} is in a crash loop: {}", name, note);
    }
    logs_.append(name, "tinyfaas", note);
    co_await sleepFor(executor_, delay);
    if (deployment->retired) co_return;
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
  // not hold up shutdown. Whatever it starts later dies with the daemon
  // (instances are killed when their owner process exits).
  stopped_ = true;
  scaleTimer_.cancel();
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
  // Instances still starting (scale-ups, restarts) stop themselves once
  // their start returns; a container would otherwise outlive the daemon.
  const auto deadline = Clock::now() + options_.healthTimeout;
  while (startsAfterDeploy_ > 0 && Clock::now() < deadline) co_await sleepFor(executor_, std::chrono::milliseconds(10));
}

void FunctionManager::startScaling() { asio::co_spawn(executor_, scaleLoop(), asio::detached); }

boost::system::result<void, std::string> FunctionManager::checkBudget(const FunctionConfig& config) const {
  if (options_.memoryBudgetMb <= 0) return {};
  long long reserved = 0;
  for (const auto& [name, deployment] : functions_) {
    if (name != config.name)
      reserved += static_cast<long long>(floorInstances(deployment->config)) * deployment->config.limits.memoryMb;
  }
  const long long needs = static_cast<long long>(floorInstances(config)) * config.limits.memoryMb;
  if (reserved + needs <= options_.memoryBudgetMb) return {};
  return "the node's memory budget is " + std::to_string(options_.memoryBudgetMb) + " MB and other functions' " +
         "minimum instances take " + std::to_string(reserved) + " MB; this function's minimum needs " +
         std::to_string(needs) + " MB (lower min_instances, threads or memory_mb)";
}

long long FunctionManager::occupiedMb() const {
  long long total = 0;
  for (const auto& [name, deployment] : functions_) {
    for (const auto& slot : deployment->slots) {
      if (!slot->parked) total += deployment->config.limits.memoryMb;
    }
  }
  return total;
}

asio::awaitable<void> FunctionManager::scaleLoop() {
  auto sample = [this] { return router_.load(); };
  while (!stopped_) {
    scaleTimer_.expires_after(options_.scaleInterval);
    co_await scaleTimer_.async_wait(useTuple);
    if (stopped_) break;
    const RouterLoad load = co_await runOn(dataPlane_, sample);
    if (stopped_) break;
    scaleOnce(load);
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
    input.memoryMb = deployment->config.limits.memoryMb;
    for (const auto& slot : deployment->slots) {
      if (slot->parked || slot->draining) continue;
      ++input.current;
      input.inFlight += callsOn(*slot);
    }
    if (auto held = load.held.find(name); held != load.held.end()) input.inFlight += held->second;
    deployments.push_back(deployment);
  }
  const auto decisions = planner_.decide(inputs, Clock::now());

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
      asio::co_spawn(executor_, drainInstance(deployments[i], quietest), asio::detached);
    }
  }
  long long occupied = occupiedMb();
  for (std::size_t i = 0; i < deployments.size(); ++i) {
    Deployment& deployment = *deployments[i];
    if (!deployment.config.scaling.dynamic) continue;
    const int memoryMb = deployment.config.limits.memoryMb;
    for (int missing = decisions[i].desired - inputs[i].current; missing > 0; --missing) {
      if (options_.memoryBudgetMb > 0 && occupied + memoryMb > options_.memoryBudgetMb) break;
      Slot* slot = nullptr;
      for (auto& candidate : deployment.slots) {
        if (candidate->parked) slot = candidate.get();
      }
      if (!slot) slot = deployment.slots.emplace_back(std::make_unique<Slot>()).get();
      slot->parked = false;
      occupied += memoryMb;
      asio::co_spawn(executor_, addInstance(deployments[i], slot), asio::detached);
    }
  }
}

asio::awaitable<std::optional<boost::system::result<void, std::string>>> FunctionManager::startLate(
    std::shared_ptr<Deployment> deployment, Slot& slot) {
  ++startsAfterDeploy_;
  auto started = co_await startSlot(deployment, slot);
  --startsAfterDeploy_;
  if (deployment->retired) {
    co_await stopSlot(slot);
    co_return std::nullopt;
  }
  co_return started;
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

std::string FunctionManager::logsHint(const std::string& function) {
  return "; see `tinyfaas logs " + function + "`";
}

std::string FunctionManager::loadFailure(const std::string& function) const {
  // The runtimes' last words when the function's code cannot be loaded
  // (runtimes/nodejs/handler.js, runtimes/python3/handler.py).
  constexpr std::string_view marker = " handler: cannot load the function: ";
  const std::string all = logs_.read(function);
  // Among the last lines only: an older deploy's reason is no reason now.
  std::size_t recent = all.size();
  for (int lines = 0; lines < 8 && recent != std::string::npos && recent > 0; ++lines)
    recent = all.rfind('\n', recent - 1);
  const std::size_t at = all.rfind(marker);
  if (at == std::string::npos || (recent != std::string::npos && at < recent)) return {};
  const std::size_t from = at + marker.size();
  return all.substr(from, all.find('\n', from) - from);
}

std::string FunctionManager::recentLogs(const std::string& function) const {
  std::string all = logs_.read(function);
  if (all.empty()) return all;
  // The last three lines, without timestamps' noise trimmed: enough to show
  // a syntax error or a missing module.
  std::size_t cut = all.size();
  for (int lines = 0; lines < 4 && cut != std::string::npos && cut > 0; ++lines) cut = all.rfind('\n', cut - 1);
  std::string tail = all.substr(cut == std::string::npos ? 0 : cut + 1);
  std::replace(tail.begin(), tail.end(), '\n', ' ');
  while (!tail.empty() && tail.back() == ' ') tail.pop_back();
  return tail;
}

}  // namespace tinyfaas
