#pragma once
// The management subcommands: each validates its arguments, makes one call
// to the management API and prints the reply. Each returns an exit status.

#include <optional>
#include <string>
#include <vector>

#include "cli/client_io.hpp"

namespace tinyfaas::cli {

struct DeployOptions {
  std::string url;  // --url; empty means the default
  std::string dir;
  std::string name;
  std::string env;
  int threads = 0;
  std::vector<std::string> vars;  // "K=V"
};

int runDeploy(const DeployOptions& options, const ClientIo& io);
int runList(const std::string& url, const ClientIo& io);
int runDelete(const std::string& url, const std::string& name, const ClientIo& io);
int runLogs(const std::string& url, const std::optional<std::string>& name, const ClientIo& io);
int runWipe(const std::string& url, const ClientIo& io);

}  // namespace tinyfaas::cli
