#pragma once

#include <CLI/CLI.hpp>

namespace tinyfaas::cli {

// Adds the client subcommands (deploy, list, delete, logs, wipe, invoke) to
// `app`. They talk to a running daemon's management API (and, for invoke, to
// its function endpoints). Each callback stores its process exit status in
// `exitCode`: 0 on success, non-zero with a one-line error on stderr.
void addClientCommands(CLI::App& app, int& exitCode);

}  // namespace tinyfaas::cli
