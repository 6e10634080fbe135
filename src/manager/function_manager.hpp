#pragma once
// Deploys, replaces, restarts and removes functions: unpacks uploads, installs
// dependencies, starts instances through the backend, waits until they are
// healthy, publishes them to the router, and drains what they replace.
// One facade over several jobs, each in its own file: function_manager.cpp
// (deploy, remove, restore, shutdown), deploy_pipeline.cpp (unpacking,
// checks, dependency installs), instance_supervisor.cpp (start, health,
// restart, stuck instances, drain), autoscaler.cpp (scaling decisions).

#include <chrono>
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/result.hpp>

#include "backend/backend.hpp"
#include "manager/dependency_installer.hpp"
#include "manager/function_config.hpp"
#include "manager/function_store.hpp"
#include "manager/log_store.hpp"
#include "manager/scaling_policy.hpp"
#include "proxy/router.hpp"
#include "util/async_sync.hpp"
#include "util/process_memory.hpp"

namespace tinyfaas {

struct ManagerOptions {
  std::filesystem::path stateDir;
  std::string npm = "npm";
  std::string python = "python3";
  std::string go = "go";
  std::string goProxy = "https://proxy.golang.org,direct";
  std::uintmax_t goCacheBytes = std::uintmax_t{1} << 30;
  std::filesystem::path runtimesDir;  // go functions are built with its go/ files
  std::chrono::seconds installTimeout{600};
  std::chrono::seconds healthTimeout{30};
  std::chrono::seconds drainTimeout{30};
  std::chrono::milliseconds restartBackoffMin{100};
  std::chrono::milliseconds restartBackoffMax{30000};
  // An instance that stayed up this long starts its backoff afresh.
  std::chrono::seconds stableAfter{30};
  // Memory all instances may take together; 0: no budget. Scaling never
  // goes beyond it.
  int memoryBudgetMb = 0;
  // How the budget counts an instance: at its memory_mb (nothing can
  // exceed the budget, as the cgroup caps each instance there), or at what it
  // was last measured to use (more instances fit; they may together grow
  // past the budget, each up to its memory_mb).
  enum class BudgetCounts { limit, measured };
  BudgetCounts budgetCounts = BudgetCounts::limit;
  // How often in-flight calls are sampled for scaling decisions.
  std::chrono::milliseconds scaleInterval{50};
  // How often each instance's memory is measured (PSS of its processes),
  // and how (tests give a fake).
  std::chrono::milliseconds memoryInterval{5000};
  std::function<std::optional<std::uint64_t>(pid_t)> measure = [](pid_t root) { return processTreePssBytes(root); };
  // The clock scaling decisions measure idle time by; tests set a manual one.
  std::function<std::chrono::steady_clock::time_point()> now = std::chrono::steady_clock::now;
  UpstreamOptions upstream;
  // Who installs run as; when it switches user, code directories are
  // given to its group (dirs 0750, files 0640).
  sandbox::SandboxIdentity identity;
  sandbox::CgroupTree cgroups;  // installs' memory and pids limits, where enforced
  bool offline = false;         // installs get no network
  bool installScripts = false;  // installs may run packages' own scripts
};

// What GET /functions and /metrics report about one deployed function.
struct FunctionStatus {
  std::string name;
  Runtime runtime = Runtime::nodejs;
  int desired = 0;                          // instances asked for: `threads`, or what scaling wants now
  int healthy = 0;                          // instances serving calls now
  ScaleReason reason = ScaleReason::fixed;  // why `desired` is what it is
  ScalingPolicy scaling;
  ResourceLimits limits;
  CallLimits calls;                               // with the timeout that applies (the daemon's when it set none)
  std::string limitsUnenforced;                   // why the backend cannot enforce `limits`; empty when it does
  std::vector<std::string> envNames;              // never the values: they may be secrets
  std::vector<MqttTrigger> triggers;              // as uploaded
  std::chrono::system_clock::time_point created;  // first deploy of this name
  std::chrono::system_clock::time_point updated;  // the deploy now serving
  std::uint64_t restarts = 0;                     // instance restarts since `created`
  bool crashLoop = false;                         // an instance keeps failing and waits in backoff
  // What its healthy instances use now, summed (PSS of their processes at
  // the last measurement); nullopt until one was measured.
  std::optional<std::uint64_t> memoryBytes;
  // Each instance with a process, by id: its first process as the host
  // sees it (ps shows a handed-over standby under the standby's socket).
  std::map<std::string, pid_t> pids;
};

struct DeployError {
  bool userError = true;  // 400 when the upload is at fault, 500 otherwise
  std::string message;
  bool nameTaken = false;     // another tenant owns the name (409)
  bool shuttingDown = false;  // the node began to stop before the function was up (503)
};

// Lives on the management thread; its methods must be awaited there. It
// changes routes only by running code on the data-plane executor.
class FunctionManager {
 public:
  FunctionManager(boost::asio::any_io_executor executor, boost::asio::any_io_executor dataPlane, Router& router,
                  Backend& backend, LogStore& logs, ManagerOptions options);
  ~FunctionManager();

  // Removes what an earlier run left besides stored functions (sockets,
  // unfinished uploads) and reads the stored functions: from here on they
  // are listed; restore() starts them.
  boost::system::result<void, std::string> prepareStateDir();
  // Starts the stored functions' instances (all at once); calls get 503
  // until an instance is up. An instance that does not start is retried
  // with the crash backoff rather than dropped: an edge node keeps its
  // functions through a missing network or a full disk at boot.
  boost::asio::awaitable<void> restore();

  // Deploys `zip` (subfolder "" or "/" for its top) as `config.name`,
  // replacing a function of that name only once the new one is healthy and
  // stored. A name owned by a tenant outside `scope` is refused (nameTaken);
  // an admin's redeploy keeps the function's owner.
  boost::asio::awaitable<boost::system::result<void, DeployError>> deploy(FunctionConfig config, std::string zip,
                                                                          std::string subfolder, Scope scope = {});
  // False when there was no such function within `scope`.
  boost::asio::awaitable<bool> remove(std::string name, Scope scope = {});
  boost::asio::awaitable<void> removeAll(Scope scope = {});
  // For daemon shutdown, once calls were drained (daemon/graceful_shutdown):
  // takes every function out of the routes and stops all instances
  // concurrently.
  boost::asio::awaitable<void> shutdown();
  std::vector<std::string> names(const Scope& scope = {}) const;
  // Whether `name` is deployed and within `scope`.
  bool visible(std::string_view name, const Scope& scope) const;
  std::vector<FunctionStatus> status(const Scope& scope = {}) const;
  // The backend's standbys up, per runtime that starts them (Backend::standbys).
  std::map<Runtime, std::size_t> standbys() { return backend_.standbys(); }
  // Functions whose record could not be read at start: not started, their
  // names taken. Only an admin sees them, deletes them (remove) or replaces
  // them (deploy); to a tenant the name is simply taken.
  std::vector<QuarantinedFunction> quarantined(const Scope& scope = {}) const;
  // Starts sampling load and scaling functions with a scaling policy, and
  // measuring instances' memory, until shutdown().
  void startScaling();

 private:
  struct Slot;
  struct Deployment;
  boost::system::result<void, std::string> shareCode(const std::filesystem::path& versionDir) const;
  // Tells the backend the runtimes of the deployed functions and of one
  // being deployed.
  void keepWarm(std::optional<Runtime> deploying = std::nullopt);
  // Unpacks, checks and installs an upload into deployment's version folder
  // and sets its codeDir; returns the code's folder within the archive.
  boost::asio::awaitable<boost::system::result<std::filesystem::path, DeployError>> prepareCode(Deployment& deployment,
                                                                                                std::string zip,
                                                                                                std::string subfolder);
  boost::asio::awaitable<boost::system::result<void, std::string>> startSlot(std::shared_ptr<Deployment> deployment,
                                                                             Slot& slot);
  boost::asio::awaitable<void> startSlotAndReport(std::shared_ptr<Deployment> deployment, Slot& slot,
                                                  std::string& firstError);
  boost::asio::awaitable<bool> waitHealthy(Slot& slot);
  void onInstanceExit(std::weak_ptr<Deployment> deployment, Slot* slot, std::string how);
  void onInstanceStuck(const std::string& id);
  boost::asio::awaitable<void> replaceStuck(std::shared_ptr<Deployment> deployment, Slot* stuck);
  boost::asio::awaitable<void> restartSlot(std::shared_ptr<Deployment> deployment, Slot* slot);
  // Starts `slot` of a live deployment (a restart or a scale-up); nullopt
  // when the deployment was retired meanwhile and the slot stopped again.
  boost::asio::awaitable<std::optional<boost::system::result<void, std::string>>> startLate(
      std::shared_ptr<Deployment> deployment, Slot& slot);
  boost::asio::awaitable<void> publish(const Deployment& deployment);
  boost::asio::awaitable<void> unpublish(const std::string& name);
  boost::asio::awaitable<void> retire(std::shared_ptr<Deployment> deployment);
  // Returns once the instances have no call outstanding, or at `deadline`.
  boost::asio::awaitable<void> drain(std::vector<std::string> instanceIds,
                                     std::chrono::steady_clock::time_point deadline);
  boost::asio::awaitable<void> drain(const Slot& slot, std::chrono::steady_clock::time_point deadline);
  boost::asio::awaitable<void> stopSlot(Slot& slot);
  std::string recentLogs(const std::string& function) const;
  // What the runtime said when it could not load the function's code, if it did.
  std::string loadFailure(const std::string& function) const;
  static std::string logsHint(const std::string& function);
  boost::system::result<void, std::string> checkBudget(const FunctionConfig& config) const;
  // What the budget counts for one more instance of `deployment`, and for
  // the instances that hold memory now (see ManagerOptions::budgetCounts).
  int chargeMb(const Deployment& deployment) const;
  long long occupiedMb() const;
  boost::asio::awaitable<void> scaleLoop();
  boost::asio::awaitable<void> memoryLoop();
  void measureMemory();
  void scaleOnce(const RouterLoad& load);
  boost::asio::awaitable<void> addInstance(std::shared_ptr<Deployment> deployment, Slot* slot);
  boost::asio::awaitable<void> drainInstance(std::shared_ptr<Deployment> deployment, Slot* slot);

  boost::asio::any_io_executor executor_;
  boost::asio::any_io_executor dataPlane_;
  Router& router_;
  Backend& backend_;
  LogStore& logs_;
  ManagerOptions options_;
  FunctionStore store_;
  DependencyInstaller installer_;
  std::map<std::string, std::shared_ptr<Deployment>, std::less<>> functions_;
  std::map<std::string, QuarantinedFunction, std::less<>> quarantined_;
  std::uint64_t nextVersion_ = 1;
  std::uint64_t nextInstance_ = 1;
  // One deploy, delete or wipe at a time: they touch the same routes and dirs.
  AsyncMutex mutex_;
  ScalingPlanner planner_;
  // Restarts, replacements, scale-ups, drains and the scale loop; shutdown
  // cancels (tasks_.cancelled() from then on) and joins them.
  TaskGroup tasks_;
  WaitGroup starting_;  // every startSlot() not yet returned; shutdown waits for them
  // The scaler's sleep between samples, and whether a held call asked for
  // the next sample at once.
  boost::asio::steady_timer scaleTimer_;
  bool scaleSoon_ = false;
};

}  // namespace tinyfaas
