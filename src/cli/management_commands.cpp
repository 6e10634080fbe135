#include "cli/management_commands.hpp"

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>

#include "cli/function_packer.hpp"
#include "cli/function_table.hpp"
#include "cli/management_client.hpp"
#include "cli/reply_text.hpp"
#include "core/function_name.hpp"
#include "core/runtime.hpp"
#include "util/base64.hpp"

namespace tinyfaas::cli {
namespace {

std::string badName(const std::string& name) {
  return "invalid function name \"" + name + "\": use " + std::string(kFunctionNameRule);
}

Result<ManagementClient> connect(const ManagementFlags& flags, const ClientIo& io) {
  auto target = resolveManagementTarget(flags, io);
  if (!target) return failure(target.error());
  return ManagementClient::create(target->url, target->token);
}

// Runs one call and prints its reply; `call` gets a connected client.
template <class Call>
int callManagement(const ManagementFlags& flags, const ClientIo& io, Call call) {
  auto client = connect(flags, io);
  if (!client) return io.fail(kExitUsage, client.error());
  Result<std::string> reply = call(*client);
  if (!reply) return io.fail(kExitFailure, reply.error());
  printLines(io.out, *reply);
  return kExitOk;
}

}  // namespace

int runDeploy(const DeployOptions& options, const ClientIo& io) {
  if (!isValidFunctionName(options.name)) return io.fail(kExitUsage, badName(options.name));
  if (!parseRuntime(options.env)) {
    return io.fail(kExitUsage, "unknown runtime \"" + options.env + "\": use " + std::string(kRuntimeNames));
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
  auto client = connect(options.management, io);
  if (!client) return io.fail(kExitUsage, client.error());
  // Progress goes to stderr: stdout carries only the endpoints, for scripts.
  const bool showProgress = options.progress || (!options.quiet && io.errIsTerminal);
  auto progress = [&](const std::string& line) {
    if (showProgress) io.err << line << std::endl;
  };

  auto packed = packFunctionDirectory(options.dir);
  if (!packed) return io.fail(kExitFailure, "cannot pack " + options.dir + ": " + packed.error());
  if (packed->files == 0) {
    return io.fail(kExitUsage, options.dir +
                                   ": no files to deploy (node_modules, __pycache__ and top-level hidden "
                                   "entries are left out)");
  }
  progress("packed " + options.dir + ": " + std::to_string(packed->files) + " file" +
           (packed->files == 1 ? "" : "s") + ", " + std::to_string(packed->zip.size()) + " bytes zipped");

  nlohmann::json body = {
      {"name", options.name},
      {"env", options.env},
      {"threads", options.threads},
      {"zip", encodeBase64(packed->zip)},
      {"envs", options.vars},
  };
  if (options.minInstances) body["min_instances"] = *options.minInstances;
  if (options.maxInstances) body["max_instances"] = *options.maxInstances;
  if (options.targetInFlight) body["target_in_flight"] = *options.targetInFlight;
  if (options.idleSeconds) body["idle_seconds"] = *options.idleSeconds;
  if (options.timeout) body["timeout"] = *options.timeout;
  if (options.concurrency) body["concurrency"] = *options.concurrency;
  if (options.queue) body["queue"] = *options.queue;
  progress("uploading " + options.name + " to " + client->url() + "; the daemon installs its dependencies and starts " +
           std::to_string(options.threads) + " instance" + (options.threads == 1 ? "" : "s") + "...");
  const auto started = std::chrono::steady_clock::now();
  auto reply = client->post("/upload", body, kDeployTimeout);
  if (!reply) return io.fail(kExitFailure, reply.error());
  const auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  // The daemon answers once every instance is healthy; say how many serve.
  if (showProgress) {
    if (auto status = client->get("/functions/" + options.name)) {
      const auto json = nlohmann::json::parse(*status, nullptr, false);
      if (json.is_object() && json.contains("instances")) {
        const auto& instances = json["instances"];
        progress("deployed " + options.name + ": " + std::to_string(instances.value("healthy", 0)) + "/" +
                 std::to_string(instances.value("desired", 0)) + " instances healthy after " + formatSeconds(took) +
                 "; endpoints:");
      }
    }
  }
  printLines(io.out, *reply);
  return kExitOk;
}

int runList(const ManagementFlags& flags, ListFormat format, const ClientIo& io) {
  auto client = connect(flags, io);
  if (!client) return io.fail(kExitUsage, client.error());
  auto reply = client->get("/functions");
  if (!reply) return io.fail(kExitFailure, reply.error());
  const auto functions = nlohmann::json::parse(*reply, nullptr, false);
  if (!functions.is_array())
    return io.fail(kExitFailure, "bad reply from the management API at " + client->url() + ": /functions is not a JSON list");
  switch (format) {
    case ListFormat::json: io.out << functions.dump(2) << '\n'; break;
    case ListFormat::names:
      for (const auto& function : functions) io.out << function.value("name", "") << '\n';
      break;
    case ListFormat::table: io.out << functionTable(functions); break;
  }
  return kExitOk;
}

int runDelete(const ManagementFlags& flags, const std::string& name, const ClientIo& io) {
  if (!isValidFunctionName(name)) return io.fail(kExitUsage, badName(name));
  return callManagement(flags, io, [&](const ManagementClient& client) {
    return client.post("/delete", nlohmann::json{{"name", name}});
  });
}

int runLogs(const ManagementFlags& flags, const std::optional<std::string>& name, bool follow, const ClientIo& io) {
  // Checked here so the name needs no percent-encoding in the query.
  if (name && !isValidFunctionName(*name)) return io.fail(kExitUsage, badName(*name));
  const std::string query = name ? "/logs?name=" + *name : std::string("/logs");
  if (!follow) {
    return callManagement(flags, io, [&](const ManagementClient& client) { return client.get(query); });
  }
  auto client = connect(flags, io);
  if (!client) return io.fail(kExitUsage, client.error());
  // Runs until the daemon ends the stream or the user interrupts.
  auto followed = client->follow(query + (name ? "&" : "?") + "follow=1", [&io](std::string_view text) {
    io.out << text;
    io.out.flush();
  });
  if (!followed) return io.fail(kExitFailure, followed.error());
  return kExitOk;
}

int runWipe(const ManagementFlags& flags, const ClientIo& io) {
  return callManagement(flags, io, [](const ManagementClient& client) {
    return client.post("/wipe");
  });
}

}  // namespace tinyfaas::cli
