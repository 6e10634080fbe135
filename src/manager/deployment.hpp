#pragma once
// What FunctionManager's parts share (function_manager.cpp: deploys and
// removals; deploy_pipeline.cpp: unpacking and installs;
// instance_supervisor.cpp: starting, watching and restarting instances;
// autoscaler.cpp: scaling). Private to src/manager.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "manager/function_manager.hpp"

namespace tinyfaas {

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
  std::chrono::steady_clock::time_point startedAt;
  std::optional<std::uint64_t> memoryBytes;  // PSS of its processes, last measured while healthy
  // Scaling: a parked slot has no instance and takes no memory; a draining
  // one gets no new calls and stops once its running calls are done.
  bool parked = false;
  bool draining = false;
};

struct FunctionManager::Deployment {
  FunctionConfig config;
  std::string version;  // "vN": the folder under the function's state folder
  std::filesystem::path versionDir;
  std::filesystem::path codeDir;
  std::vector<std::unique_ptr<Slot>> slots;  // unique_ptr: exit callbacks hold Slot*
  bool retired = false;
  std::chrono::system_clock::time_point created;
  std::chrono::system_clock::time_point updated;
  std::uint64_t restarts = 0;
  bool ready = false;  // deployed or restored: the scaler may change it
  int desired = 0;
  ScaleReason reason = ScaleReason::fixed;
  // What one of its instances used at the last measurement, on average
  // (MB, rounded up, at most memory_mb); the budget's charge per instance
  // when it counts measured memory.
  std::optional<int> measuredMb;
};

// Instances a deploy starts: a function that scales to zero still starts
// one, so that a broken upload fails its deploy; idleness stops it later.
inline int deployInstances(const FunctionConfig& config) {
  return config.scaling.dynamic ? std::max(config.scaling.minInstances, 1) : config.threads;
}

// Instances a function keeps whatever the load.
inline int floorInstances(const FunctionConfig& config) {
  return config.scaling.dynamic ? config.scaling.minInstances : config.threads;
}

// A template: Deployment is private to the manager.
template <class Deployment>
void prepareScaling(Deployment& deployment, int instances) {
  const auto& config = deployment.config;
  deployment.desired = instances;
  deployment.reason = config.scaling.dynamic ? ScaleReason::min : ScaleReason::fixed;
}

}  // namespace tinyfaas
