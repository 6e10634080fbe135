// tinyfaas: `serve` runs the platform; the other subcommands are its client.
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/client_commands.hpp"
#include "daemon/daemon.hpp"

int main(int argc, char** argv) {
  CLI::App app{"tinyFaaS: a lightweight Function-as-a-Service platform for edge nodes", "tinyfaas"};
  app.require_subcommand(1);
  app.set_version_flag("--version", TINYFAAS_VERSION);
  int exitCode = 0;
  tinyfaas::addServeCommand(app, exitCode);
  tinyfaas::cli::addClientCommands(app, exitCode);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return tinyfaas::cli::exitForParseError(app, error, std::cout, std::cerr);
  }
  return exitCode;
}
