#include "cli/client_commands.hpp"

#include <algorithm>
#include <memory>
#include <optional>
#include <vector>

#include "cli/client_io.hpp"
#include "cli/invoke.hpp"
#include "cli/management_commands.hpp"
#include "util/edit_distance.hpp"

namespace tinyfaas::cli {
namespace {

constexpr const char* kUrlHelp =
    "Management API base URL (default: $TINYFAAS_URL, else url in the config file, else http://localhost:8080)";
constexpr const char* kTokenHelp =
    "Bearer token for the management API (default: $TINYFAAS_TOKEN, else token in the config file)";

void addManagementFlags(CLI::App& cmd, ManagementFlags& flags) {
  cmd.add_option("--url", flags.url, kUrlHelp);
  cmd.add_option("--token", flags.token, kTokenHelp);
}

// CLI11 binds options to variables that must live until the callbacks run,
// i.e. past addClientCommands; each subcommand's lambdas share ownership.
void addDeploy(CLI::App& app, int& exitCode, ClientIo& io) {
  auto options = std::make_shared<DeployOptions>();
  auto* cmd = app.add_subcommand("deploy", "Upload a function folder (replaces a function of the same name)");
  // Checked by runDeploy rather than CLI11, which would call a folder that
  // --var swallowed "required" instead of saying what happened.
  cmd->add_option("dir", options->dir,
                  "Folder with the function's code (fn.sh, fn.py or package.json + module); "
                  "its .tinyfaasignore (gitignore syntax) lists what stays home");
  cmd->add_option("-n,--name", options->name, "Function name: letters, digits and - (not first or last)")->required();
  cmd->add_option("-r,--runtime", options->runtime, "Runtime: nodejs, python3, binary or go");
  // One KEY=VAL per -e, as with docker run and faas-cli.
  cmd->add_option("-e,--env", options->env, "Environment variable KEY=VAL for the function (repeatable)")
      ->type_name("KEY=VAL")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--var", options->vars, "Environment variables KEY=VAL, one or more (same as -e)")
      ->type_name("KEY=VAL");
  cmd->add_option("-t,--threads", options->threads, "Number of function handler instances (at least 1)")->required();
  cmd->add_option("--memory-mb", options->memoryMb, "Memory per instance in MiB, 16-65536 (default 256)");
  cmd->add_option("--cpus", options->cpus, "CPUs per instance (default 1.0)");
  cmd->add_flag("--egress", options->egress,
                "Let the function open network connections (docker backend; default: no network)");
  cmd->add_option("--min-instances", options->minInstances,
                  "Scale with load, keeping at least this many instances (0: scale to zero)");
  cmd->add_option("--max-instances", options->maxInstances,
                  "Scale with load up to this many instances (default --threads)");
  cmd->add_option("--target-in-flight", options->targetInFlight,
                  "Scale with load: calls in flight per instance before another starts (default 8)");
  cmd->add_option("--idle-seconds", options->idleSeconds,
                  "Scale with load: seconds without need before instances above the minimum stop (default 30)");
  cmd->add_option("--timeout", options->timeout, "Seconds a call may take (default: the daemon's --call-timeout)");
  cmd->add_option("--concurrency", options->concurrency, "Calls one instance runs at once (default 128)");
  cmd->add_option("--queue", options->queue,
                  "Calls waiting per instance beyond those; more are refused as overloaded (default 1024)");
  auto* quiet = cmd->add_flag("-q,--quiet", options->quiet, "No progress lines, only the endpoints");
  cmd->add_flag("--progress", options->progress, "Progress lines on stderr even when it is not a terminal")
      ->excludes(quiet);
  addManagementFlags(*cmd, options->management);
  cmd->callback([options, &exitCode, &io] { exitCode = runDeploy(*options, io); });
}

void addManagementCommands(CLI::App& app, int& exitCode, ClientIo& io) {
  {
    struct Options {
      ManagementFlags management;
      bool json = false;
      bool names = false;
    };
    auto options = std::make_shared<Options>();
    auto* cmd = app.add_subcommand(
        "list", "Show the deployed functions: runtime, instances healthy/desired, calls, errors, median latency");
    cmd->alias("ls");
    auto* json = cmd->add_flag("--json", options->json, "Print GET /functions as JSON");
    cmd->add_flag("-q,--quiet", options->names, "Print only the names, one per line")->excludes(json);
    addManagementFlags(*cmd, options->management);
    cmd->callback([options, &exitCode, &io] {
      const ListFormat format = options->json    ? ListFormat::json
                                : options->names ? ListFormat::names
                                                 : ListFormat::table;
      exitCode = runList(options->management, format, io);
    });
  }
  {
    struct Options {
      ManagementFlags management;
      std::string name;
    };
    auto options = std::make_shared<Options>();
    auto* cmd = app.add_subcommand("delete", "Remove a function and its handlers");
    cmd->alias("rm");
    cmd->add_option("name", options->name, "Function name")->required();
    addManagementFlags(*cmd, options->management);
    cmd->callback([options, &exitCode, &io] { exitCode = runDelete(options->management, options->name, io); });
  }
  {
    struct Options {
      ManagementFlags management;
      std::optional<std::string> name;
      bool follow = false;
      LogsSelection selection;
    };
    auto options = std::make_shared<Options>();
    auto* cmd = app.add_subcommand("logs", "Print the functions' logs (all, or one function's), oldest first");
    cmd->add_option("name", options->name, "Only this function's logs");
    cmd->add_flag("-f,--follow", options->follow,
                  "Keep printing new lines as they come, until interrupted or the daemon stops");
    cmd->add_option("-n,--tail", options->selection.tail, "Only the last N lines (with -f: of those so far)");
    cmd->add_option("--since", options->selection.since, "Only lines of the last DURATION: 30s, 10m, 2h, 1d, 1h30m")
        ->type_name("DURATION");
    addManagementFlags(*cmd, options->management);
    cmd->callback([options, &exitCode, &io] {
      exitCode = runLogs(options->management, options->name, options->follow, options->selection, io);
    });
  }
  {
    struct Options {
      ManagementFlags management;
      bool yes = false;
    };
    auto options = std::make_shared<Options>();
    auto* cmd = app.add_subcommand("wipe", "Remove all functions (asks first on a terminal)");
    cmd->add_flag("-y,--yes", options->yes, "Do not ask; needed when stdin is not a terminal");
    addManagementFlags(*cmd, options->management);
    cmd->callback([options, &exitCode, &io] { exitCode = runWipe(options->management, options->yes, io); });
  }
}

void addInvoke(CLI::App& app, int& exitCode, ClientIo& io) {
  auto options = std::make_shared<InvokeOptions>();
  auto* cmd = app.add_subcommand("invoke", "Call a function and print its result");
  cmd->add_option("name", options->name, "Function name")->required();
  auto* data =
      cmd->add_option("-d,--data", options->data,
                      "Input to send; @FILE sends FILE's bytes, @- stdin (default: stdin if it is not a terminal)");
  auto* file = cmd->add_option("-f,--file,--data-file", options->file, "Send this file's bytes as input (- for stdin)");
  data->excludes(file);
  cmd->add_option("-p,--protocol", options->protocol, "http, coap or grpc")->capture_default_str();
  cmd->add_option("--endpoint,--host", options->endpoint,
                  "Host (or URL) of the function endpoints (default: $TINYFAAS_ENDPOINT, else endpoint in the "
                  "config file, else the host of the management URL)");
  cmd->add_option("--url", options->management.url, kUrlHelp);
  cmd->add_option("--port", options->port,
                  "Endpoint port (default: $HTTP_PORT or 8000; $COAP_PORT or 5683; $GRPC_PORT or 9000)");
  cmd->add_option("--timeout", options->timeoutSeconds,
                  "Seconds to wait for the result (default: 60 http and grpc, 5 coap)");
  cmd->add_option("--max-body-bytes", options->maxBodyBytes,
                  "Largest result accepted (and gRPC input sent); raise it with the daemon's --max-body-bytes")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--async", options->async,
                "Store the call and answer at once (202), printing the URL its result will be at (http only)");
  cmd->add_option("-H,--header", options->headers,
                  "Request header \"Name: value\" (repeatable; gRPC metadata over grpc; not over coap)")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->callback([options, &exitCode, &io] { exitCode = runInvoke(*options, io); });
}

// The subcommand (or alias) a typo most likely meant: at most two edits
// away, and fewer than the typo's own length (so "x" suggests nothing).
std::optional<std::string> nearestSubcommand(const CLI::App& app, const std::string& typed) {
  std::optional<std::string> best;
  std::size_t bestDistance = std::min<std::size_t>(3, typed.size());
  for (const CLI::App* sub : app.get_subcommands({})) {
    std::vector<std::string> names = sub->get_aliases();
    names.push_back(sub->get_name());
    for (const auto& name : names) {
      const std::size_t distance = editDistance(typed, name);
      if (distance < bestDistance) {
        bestDistance = distance;
        best = sub->get_name();
      }
    }
  }
  return best;
}

}  // namespace

void addClientCommands(CLI::App& app, int& exitCode, ClientIo& io) {
  addDeploy(app, exitCode, io);
  addManagementCommands(app, exitCode, io);
  addInvoke(app, exitCode, io);
}

void addClientCommands(CLI::App& app, int& exitCode) { addClientCommands(app, exitCode, processIo()); }

int exitForParseError(CLI::App& app, const CLI::ParseError& error, std::ostream& out, std::ostream& err) {
  if (error.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(error, out, err);
  std::string command = app.get_name();
  for (const CLI::App* sub = &app; !sub->get_subcommands().empty();) {
    sub = sub->get_subcommands().front();
    command += " " + sub->get_name();
  }
  std::string reason = error.what();
  // `tinyfaas lsit`: CLI11 only says that a subcommand is required.
  if (command == app.get_name() && !app.remaining().empty() && app.remaining().front().rfind('-', 0) != 0) {
    const std::string typed = app.remaining().front();
    reason = "unknown command '" + typed + "'";
    if (auto near = nearestSubcommand(app, typed)) reason += "; did you mean '" + *near + "'?";
  }
  err << "tinyfaas: " << reason << " (see `" << command << " --help`)\n";
  return 2;
}

}  // namespace tinyfaas::cli
