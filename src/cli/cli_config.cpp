#include "cli/cli_config.hpp"

#include <toml.hpp>

#include "cli/http_url.hpp"
#include "util/web_url.hpp"

namespace tinyfaas::cli {

namespace fs = std::filesystem;

namespace {

std::string firstLine(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  if (line.starts_with("[error] ")) line.erase(0, 8);
  return line;
}

std::optional<std::string> nonEmptyEnv(const ClientIo& io, const char* name) {
  auto value = io.getEnv(name);
  if (value && !value->empty()) return value;
  return std::nullopt;
}

struct FileSettings {
  std::optional<std::string> url;
  std::optional<std::string> token;
  std::optional<std::string> endpoint;
};

Result<FileSettings> readFile(const fs::path& path, bool mustExist) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    if (mustExist) return failure("config " + path.string() + ": no such file");
    return FileSettings{};
  }
  toml::value file;
  try {
    file = toml::parse(path.string());
  } catch (const std::exception& e) {
    return failure("config " + path.string() + ": " + firstLine(e.what()));
  }
  FileSettings settings;
  for (const auto& [key, value] : file.as_table()) {
    const std::string where = "config " + path.string() + ": line " + std::to_string(value.location().line()) + ": ";
    auto* slot = key == "url"        ? &settings.url
                 : key == "token"    ? &settings.token
                 : key == "endpoint" ? &settings.endpoint
                                     : nullptr;
    if (slot == nullptr) return failure(where + "unknown key '" + key + "' (use url, token and endpoint)");
    if (!value.is_string()) return failure(where + "'" + key + "' must be a string");
    *slot = value.as_string().str;
  }
  return settings;
}

}  // namespace

std::optional<fs::path> cliConfigPath(const ClientIo& io) {
  if (auto explicitPath = nonEmptyEnv(io, "TINYFAAS_CLI_CONFIG")) return fs::path(*explicitPath);
  if (auto xdg = nonEmptyEnv(io, "XDG_CONFIG_HOME")) return fs::path(*xdg) / "tinyfaas" / "cli.toml";
  if (auto home = nonEmptyEnv(io, "HOME")) return fs::path(*home) / ".config" / "tinyfaas" / "cli.toml";
  return std::nullopt;
}

// The config file, or no settings when there is none to read.
Result<FileSettings> readConfig(const ClientIo& io) {
  auto path = cliConfigPath(io);
  if (!path) return FileSettings{};
  // A file named explicitly must exist; the default one is optional.
  return readFile(*path, nonEmptyEnv(io, "TINYFAAS_CLI_CONFIG").has_value());
}

Result<ManagementTarget> resolveManagementTarget(const ManagementFlags& flags, const ClientIo& io) {
  ManagementTarget target{flags.url, flags.token};
  if (target.url.empty()) target.url = nonEmptyEnv(io, "TINYFAAS_URL").value_or("");
  // The variable upstream's scripts and earlier versions of this CLI read.
  if (target.url.empty()) target.url = nonEmptyEnv(io, "TINYFAAS_MANAGEMENT_URL").value_or("");
  if (target.token.empty()) target.token = nonEmptyEnv(io, "TINYFAAS_TOKEN").value_or("");
  if (target.url.empty() || target.token.empty()) {
    auto file = readConfig(io);
    if (!file) return failure(file.error());
    if (target.url.empty()) target.url = file->url.value_or("");
    if (target.token.empty()) target.token = file->token.value_or("");
  }
  if (target.url.empty()) target.url = "http://localhost:8080";
  return target;
}

Result<std::string> resolveEndpointHost(const std::string& endpointFlag, const ManagementFlags& flags,
                                        const ClientIo& io) {
  std::string endpoint = endpointFlag;
  if (endpoint.empty()) endpoint = nonEmptyEnv(io, "TINYFAAS_ENDPOINT").value_or("");
  if (endpoint.empty()) {
    auto file = readConfig(io);
    if (!file) return failure(file.error());
    endpoint = file->endpoint.value_or("");
  }
  if (endpoint.empty()) {
    auto target = resolveManagementTarget(flags, io);
    if (!target) return failure(target.error());
    auto url = parseHttpUrl(target->url);
    if (!url) return failure(url.error());
    return success(std::move(url->host));
  }
  if (endpoint.find("://") != std::string::npos) {
    auto url = parseWebUrl(endpoint);
    if (!url) return failure("endpoint: " + url.error());
    return success(std::move(url->host));
  }
  if (endpoint.starts_with('[') && endpoint.ends_with(']')) return success(endpoint.substr(1, endpoint.size() - 2));
  return success(std::move(endpoint));
}

}  // namespace tinyfaas::cli
