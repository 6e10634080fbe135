#include "daemon/config_file.hpp"

#include <regex>
#include <sstream>

#include <toml.hpp>

#include "core/failure.hpp"

namespace tinyfaas {

namespace {

// Flags of `serve` that are not settings.
bool isSetting(const std::string& key) { return key != "config" && key != "print-config" && key != "help"; }

// "[error] toml::parse_x: reason\n --> file\n | ...\n 3 | a = \n" -> "line 3: reason"
std::string oneLine(const std::string& tomlError) {
  std::string first = tomlError.substr(0, tomlError.find('\n'));
  if (first.starts_with("[error] ")) first.erase(0, 8);
  static const std::regex lineNumber(R"(\n\s*(\d+) \|)");
  std::smatch m;
  if (std::regex_search(tomlError, m, lineNumber)) return "line " + m[1].str() + ": " + first;
  return first;
}

const char* typeName(toml::value_t type) {
  switch (type) {
    case toml::value_t::integer: return "an integer";
    case toml::value_t::floating: return "a number";
    case toml::value_t::boolean: return "true or false";
    case toml::value_t::string: return "a string";
    case toml::value_t::array: return "an array";
    case toml::value_t::table: return "a table";
    default: return "a date or time";
  }
}

// The TOML value as the text CLI11 would get on the command line, or why
// it has the wrong type for `option`.
boost::system::result<std::string, Failure> asOptionText(const toml::value& value, const CLI::Option& option) {
  using boost::system::in_place_value;
  const std::string type = option.get_type_name();
  auto wrongType = [&](const char* expected) {
    return Failure{std::string("must be ") + expected + ", not " + typeName(value.type())};
  };
  if (type.starts_with("INT") || type.starts_with("UINT")) {
    if (!value.is_integer()) return wrongType("an integer");
    if (type.starts_with("UINT") && value.as_integer() < 0) return Failure{"must not be negative"};
    return {in_place_value, std::to_string(value.as_integer())};
  }
  if (type.starts_with("FLOAT")) {
    if (value.is_integer()) return {in_place_value, std::to_string(value.as_integer())};
    if (!value.is_floating()) return wrongType("a number");
    std::ostringstream text;
    text << value.as_floating();
    return {in_place_value, text.str()};
  }
  if (option.get_expected_min() == 0) {  // a flag
    if (!value.is_boolean()) return wrongType("true or false");
    return {in_place_value, value.as_boolean() ? "true" : "false"};
  }
  if (!value.is_string()) return wrongType("a string");
  return {in_place_value, value.as_string().str};
}

// A TOML basic string.
std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\u%04x", c);
      out += escape;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

}  // namespace

boost::system::result<void, std::string> applyConfigFile(const std::filesystem::path& path, CLI::App& serve) {
  const std::string where = "config " + path.string() + ": ";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return where + "no such file";
  toml::value file;
  try {
    file = toml::parse(path.string());
  } catch (const std::exception& e) {
    return where + oneLine(e.what());
  }
  // Check every key before setting any: a typo is an error even where a
  // flag would have overridden it.
  std::vector<std::pair<CLI::Option*, std::vector<std::string>>> settings;
  for (const auto& [key, value] : file.as_table()) {
    const std::string at = where + "line " + std::to_string(value.location().line()) + ": ";
    CLI::Option* option = isSetting(key) ? serve.get_option_no_throw("--" + key) : nullptr;
    if (!option) return at + "unknown key '" + key + "' (the keys are the flags of `tinyfaas serve --help` without --)";
    // A repeatable flag takes an array, one element per repetition.
    const bool repeatable = option->get_items_expected_max() > 1;
    std::vector<std::string> texts;
    for (const auto& item : value.is_array() && repeatable ? value.as_array() : std::vector<toml::value>{value}) {
      auto text = asOptionText(item, *option);
      if (!text) return at + "'" + key + "' " + text.error().message;
      texts.push_back(std::move(*text));
    }
    settings.emplace_back(option, std::move(texts));
  }
  for (auto& [option, texts] : settings) {
    // Set by a flag or environment variable; an empty array sets nothing.
    if (option->count() > 0 || texts.empty()) continue;
    try {
      for (const auto& text : texts) option->add_result(text);
      option->run_callback();
    } catch (const CLI::Error& e) {
      const std::string key = option->get_lnames().front();
      return where + "line " + std::to_string(toml::find(file, key).location().line()) + ": '" + key + "': " + e.what();
    }
  }
  return {};
}

std::string formatConfig(const DaemonConfig& c) {
  std::ostringstream out;
  auto text = [&](const char* key, const std::string& value) { out << key << " = " << quoted(value) << '\n'; };
  auto number = [&](const char* key, auto value) { out << key << " = " << value << '\n'; };
  out << "# tinyfaas serve: effective configuration\n";
  text("management-address", c.managementAddress);
  number("management-port", c.managementPort);
  text("address", c.address);
  number("http-port", c.httpPort);
  number("coap-port", c.coapPort);
  number("grpc-port", c.grpcPort);
  text("ports-file", c.portsFile.string());
  text("state-dir", c.stateDir.string());
  text("token-file", c.tokenFile.string());
  text("backend", c.backend);
  text("docker-host", c.dockerHost);
  text("runtime-images", c.runtimeImages);
  text("sandbox", c.sandbox);
  text("log-level", c.logLevel);
  number("max-body-bytes", c.maxBodyBytes);
  number("max-upload-bytes", c.maxUploadBytes);
  number("max-connections", c.maxConnections);
  number("max-body-bytes-in-flight", c.maxBodyBytesInFlight);
  number("management-max-connections", c.managementMaxConnections);
  {
    out << "upload-url-allow = [";
    for (std::size_t i = 0; i < c.uploadUrlAllow.size(); ++i) out << (i ? ", " : "") << quoted(c.uploadUrlAllow[i]);
    out << "]\n";
  }
  number("call-timeout", c.callTimeoutSeconds);
  number("shutdown-timeout", c.shutdownTimeoutSeconds);
  number("memory-budget-mb", c.memoryBudgetMb);
  text("memory-budget-counts", c.memoryBudgetCounts);
  number("warm-pool", c.warmPool);
  number("timeout-grace", c.timeoutGraceSeconds);
  number("async-max-calls", c.asyncMaxCalls);
  number("async-body-bytes", c.asyncBodyBytes);
  number("async-queue-limit", c.asyncQueueLimit);
  number("async-store-bytes", c.asyncStoreBytes);
  number("async-max-results", c.asyncMaxResults);
  number("async-retention", c.asyncRetentionSeconds);
  number("coap-max-uploads", c.coapMaxUploads);
  number("coap-upload-bytes", c.coapUploadBytes);
  number("grpc-max-calls", c.grpcMaxCalls);
  number("grpc-max-connections", c.grpcMaxConnections);
  number("grpc-body-bytes", c.grpcBodyBytes);
  text("mqtt", c.mqtt);
  text("mqtt-ca", c.mqttCa.string());
  text("mqtt-credentials", c.mqttCredentials.string());
  text("runtimes-dir", c.runtimesDir.string());
  text("binary-handler", c.binaryHandler.string());
  text("node", c.node);
  text("python", c.python);
  text("npm", c.npm);
  text("go", c.go);
  text("goproxy", c.goproxy);
  number("go-cache-mb", c.goCacheMb);
  text("sandbox-user", c.sandboxUser);
  text("cluster", c.cluster);
  text("node-name", c.nodeName);
  text("cluster-credentials", c.clusterCredentials.string());
  out << "offline = " << (c.offline ? "true" : "false") << '\n';
  out << "install-scripts = " << (c.installScripts ? "true" : "false") << '\n';
  return out.str();
}

}  // namespace tinyfaas
