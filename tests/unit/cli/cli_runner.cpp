#include "cli_runner.hpp"

#include <sstream>

#include "cli/client_commands.hpp"
#include "cli/client_io.hpp"

namespace tinyfaas::cli::test {

CliRun runCli(const std::vector<std::string>& args, const CliEnvironment& environment) {
  std::ostringstream out;
  std::ostringstream err;
  std::istringstream in(environment.stdinText.value_or(""));
  ClientIo io{out,
              err,
              in,
              !environment.stdinText.has_value() || environment.stdinIsTerminal,
              environment.stdoutIsTerminal,
              [vars = environment.vars](const std::string& name) -> std::optional<std::string> {
                auto it = vars.find(name);
                if (it == vars.end()) return std::nullopt;
                return it->second;
              }};

  CLI::App app{"tinyFaaS", "tinyfaas"};
  app.require_subcommand(1);
  int exitCode = 0;
  addClientCommands(app, exitCode, io);

  std::vector<const char*> argv{"tinyfaas"};
  for (const auto& arg : args) argv.push_back(arg.c_str());
  CliRun run;
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
    run.exitCode = exitCode;
  } catch (const CLI::ParseError& e) {
    run.exitCode = exitForParseError(app, e, out, err);
  }
  run.out = out.str();
  run.err = err.str();
  return run;
}

}  // namespace tinyfaas::cli::test
