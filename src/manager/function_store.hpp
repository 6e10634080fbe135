#pragma once
// Deployed functions on disk, so that they survive a restart or a crash:
//
//   FUNCTIONS/NAME/function.json   the record: config, owner, version in use
//   FUNCTIONS/NAME/vN/             the unpacked code of version N
//
// A deploy unpacks into a fresh vN; only once that version works does the
// record, replaced atomically (util/durable_file), point at it. A crash at
// any moment therefore leaves the old record and code, or the new ones;
// load() removes versions no record points at (unfinished uploads) and
// folders without a record (a first upload of a name that never finished).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <boost/system/result.hpp>

#include "manager/function_config.hpp"

namespace tinyfaas {

struct StoredFunction {
  FunctionConfig config;  // with its owner
  std::string version;    // "vN", a folder next to the record
  std::filesystem::path codeSubdir;  // the code's folder inside the version (subfolder_path)
  std::chrono::system_clock::time_point created;  // first deploy of the name
  std::chrono::system_clock::time_point updated;  // this version's deploy
};

struct LoadedFunctions {
  std::vector<StoredFunction> functions;
  std::uint64_t nextVersion = 1;  // above every version folder found
};

// Used from the management thread only.
class FunctionStore {
 public:
  explicit FunctionStore(std::filesystem::path functionsDir) : dir_(std::move(functionsDir)) {}

  // Reads every record and removes leftovers. A record that cannot be read
  // or does not validate is skipped with a warning and its files are left
  // alone for the operator; only a missing directory is an error.
  boost::system::result<LoadedFunctions, std::string> load() const;

  std::filesystem::path versionDir(const std::string& name, std::uint64_t version) const;
  // Makes the version's files durable, then points the record at it.
  boost::system::result<void, std::string> save(const StoredFunction& function) const;
  // Forgets the function (the record first, then its files).
  boost::system::result<void, std::string> erase(const std::string& name) const;

 private:
  std::filesystem::path recordPath(const std::string& name) const;

  std::filesystem::path dir_;
};

}  // namespace tinyfaas
