#pragma once
// A function as the cluster's registry keeps it (bucket "functions"): its
// configuration with owner, which code it runs, how many nodes run it, and
// a version unique to the upload, by which every node tells whether its
// local copy is current. Pure functions: no I/O.

#include <string>
#include <string_view>

#include "cluster/cluster_transport.hpp"
#include "manager/function_config.hpp"

namespace tinyfaas::cluster {

struct FunctionRecord {
  FunctionConfig config;  // with its owner
  std::string code;       // SHA-256 (hex) of the zip in the code bucket
  std::string subfolder;  // /uploadURL's subfolder_path
  std::string version;    // unique per upload
  int nodes = 0;          // upload field "nodes"; 0: every node runs it
};

std::string recordJson(const FunctionRecord& record);
// Checks the configuration exactly as an upload (a record is input too).
Result<FunctionRecord> parseRecord(std::string_view text);

}  // namespace tinyfaas::cluster
