#pragma once

#include <ostream>

#include <CLI/CLI.hpp>

namespace tinyfaas::cli {

// Adds the client subcommands (deploy, list, delete, logs, wipe, invoke) to
// `app`. They talk to a running daemon's management API (and, for invoke, to
// its function endpoints). Each callback stores its process exit status in
// `exitCode`: 0 on success, non-zero with a one-line error on stderr.
void addClientCommands(CLI::App& app, int& exitCode);

// What a command line CLI11 refused ends with: one line on `err`,
// "tinyfaas: REASON (see `tinyfaas SUBCOMMAND --help`)", an unknown
// subcommand named as such, and exit status 2 like every refused command.
// --help and --version, which end parsing the same way, print and exit 0.
int exitForParseError(CLI::App& app, const CLI::ParseError& error, std::ostream& out, std::ostream& err);

}  // namespace tinyfaas::cli
