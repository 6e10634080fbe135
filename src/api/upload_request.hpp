#pragma once
// Parsing and validating management API request bodies. Pure functions: no
// I/O, so they are unit-tested and fuzzed directly.

#include <string>
#include <string_view>

#include <boost/system/result.hpp>

#include "core/failure.hpp"
#include "manager/function_config_json.hpp"

namespace tinyfaas {

inline constexpr int kMaxClusterNodes = 1024;

struct UploadRequest {
  FunctionConfig config;
  std::string zip;  // decoded bytes (for /upload)
  std::string url;  // for /uploadURL
  std::string subfolder;
  int nodes = 0;  // "nodes" (cluster mode): how many nodes run it; 0 for every node
};

// POST /upload {"name","env","threads","zip","envs"}.
boost::system::result<UploadRequest, Failure> parseUpload(std::string_view body);
// POST /uploadURL {"name","env","threads","url","subfolder_path","envs"}.
boost::system::result<UploadRequest, Failure> parseUploadUrl(std::string_view body);
// POST /delete {"name"}.
boost::system::result<std::string, Failure> parseDelete(std::string_view body);

}  // namespace tinyfaas
