#include "cli/cli_config.hpp"

#include <toml.hpp>

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
    if (key != "url" && key != "token") return failure(where + "unknown key '" + key + "' (use url and token)");
    if (!value.is_string()) return failure(where + "'" + key + "' must be a string");
    (key == "url" ? settings.url : settings.token) = value.as_string().str;
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

Result<ManagementTarget> resolveManagementTarget(const ManagementFlags& flags, const ClientIo& io) {
  ManagementTarget target{flags.url, flags.token};
  if (target.url.empty()) target.url = nonEmptyEnv(io, "TINYFAAS_URL").value_or("");
  // The variable upstream's scripts and earlier versions of this CLI read.
  if (target.url.empty()) target.url = nonEmptyEnv(io, "TINYFAAS_MANAGEMENT_URL").value_or("");
  if (target.token.empty()) target.token = nonEmptyEnv(io, "TINYFAAS_TOKEN").value_or("");
  if (target.url.empty() || target.token.empty()) {
    if (auto path = cliConfigPath(io)) {
      // A file named explicitly must exist; the default one is optional.
      auto file = readFile(*path, nonEmptyEnv(io, "TINYFAAS_CLI_CONFIG").has_value());
      if (!file) return failure(file.error());
      if (target.url.empty()) target.url = file->url.value_or("");
      if (target.token.empty()) target.token = file->token.value_or("");
    }
  }
  if (target.url.empty()) target.url = "http://localhost:8080";
  return target;
}

}  // namespace tinyfaas::cli
