#pragma once
// The process environment the client commands see, passed in rather than
// reached for, so tests can run every command against string streams and a
// made-up environment.

#include <functional>
#include <iosfwd>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

namespace tinyfaas::cli {

// Exit statuses of the client commands. CLI11's own parse errors (a missing
// required option, an unknown flag) keep CLI11's codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the operation was tried and failed
inline constexpr int kExitUsage = 2;    // refused before anything was sent

struct ClientIo {
  std::ostream& out;
  std::ostream& err;
  std::istream& in;
  bool inIsTerminal = true;
  bool outIsTerminal = false;
  std::function<std::optional<std::string>(const std::string&)> getEnv;
  bool errIsTerminal = false;  // progress lines only for a person watching

  // Prints "tinyfaas: <message>" on err and returns `code`.
  int fail(int code, const std::string& message) const;
};

// ClientIo for the real process: std::cin/cout/cerr, isatty, getenv.
ClientIo& processIo();

// What addClientCommands does, with the I/O made explicit. `io` must outlive
// the parse.
void addClientCommands(CLI::App& app, int& exitCode, ClientIo& io);

}  // namespace tinyfaas::cli
