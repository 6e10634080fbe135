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

}  // namespace

Result parseUpload(std::string_view body) {
  auto document = parseObject(body);
  if (!document) return document.error();
  if (auto unknown = unknownConfigField(*document, {"zip"})) return *unknown;
  auto config = parseFunctionConfig(*document);
  if (!config) return config.error();
  auto zip = requiredStringField(*document, "zip");
  if (!zip) return zip.error();
  auto bytes = decodeBase64(*zip);
  if (!bytes) return Failure{"field \"zip\" is not valid base64"};
  if (bytes->empty()) return Failure{"field \"zip\" is empty"};
  UploadRequest request;
  request.config = std::move(*config);
  request.zip = std::move(*bytes);
  return request;
}

Result parseUploadUrl(std::string_view body) {
  auto document = parseObject(body);
  if (!document) return document.error();
  if (auto unknown = unknownConfigField(*document, {"url", "subfolder_path"})) return *unknown;
  auto config = parseFunctionConfig(*document);
  if (!config) return config.error();
  auto url = requiredStringField(*document, "url");
  if (!url) return url.error();
  if (url->rfind("http://", 0) != 0 && url->rfind("https://", 0) != 0)
    return Failure{"url \"" + *url + "\" must start with http:// or https://"};
  UploadRequest request;
  request.config = std::move(*config);
  request.url = std::move(*url);
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
