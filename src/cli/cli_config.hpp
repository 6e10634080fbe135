#pragma once
// Where the client finds the management API and its token: a flag, else an
// environment variable, else the client's config file, else the default.

#include <filesystem>
#include <optional>
#include <string>

#include "cli/client_io.hpp"
#include "cli/result.hpp"

namespace tinyfaas::cli {

// The --url and --token flags of a management command ("" = not given).
struct ManagementFlags {
  std::string url;
  std::string token;
};

struct ManagementTarget {
  std::string url;
  std::string token;  // "" sends no Authorization header
};

// $TINYFAAS_CLI_CONFIG, else $XDG_CONFIG_HOME/tinyfaas/cli.toml, else
// ~/.config/tinyfaas/cli.toml; nullopt when none of those can be formed.
std::optional<std::filesystem::path> cliConfigPath(const ClientIo& io);

// url: --url > $TINYFAAS_URL > $TINYFAAS_MANAGEMENT_URL > file `url` >
// http://localhost:8080. token: --token > $TINYFAAS_TOKEN > file `token`.
// The file is TOML with the string keys url, token and endpoint; a missing
// file is no error, a malformed one or an unknown key is (naming the file
// and key).
Result<ManagementTarget> resolveManagementTarget(const ManagementFlags& flags, const ClientIo& io);

// The host `invoke` calls the function endpoints on: `endpointFlag`
// (--endpoint) > $TINYFAAS_ENDPOINT > file `endpoint` > the host of the
// management URL resolved as above. An endpoint is a host name, an address
// ([::1] or ::1) or a URL whose host is taken (http://edge-node-3:8000).
Result<std::string> resolveEndpointHost(const std::string& endpointFlag, const ManagementFlags& flags,
                                        const ClientIo& io);

}  // namespace tinyfaas::cli
