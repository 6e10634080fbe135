#pragma once
// The body of POST /containers/create for an instance, with the hardening
// every container gets (see docker_backend.hpp), and the security options
// the images' smoke test shares.

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/backend.hpp"

namespace tinyfaas::docker {

// What is the same for every instance of a node.
struct ContainerSettings {
  std::string nodeId;
  std::string user;  // numeric "UID:GID"
  std::int64_t pidsLimit = 256;
  std::int64_t tmpfsBytes = 64 << 20;
  std::int64_t shmBytes = 16 << 20;
  std::chrono::milliseconds stopGrace{3000};
};

struct ContainerImage {
  std::string reference;
  std::vector<std::string> command;                              // the handler command, before the socket path
  std::vector<std::pair<std::string, std::string>> extraMounts;  // read-only host file -> path inside
};

// no-new-privileges and the same seccomp deny table as the process backend.
std::vector<std::string> securityOptions();

// The HostConfig fields that hold an instance's limits, also the body of
// POST /containers/{id}/update when a standby takes on a function's.
nlohmann::json limitsConfig(const ContainerSettings& settings, const ResourceLimits& limits);

// `network` is the function's egress network, or "none".
std::string instanceContainerConfig(const ContainerSettings& settings, const InstanceSpec& spec,
                                    const ContainerImage& image, const std::string& network);

}  // namespace tinyfaas::docker
