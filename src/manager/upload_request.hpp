#pragma once
// Parsing and validating management API request bodies. Pure functions: no
// I/O, so they are unit-tested and fuzzed directly.

#include <string>
#include <string_view>

#include <boost/system/result.hpp>

#include "manager/function_manager.hpp"

namespace tinyfaas {

inline constexpr int kMaxThreads = 64;

// A one-line reason for the 400 reply. (Not a bare std::string: a result
// whose value is also a string could not tell the two apart.)
struct ParseError {
  std::string message;
};

struct UploadRequest {
  FunctionConfig config;
  std::string zip;  // decoded bytes (for /upload)
  std::string url;  // for /uploadURL
  std::string subfolder;
};

// POST /upload {"name","env","threads","zip","envs"}.
boost::system::result<UploadRequest, ParseError> parseUpload(std::string_view body);
// POST /uploadURL {"name","env","threads","url","subfolder_path","envs"}.
boost::system::result<UploadRequest, ParseError> parseUploadUrl(std::string_view body);
// POST /delete {"name"}.
boost::system::result<std::string, ParseError> parseDelete(std::string_view body);

}  // namespace tinyfaas
