#pragma once
// `tinyfaas serve --config FILE`: a TOML file whose keys are the serve
// flags without their leading dashes (`http-port = 8000`). A setting comes
// from its flag, else its environment variable, else the file, else the
// default.

#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>
#include <boost/system/result.hpp>

#include "daemon/daemon_config.hpp"

namespace tinyfaas {

// Reads `path` and sets, through `serve`'s own options (so the same checks
// apply), every setting that neither a flag nor an environment variable
// set. Unknown keys, wrong types and invalid values are errors naming the
// file, the line and the key.
boost::system::result<void, std::string> applyConfigFile(const std::filesystem::path& path, CLI::App& serve);

// Every setting of `config` in the file's format, loadable with --config.
std::string formatConfig(const DaemonConfig& config);

}  // namespace tinyfaas
