#pragma once

#include <CLI/CLI.hpp>

#include "daemon/daemon_config.hpp"

namespace tinyfaas {

// Runs the platform until SIGINT or SIGTERM; returns the process exit status.
int runDaemon(DaemonConfig config);

// Adds `serve` to the command line; its callback runs the daemon.
void addServeCommand(CLI::App& app, int& exitCode);

}  // namespace tinyfaas
