#include "cluster/function_record.hpp"

#include <nlohmann/json.hpp>

#include "manager/function_config_json.hpp"

namespace tinyfaas::cluster {

using nlohmann::json;

std::string recordJson(const FunctionRecord& record) {
  return json{{"config", functionConfigJson(record.config)},
              {"owner", record.config.owner},
              {"code", record.code},
              {"subfolder", record.subfolder},
              {"version", record.version},
              {"nodes", record.nodes}}
      .dump();
}

Result<FunctionRecord> parseRecord(std::string_view text) {
  const json document = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object() || !document.contains("config")) return Failed{"not a function record"};
  auto config = parseFunctionConfig(document["config"]);
  if (!config) return Failed{config.error().message};
  FunctionRecord record;
  record.config = std::move(*config);
  const auto text_of = [&](const char* field) {
    auto it = document.find(field);
    return it != document.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  record.config.owner = text_of("owner");
  record.code = text_of("code");
  record.subfolder = text_of("subfolder");
  record.version = text_of("version");
  if (auto it = document.find("nodes"); it != document.end() && it->is_number_integer()) record.nodes = it->get<int>();
  if (record.code.empty() || record.version.empty()) return Failed{"record without code or version"};
  return record;
}

}  // namespace tinyfaas::cluster
