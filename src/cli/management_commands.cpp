#include "cli/management_commands.hpp"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>

#include "cli/function_packer.hpp"
#include "cli/management_client.hpp"
#include "cli/reply_text.hpp"
#include "core/function_name.hpp"
#include "util/base64.hpp"

namespace tinyfaas::cli {
namespace {

std::string badName(const std::string& name) {
  return "invalid function name \"" + name + "\": use letters and digits only, at most " +
         std::to_string(kMaxFunctionNameLength) + " characters";
}

// Runs one call and prints its reply; `call` gets a connected client.
template <class Call>
int callManagement(const std::string& urlFlag, const ClientIo& io, Call call) {
  auto client = ManagementClient::create(managementUrl(urlFlag, io));
  if (!client) return io.fail(kExitUsage, client.error());
  Result<std::string> reply = call(*client);
  if (!reply) return io.fail(kExitFailure, reply.error());
  printLines(io.out, *reply);
  return kExitOk;
}

}  // namespace

int runDeploy(const DeployOptions& options, const ClientIo& io) {
  if (!isValidFunctionName(options.name)) return io.fail(kExitUsage, badName(options.name));
  if (options.env != "nodejs" && options.env != "python3" && options.env != "binary") {
    return io.fail(kExitUsage, "unknown runtime \"" + options.env + "\": use nodejs, python3 or binary");
  }
  if (options.threads < 1) {
    return io.fail(kExitUsage, "--threads must be at least 1, not " + std::to_string(options.threads));
  }
  for (const auto& var : options.vars) {
    const auto eq = var.find('=');
    if (eq == std::string::npos || eq == 0) {
      return io.fail(kExitUsage, "--var \"" + var + "\": expected KEY=VALUE");
    }
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(options.dir, ec)) {
    const bool exists = std::filesystem::exists(options.dir, ec);
    return io.fail(kExitUsage, options.dir + ": " + (exists ? "not a directory" : "no such directory"));
  }
  // Parse the URL before packing so a typo fails at once.
  auto client = ManagementClient::create(managementUrl(options.url, io));
  if (!client) return io.fail(kExitUsage, client.error());

  auto packed = packFunctionDirectory(options.dir);
  if (!packed) return io.fail(kExitFailure, "cannot pack " + options.dir + ": " + packed.error());
  if (packed->files == 0) {
    return io.fail(kExitUsage, options.dir +
                                   ": no files to deploy (node_modules, __pycache__ and top-level hidden "
                                   "entries are left out)");
  }

  const nlohmann::json body = {
      {"name", options.name},
      {"env", options.env},
      {"threads", options.threads},
      {"zip", encodeBase64(packed->zip)},
      {"envs", options.vars},
  };
  auto reply = client->post("/upload", body, kDeployTimeout);
  if (!reply) return io.fail(kExitFailure, reply.error());
  printLines(io.out, *reply);
  return kExitOk;
}

int runList(const std::string& url, const ClientIo& io) {
  return callManagement(url, io, [](const ManagementClient& client) { return client.get("/list"); });
}

int runDelete(const std::string& url, const std::string& name, const ClientIo& io) {
  if (!isValidFunctionName(name)) return io.fail(kExitUsage, badName(name));
  return callManagement(url, io, [&](const ManagementClient& client) {
    return client.post("/delete", nlohmann::json{{"name", name}});
  });
}

int runLogs(const std::string& url, const std::optional<std::string>& name, const ClientIo& io) {
  // Checked here so the name needs no percent-encoding in the query.
  if (name && !isValidFunctionName(*name)) return io.fail(kExitUsage, badName(*name));
  return callManagement(url, io, [&](const ManagementClient& client) {
    return client.get(name ? "/logs?name=" + *name : std::string("/logs"));
  });
}

int runWipe(const std::string& url, const ClientIo& io) {
  return callManagement(url, io, [](const ManagementClient& client) {
    return client.post("/wipe");
  });
}

}  // namespace tinyfaas::cli
