#include "api/upload_request.hpp"

#include <nlohmann/json.hpp>

#include "util/base64.hpp"

namespace tinyfaas {

using nlohmann::json;
using Result = boost::system::result<UploadRequest, Failure>;

namespace {

boost::system::result<json, Failure> parseObject(std::string_view body) {
  json document = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) return Failure{"request body is not valid JSON"};
  if (!document.is_object()) return Failure{"request body must be a JSON object"};
  return {boost::system::in_place_value, std::move(document)};
}

// "nodes": 1..kMaxClusterNodes; absent or null: every node.
boost::system::result<int, Failure> nodesField(const json& document) {
  auto it = document.find("nodes");
  if (it == document.end() || it->is_null()) return 0;
  if (!it->is_number_integer() || it->get<long long>() < 1 || it->get<long long>() > kMaxClusterNodes ||
      (it->is_number_unsigned() && it->get<unsigned long long>() > kMaxClusterNodes))
    return Failure{"field \"nodes\" must be an integer between 1 and " + std::to_string(kMaxClusterNodes) +
                   " (omit it to run the function on every node)"};
  return static_cast<int>(it->get<long long>());
}

}  // namespace

Result parseUpload(std::string_view body) {
  auto document = parseObject(body);
  if (!document) return document.error();
  if (auto unknown = unknownConfigField(*document, {"zip", "nodes"})) return *unknown;
  auto config = parseFunctionConfig(*document);
  if (!config) return config.error();
  auto nodes = nodesField(*document);
  if (!nodes) return nodes.error();
  auto zip = requiredStringField(*document, "zip");
  if (!zip) return zip.error();
  auto bytes = decodeBase64(*zip);
  if (!bytes) return Failure{"field \"zip\" is not valid base64"};
  if (bytes->empty()) return Failure{"field \"zip\" is empty"};
  UploadRequest request;
  request.config = std::move(*config);
  request.zip = std::move(*bytes);
  request.nodes = *nodes;
  return request;
}

Result parseUploadUrl(std::string_view body) {
  auto document = parseObject(body);
  if (!document) return document.error();
  if (auto unknown = unknownConfigField(*document, {"url", "subfolder_path", "nodes"})) return *unknown;
  auto config = parseFunctionConfig(*document);
  if (!config) return config.error();
  auto nodes = nodesField(*document);
  if (!nodes) return nodes.error();
  auto url = requiredStringField(*document, "url");
  if (!url) return url.error();
  if (url->rfind("http://", 0) != 0 && url->rfind("https://", 0) != 0)
    return Failure{"url \"" + *url + "\" must start with http:// or https://"};
  UploadRequest request;
  request.config = std::move(*config);
  request.url = std::move(*url);
  request.nodes = *nodes;
  if (auto sub = document->find("subfolder_path"); sub != document->end() && !sub->is_null()) {
    if (!sub->is_string()) return Failure{"field \"subfolder_path\" must be a string"};
    request.subfolder = sub->get<std::string>();
  }
  return request;
}

boost::system::result<std::string, Failure> parseDelete(std::string_view body) {
  auto document = parseObject(body);
  if (!document) return document.error();
  return functionNameField(*document);
}

}  // namespace tinyfaas
