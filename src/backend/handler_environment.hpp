#pragma once
// A handler instance's environment, built here once for every backend (the
// process backend's plain spawn and bwrap --setenv, the docker backend's
// container Env), so that a function sees the same variables wherever it
// runs.

#include <map>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "core/handler_socket.hpp"

namespace tinyfaas {

// Defaults first, the function's own `envs` over them, and the platform's
// last so a function cannot redirect its own socket. An entry without '='
// (only a hand-edited record has one: uploads refuse it) sets the variable
// to the empty string, as `FOO=` would.
inline std::map<std::string, std::string> handlerEnvironment(const InstanceSpec& spec) {
  std::map<std::string, std::string> env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"},
                                            {"HOME", "/tmp"},
                                            {"LANG", "C.UTF-8"},
                                            {"PYTHONUNBUFFERED", "1"},
                                            {"PYTHONDONTWRITEBYTECODE", "1"},
                                            {"NODE_ENV", "production"}};
  for (const auto& kv : spec.env) {
    const auto eq = kv.find('=');
    env[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
  }
  env["TINYFAAS_SOCKET"] = handlerSocketPath(spec.socketDir).string();
  env["TINYFAAS_FUNCTION"] = spec.function;
  env["TINYFAAS_INSTANCE"] = spec.instanceId;
  return env;
}

// The same as "KEY=VALUE" entries (execve's envp, a container's Env).
inline std::vector<std::string> environmentEntries(const std::map<std::string, std::string>& env) {
  std::vector<std::string> entries;
  entries.reserve(env.size());
  for (const auto& [name, value] : env) entries.push_back(name + "=" + value);
  return entries;
}

}  // namespace tinyfaas
