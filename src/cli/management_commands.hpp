#pragma once
// The management subcommands: each validates its arguments, calls the
// management API and prints the reply. Each returns an exit status.

#include <optional>
#include <string>
#include <vector>

#include "cli/cli_config.hpp"
#include "cli/client_io.hpp"

namespace tinyfaas::cli {

struct DeployOptions {
  ManagementFlags management;
  std::string dir;
  std::string name;
  std::string runtime;
  int threads = 0;
  std::vector<std::string> env;   // "K=V" from -e, one each
  std::vector<std::string> vars;  // "K=V" from --var, one or more each
  // Resource fields; unset ones are left to the daemon's defaults.
  std::optional<int> memoryMb;
  std::optional<double> cpus;
  bool egress = false;
  // Scaling fields; unset ones are left to the daemon's defaults.
  std::optional<int> minInstances, maxInstances, targetInFlight;
  std::optional<double> idleSeconds;
  // Call limits; unset leaves the daemon's defaults (it checks the values).
  std::optional<double> timeout;  // seconds
  std::optional<int> concurrency;
  std::optional<int> queue;
  // Progress lines on stderr: with --progress, or when stderr is a
  // terminal and not --quiet (as git does).
  bool quiet = false;
  bool progress = false;
};

enum class ListFormat { table, json, names };

int runDeploy(const DeployOptions& options, const ClientIo& io);
int runList(const ManagementFlags& flags, ListFormat format, const ClientIo& io);
int runDelete(const ManagementFlags& flags, const std::string& name, const ClientIo& io);
// With `follow`, prints new lines as they come until interrupted.
int runLogs(const ManagementFlags& flags, const std::optional<std::string>& name, bool follow, const ClientIo& io);
// Asks first on a terminal unless `yes`; off a terminal it needs `yes`.
int runWipe(const ManagementFlags& flags, bool yes, const ClientIo& io);

}  // namespace tinyfaas::cli
