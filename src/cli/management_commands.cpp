#include "cli/management_commands.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <istream>
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

// "left out by .tinyfaasignore: .env, .git/, tests/ (and 3 more)"
std::string leftOutLine(const std::vector<std::string>& leftOut) {
  constexpr std::size_t kShown = 20;
  std::string line = std::string("left out by ") + kIgnoreFileName + ":";
  for (std::size_t i = 0; i < leftOut.size() && i < kShown; ++i) line += (i == 0 ? " " : ", ") + leftOut[i];
  if (leftOut.size() > kShown) line += " (and " + std::to_string(leftOut.size() - kShown) + " more)";
  return line;
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

int runDeploy(const DeployOptions& given, const ClientIo& io) {
  DeployOptions options = given;
  for (const auto& var : options.env) {
    // -e meant the runtime before it meant a variable, as it does in docker.
    if (var.find('=') == std::string::npos && parseRuntime(var)) {
      return io.fail(kExitUsage, "-e \"" + var + "\": expected KEY=VALUE; did you mean --runtime " + var + "?");
    }
  }
  // --var takes one or more values, so it swallows a folder that follows it
  // (`--var A=1 DIR`); a variable always has '=', so the folder is known.
  if (options.dir.empty() && !options.vars.empty() && options.vars.back().find('=') == std::string::npos) {
    options.dir = options.vars.back();
    options.vars.pop_back();
  }
  options.vars.insert(options.vars.begin(), options.env.begin(), options.env.end());
  for (const auto& var : options.vars) {
    const auto eq = var.find('=');
    if (eq == std::string::npos || eq == 0) return io.fail(kExitUsage, "-e/--var \"" + var + "\": expected KEY=VALUE");
  }
  if (options.dir.empty()) {
    return io.fail(kExitUsage, "the function's folder is missing: tinyfaas deploy DIR -n NAME -r RUNTIME -t THREADS");
  }
  if (!isValidFunctionName(options.name)) return io.fail(kExitUsage, badName(options.name));
  if (options.runtime.empty()) return io.fail(kExitUsage, "--runtime is required: " + std::string(kRuntimeNames));
  if (!parseRuntime(options.runtime)) {
    return io.fail(kExitUsage, "unknown runtime \"" + options.runtime + "\": use " + std::string(kRuntimeNames));
  }
  if (options.threads < 1) {
    return io.fail(kExitUsage, "--threads must be at least 1, not " + std::to_string(options.threads));
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
  if (!packed->leftOut.empty() && !options.quiet) io.err << leftOutLine(packed->leftOut) << std::endl;
  if (packed->files == 0) {
    return io.fail(kExitUsage, options.dir + ": no files to deploy" +
                                   (packed->leftOut.empty() ? "" : std::string(" (see its ") + kIgnoreFileName + ")"));
  }
  progress("packed " + options.dir + ": " + std::to_string(packed->files) + " file" + (packed->files == 1 ? "" : "s") +
           ", " + std::to_string(packed->zip.size()) + " bytes zipped");

  nlohmann::json body = {
      {"name", options.name},       {"env", options.runtime},
      {"threads", options.threads}, {"zip", encodeBase64(packed->zip)},
      {"envs", options.vars},
  };
  if (options.memoryMb) body["memory_mb"] = *options.memoryMb;
  if (options.cpus) body["cpus"] = *options.cpus;
  if (options.egress) body["egress"] = true;
  if (options.minInstances) body["min_instances"] = *options.minInstances;
  if (options.maxInstances) body["max_instances"] = *options.maxInstances;
  if (options.targetInFlight) body["target_in_flight"] = *options.targetInFlight;
  if (options.idleSeconds) body["idle_seconds"] = *options.idleSeconds;
  if (options.timeout) body["timeout"] = *options.timeout;
  if (options.concurrency) body["concurrency"] = *options.concurrency;
  if (options.queue) body["queue"] = *options.queue;
  // With scaling the daemon, not --threads, decides how many start.
  const bool scaling = options.minInstances || options.maxInstances;
  progress("uploading " + options.name + " to " + client->url() + "; the daemon installs its dependencies and starts " +
           (scaling ? std::string("its instances")
                    : std::to_string(options.threads) + " instance" + (options.threads == 1 ? "" : "s")) +
           "...");
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
    return io.fail(kExitFailure,
                   "bad reply from the management API at " + client->url() + ": /functions is not a JSON list");
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

int runLogs(const ManagementFlags& flags, const std::optional<std::string>& name, bool follow,
            const LogsSelection& selection, const ClientIo& io) {
  // Checked here so that nothing needs percent-encoding in the query; the
  // daemon checks the rest of --since and says what is wrong.
  if (name && !isValidFunctionName(*name)) return io.fail(kExitUsage, badName(*name));
  if (selection.since && (selection.since->empty() || !std::all_of(selection.since->begin(), selection.since->end(),
                                                                   [](unsigned char c) { return std::isalnum(c); })))
    return io.fail(kExitUsage,
                   "--since must be a duration such as 30s, 10m, 2h or 1d (got '" + *selection.since + "')");
  std::string query = "/logs";
  auto add = [&query](std::string_view key, const std::string& value) {
    query.append(query.find('?') == std::string::npos ? "?" : "&").append(key).append("=").append(value);
  };
  if (name) add("name", *name);
  if (selection.tail) add("tail", std::to_string(*selection.tail));
  if (selection.since) add("since", *selection.since);
  if (!follow) {
    return callManagement(flags, io, [&](const ManagementClient& client) { return client.get(query); });
  }
  auto client = connect(flags, io);
  if (!client) return io.fail(kExitUsage, client.error());
  // Runs until the daemon ends the stream or the user interrupts.
  add("follow", "1");
  auto followed = client->follow(query, [&io](std::string_view text) {
    io.out << text;
    io.out.flush();
  });
  if (!followed) return io.fail(kExitFailure, followed.error());
  // Only the daemon ends a followed log with a complete reply: when it stops.
  io.err << "tinyfaas: daemon stopped\n";
  return kExitOk;
}

int runWipe(const ManagementFlags& flags, bool yes, const ClientIo& io) {
  // A script that pipes into wipe cannot answer a prompt; it must say so.
  if (!yes && !io.inIsTerminal) {
    return io.fail(kExitUsage, "wipe removes every function; pass --yes to confirm (stdin is not a terminal)");
  }
  auto client = connect(flags, io);
  if (!client) return io.fail(kExitUsage, client.error());
  // The daemon's /wipe answers nothing; its /list says what there is.
  auto listed = client->get("/list");
  if (!listed) return io.fail(kExitFailure, listed.error());
  std::string names;
  std::size_t count = 0;
  for (std::size_t start = 0; start < listed->size();) {
    const auto end = std::min(listed->find('\n', start), listed->size());
    if (end > start) {
      names += (count++ == 0 ? "" : ", ") + listed->substr(start, end - start);
    }
    start = end + 1;
  }
  const std::string what = std::to_string(count) + " function" + (count == 1 ? "" : "s");
  if (!yes) {
    if (count == 0) {
      io.out << "no functions to remove at " << client->url() << '\n';
      return kExitOk;
    }
    io.err << "remove all " << what << " (" << names << ") from " << client->url() << "? [y/N] " << std::flush;
    std::string answer;
    std::getline(io.in, answer);
    if (answer != "y" && answer != "Y" && answer != "yes") {
      io.err << "nothing removed\n";
      return kExitFailure;
    }
  }
  auto reply = client->post("/wipe");
  if (!reply) return io.fail(kExitFailure, reply.error());
  if (!reply->empty()) {
    printLines(io.out, *reply);
  } else if (count == 0) {
    io.out << "no functions to remove at " << client->url() << '\n';
  } else {
    io.out << "removed " << what << ": " << names << '\n';
  }
  return kExitOk;
}

}  // namespace tinyfaas::cli
