// The management API's JSON bodies: /upload, /uploadURL and /delete parse
// any bytes into a request or a one-line reason, never anything else.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "api/upload_request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  if (auto upload = tinyfaas::parseUpload(body)) {
    if (upload->zip.empty() || upload->config.threads < 1) std::abort();
  } else if (upload.error().message.empty()) {
    std::abort();
  }
  if (auto upload = tinyfaas::parseUploadUrl(body)) {
    if (upload->url.rfind("http", 0) != 0) std::abort();
  } else if (upload.error().message.empty()) {
    std::abort();
  }
  if (auto name = tinyfaas::parseDelete(body); !name && name.error().message.empty()) std::abort();
  return 0;
}
