#pragma once
// Runs `tinyfaas ARGS...` in-process, with the client commands wired as
// main.cpp wires them, against string streams and a made-up environment.

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tinyfaas::cli::test {

struct CliRun {
  int exitCode = -1;
  std::string out;
  std::string err;
};

struct CliEnvironment {
  std::map<std::string, std::string> vars;  // nothing from the real environment
  std::optional<std::string> stdinText;     // nullopt: stdin is a terminal
  bool stdinIsTerminal = false;             // a terminal that reads stdinText (a prompt's answer)
  bool stdoutIsTerminal = false;
};

CliRun runCli(const std::vector<std::string>& args, const CliEnvironment& environment = {});

}  // namespace tinyfaas::cli::test
