#pragma once
// Parsing and validating management API request bodies. Pure functions: no
// I/O, so they are unit-tested and fuzzed directly.

#include <string>
#include <string_view>

#include <boost/system/result.hpp>
#include <nlohmann/json_fwd.hpp>

#include "core/failure.hpp"
#include "manager/function_config.hpp"

namespace tinyfaas {

inline constexpr int kMaxThreads = 64;
inline constexpr int kMinMemoryMb = 16;
inline constexpr int kMaxMemoryMb = 65536;
inline constexpr int kMaxTargetInFlight = 1024;
inline constexpr int kMaxTimeoutSeconds = 3600;
inline constexpr int kMaxConcurrency = 4096;
inline constexpr int kMaxQueue = 65536;


struct UploadRequest {
  FunctionConfig config;
  std::string zip;  // decoded bytes (for /upload)
  std::string url;  // for /uploadURL
  std::string subfolder;
};

// The fields /upload and /uploadURL share: name, env, threads, envs,
// memory_mb, cpus, egress, timeout, concurrency, queue, and the scaling fields. The state store keeps functions in this shape
// too, so a stored record is checked exactly like an upload.
boost::system::result<FunctionConfig, Failure> parseFunctionConfig(const nlohmann::json& document);
nlohmann::json functionConfigJson(const FunctionConfig& config);

// POST /upload {"name","env","threads","zip","envs"}.
boost::system::result<UploadRequest, Failure> parseUpload(std::string_view body);
// POST /uploadURL {"name","env","threads","url","subfolder_path","envs"}.
boost::system::result<UploadRequest, Failure> parseUploadUrl(std::string_view body);
// POST /delete {"name"}.
boost::system::result<std::string, Failure> parseDelete(std::string_view body);

}  // namespace tinyfaas
