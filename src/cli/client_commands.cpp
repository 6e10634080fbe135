#include "cli/client_commands.hpp"

#include <memory>

#include "cli/client_io.hpp"
#include "cli/invoke.hpp"
#include "cli/management_commands.hpp"

namespace tinyfaas::cli {
namespace {

constexpr const char* kUrlHelp =
    "Management API base URL (default: $TINYFAAS_MANAGEMENT_URL, else http://localhost:8080)";

// CLI11 binds options to variables that must live until the callbacks run,
// i.e. past addClientCommands; each subcommand's lambdas share ownership.
void addDeploy(CLI::App& app, int& exitCode, ClientIo& io) {
  auto options = std::make_shared<DeployOptions>();
  auto* cmd = app.add_subcommand("deploy", "Upload a function folder (replaces a function of the same name)");
  cmd->add_option("dir", options->dir, "Folder with the function's code (fn.sh, fn.py or package.json + module)")
      ->required();
  cmd->add_option("-n,--name", options->name, "Function name: letters and digits only")->required();
  cmd->add_option("-e,--env", options->env, "Runtime: nodejs, python3 or binary")->required();
  cmd->add_option("-t,--threads", options->threads, "Number of function handler instances (at least 1)")
      ->required();
  // One K=V per --var, so a following DIR is never swallowed as a value.
  cmd->add_option("--var", options->vars, "Environment variable K=V for the function (repeatable)")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--url", options->url, kUrlHelp);
  cmd->callback([options, &exitCode, &io] { exitCode = runDeploy(*options, io); });
}

void addManagementCommands(CLI::App& app, int& exitCode, ClientIo& io) {
  {
    auto url = std::make_shared<std::string>();
    auto* cmd = app.add_subcommand("list", "List the deployed functions, one per line");
    cmd->add_option("--url", *url, kUrlHelp);
    cmd->callback([url, &exitCode, &io] { exitCode = runList(*url, io); });
  }
  {
    struct Options {
      std::string url;
      std::string name;
    };
    auto options = std::make_shared<Options>();
    auto* cmd = app.add_subcommand("delete", "Remove a function and its handlers");
    cmd->add_option("name", options->name, "Function name")->required();
    cmd->add_option("--url", options->url, kUrlHelp);
    cmd->callback([options, &exitCode, &io] { exitCode = runDelete(options->url, options->name, io); });
  }
  {
    struct Options {
      std::string url;
      std::optional<std::string> name;
    };
    auto options = std::make_shared<Options>();
    auto* cmd = app.add_subcommand("logs", "Print the functions' logs (all, or one function's)");
    cmd->add_option("name", options->name, "Only this function's logs");
    cmd->add_option("--url", options->url, kUrlHelp);
    cmd->callback([options, &exitCode, &io] { exitCode = runLogs(options->url, options->name, io); });
  }
  {
    auto url = std::make_shared<std::string>();
    auto* cmd = app.add_subcommand("wipe", "Remove all functions");
    cmd->add_option("--url", *url, kUrlHelp);
    cmd->callback([url, &exitCode, &io] { exitCode = runWipe(*url, io); });
  }
}

void addInvoke(CLI::App& app, int& exitCode, ClientIo& io) {
  auto options = std::make_shared<InvokeOptions>();
  auto* cmd = app.add_subcommand("invoke", "Call a function and print its result");
  cmd->add_option("name", options->name, "Function name")->required();
  auto* data = cmd->add_option("-d,--data", options->data, "Input to send (default: stdin if it is not a terminal)");
  auto* file = cmd->add_option("-f,--file", options->file, "Send this file's bytes as input (- for stdin)");
  data->excludes(file);
  cmd->add_option("-p,--protocol", options->protocol, "http or coap")->capture_default_str();
  cmd->add_option("--host", options->host, "Host of the function endpoints")->capture_default_str();
  cmd->add_option("--port", options->port, "Endpoint port (default: $HTTP_PORT or 8000; $COAP_PORT or 5683)");
  cmd->add_option("--timeout", options->timeoutSeconds, "Seconds to wait for the result (default: 60 http, 5 coap)");
  cmd->add_flag("--async", options->async, "Answer at once (202) and run the function anyway (http only)");
  cmd->add_option("-H,--header", options->headers, "Request header \"Name: value\" (repeatable, http only)")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->callback([options, &exitCode, &io] { exitCode = runInvoke(*options, io); });
}

}  // namespace

void addClientCommands(CLI::App& app, int& exitCode, ClientIo& io) {
  addDeploy(app, exitCode, io);
  addManagementCommands(app, exitCode, io);
  addInvoke(app, exitCode, io);
}

void addClientCommands(CLI::App& app, int& exitCode) { addClientCommands(app, exitCode, processIo()); }

}  // namespace tinyfaas::cli
