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
// A record that cannot be used quarantines its function: its files stay,
// and its name stays taken, so that a damaged disk never hands one tenant's
// name (and the URLs its clients call) to another.
//
// Everything is readable by the daemon's user only: records 0600 (they hold
// env values), the code as sandbox::codeMode() says.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <boost/system/result.hpp>

#include "manager/function_config.hpp"

namespace tinyfaas {

struct StoredFunction {
  FunctionConfig config;                          // with its owner
  std::string version;                            // "vN", a folder next to the record
  std::filesystem::path codeSubdir;               // the code's folder inside the version (subfolder_path)
  std::chrono::system_clock::time_point created;  // first deploy of the name
  std::chrono::system_clock::time_point updated;  // this version's deploy
};

// A function whose record load() could not use.
struct QuarantinedFunction {
  std::string name;
  std::string reason;  // one line: what is wrong with function.json
  std::string owner;   // as far as the record still says; empty when it does not
};

struct LoadedFunctions {
  std::vector<StoredFunction> functions;
  std::vector<QuarantinedFunction> quarantined;
  std::uint64_t nextVersion = 1;  // above every version folder found
};

// Used from the management thread only.
class FunctionStore {
 public:
  explicit FunctionStore(std::filesystem::path functionsDir) : dir_(std::move(functionsDir)) {}

  // Reads every record and removes leftovers. A record that cannot be read
  // or does not validate is quarantined with a warning and its files are
  // left alone for the operator; only a missing directory is an error.
  boost::system::result<LoadedFunctions, std::string> load() const;

  std::filesystem::path versionDir(const std::string& name, std::uint64_t version) const;
  // Makes the version's files durable, then points the record at it.
  boost::system::result<void, std::string> save(const StoredFunction& function) const;
  // Forgets the function (the record first, then its files); quarantined
  // ones too.
  boost::system::result<void, std::string> erase(const std::string& name) const;
  // Removes the version folders of `name` other than `keep`: those a
  // quarantined function left once an admin replaced it.
  void removeOtherVersions(const std::string& name, const std::string& keep) const;

 private:
  std::filesystem::path recordPath(const std::string& name) const;

  std::filesystem::path dir_;
};

}  // namespace tinyfaas
