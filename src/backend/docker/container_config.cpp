#include "backend/docker/container_config.hpp"

#include <algorithm>
#include <cmath>
#include <thread>

#include <nlohmann/json.hpp>

#include "backend/handler_environment.hpp"
#include "sandbox/seccomp_policy.hpp"

namespace tinyfaas::docker {

using json = nlohmann::json;

std::vector<std::string> securityOptions() {
  // The same deny table as the process backend's seccomp filter, on top of
  // no_new_privs and no capabilities.
  static const std::string profile = sandbox::dockerSeccompProfile();
  return {"no-new-privileges", "seccomp=" + profile};
}

json limitsConfig(const ContainerSettings& settings, const ResourceLimits& limits) {
  const std::int64_t memory = limits.memoryMb > 0 ? std::int64_t{limits.memoryMb} << 20 : 0;
  // The engine refuses more CPUs than the host has; more than all of them
  // means no limit anyway.
  const double hostCpus = std::max(1u, std::thread::hardware_concurrency());
  const double cpus = std::min(limits.cpus, hostCpus);
  const auto nanoCpus = cpus > 0 ? static_cast<std::int64_t>(std::llround(cpus * 1e9)) : std::int64_t{0};
  return {{"PidsLimit", settings.pidsLimit},
          {"Memory", memory},
          // Equal to Memory: no swap on top of the limit.
          {"MemorySwap", memory},
          {"NanoCpus", nanoCpus}};
}

std::string instanceContainerConfig(const ContainerSettings& settings, const InstanceSpec& spec,
                                    const ContainerImage& image, const std::string& network) {
  json cmd = image.command;
  // Last, as on the process backend: tells instances apart in `ps`.
  cmd.push_back(handlerSocketPath(spec.socketDir).string());
  json mounts = json::array();
  mounts.push_back(
      {{"Type", "bind"}, {"Source", spec.codeDir.string()}, {"Target", spec.codeDir.string()}, {"ReadOnly", true}});
  mounts.push_back({{"Type", "bind"},
                    {"Source", spec.socketDir.string()},
                    {"Target", spec.socketDir.string()},
                    {"ReadOnly", false}});
  for (const auto& [source, target] : image.extraMounts)
    mounts.push_back({{"Type", "bind"}, {"Source", source}, {"Target", target}, {"ReadOnly", true}});

  json host = {{"NetworkMode", network},
               {"Mounts", mounts},
               {"ReadonlyRootfs", true},
               {"Tmpfs", {{"/tmp", "rw,nosuid,nodev,size=" + std::to_string(settings.tmpfsBytes) + ",mode=1777"}}},
               {"ShmSize", settings.shmBytes},
               {"IpcMode", "private"},
               {"CapDrop", {"ALL"}},
               {"SecurityOpt", securityOptions()},
               {"RestartPolicy", {{"Name", "no"}}},
               // The manager keeps what it needs; the engine's copy stays small.
               {"LogConfig", {{"Type", "json-file"}, {"Config", {{"max-size", "1m"}, {"max-file", "1"}}}}}};
  host.update(limitsConfig(settings, spec.limits));
  json config = {{"Image", image.reference},
                 {"Cmd", cmd},
                 {"Env", environmentEntries(handlerEnvironment(spec))},
                 {"WorkingDir", spec.codeDir.string()},
                 {"User", settings.user},
                 {"Tty", false},
                 {"OpenStdin", false},
                 {"StopSignal", "SIGTERM"},
                 {"StopTimeout", std::chrono::ceil<std::chrono::seconds>(settings.stopGrace).count()},
                 {"Labels",
                  {{"tinyfaas.node", settings.nodeId},
                   {"tinyfaas.function", spec.function},
                   {"tinyfaas.instance", spec.instanceId}}},
                 {"HostConfig", host}};
  return config.dump();
}

}  // namespace tinyfaas::docker
