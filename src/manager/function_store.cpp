#include "manager/function_store.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/function_name.hpp"
#include "manager/function_config_json.hpp"
#include "util/durable_file.hpp"

namespace tinyfaas {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kRecord = "function.json";
constexpr int kFormat = 1;

// "v12" -> 12; anything else is not a version folder.
std::optional<std::uint64_t> versionNumber(const std::string& folder) {
  if (folder.size() < 2 || folder[0] != 'v') return std::nullopt;
  std::uint64_t number = 0;
  auto [end, ec] = std::from_chars(folder.data() + 1, folder.data() + folder.size(), number);
  if (ec != std::errc{} || end != folder.data() + folder.size()) return std::nullopt;
  return number;
}

std::int64_t millis(std::chrono::system_clock::time_point time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

std::optional<std::chrono::system_clock::time_point> timeField(const json& record, const char* field) {
  auto it = record.find(field);
  if (it == record.end() || !it->is_number_integer()) return std::nullopt;
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(it->get<std::int64_t>()));
}

// json converts from anything, a string too: hence the explicit tags.
boost::system::result<json, std::string> readRecord(const fs::path& file) {
  auto failed = [](const char* reason) {
    return boost::system::result<json, std::string>(boost::system::in_place_error, reason);
  };
  std::ifstream in(file, std::ios::binary);
  if (!in) return failed("cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return failed("cannot be read");
  json record = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (record.is_discarded() || !record.is_object()) return failed("is not a JSON object (cut short?)");
  return boost::system::result<json, std::string>(boost::system::in_place_value, std::move(record));
}

// The owner a record names even when the rest of it does not validate.
std::string ownerOf(const boost::system::result<json, std::string>& record) {
  if (!record) return {};
  auto owner = record->find("owner");
  return owner != record->end() && owner->is_string() ? owner->get<std::string>() : std::string();
}

boost::system::result<StoredFunction, std::string> parseRecord(const boost::system::result<json, std::string>& read,
                                                               const fs::path& folder, const std::string& name) {
  if (!read) return read.error();
  const json& record = *read;
  if (record.value("format", 0) != kFormat) return std::string("has an unknown format");
  auto config = parseFunctionConfig(record);
  if (!config) return "is invalid: " + config.error().message;
  if (config->name != name) return "names function " + config->name + ", not its folder's " + name;
  StoredFunction stored;
  stored.config = std::move(*config);
  auto owner = record.find("owner");
  auto version = record.find("version");
  auto code = record.find("code");
  if (owner == record.end() || !owner->is_string() || version == record.end() || !version->is_string() ||
      code == record.end() || !code->is_string())
    return std::string("lacks owner, version or code");
  stored.config.owner = owner->get<std::string>();
  stored.version = version->get<std::string>();
  stored.codeSubdir = fs::path(code->get<std::string>()).lexically_normal();
  if (stored.codeSubdir.empty()) stored.codeSubdir = ".";
  if (!versionNumber(stored.version)) return "names no version folder (" + stored.version + ")";
  if (stored.codeSubdir.is_absolute() || *stored.codeSubdir.begin() == "..")
    return "points outside its folder (" + stored.codeSubdir.string() + ")";
  // Records from before timestamps were kept read as "now".
  const auto now = std::chrono::system_clock::now();
  stored.created = timeField(record, "created_ms").value_or(now);
  stored.updated = timeField(record, "updated_ms").value_or(now);
  std::error_code ec;
  if (!fs::is_directory(folder / stored.version / stored.codeSubdir, ec))
    return "points at missing code (" + stored.version + ")";
  return stored;
}

}  // namespace

fs::path FunctionStore::recordPath(const std::string& name) const { return dir_ / name / kRecord; }

fs::path FunctionStore::versionDir(const std::string& name, std::uint64_t version) const {
  return dir_ / name / ("v" + std::to_string(version));
}

boost::system::result<LoadedFunctions, std::string> FunctionStore::load() const {
  LoadedFunctions loaded;
  std::error_code ec;
  fs::directory_iterator entries(dir_, ec);
  if (ec) return "cannot read " + dir_.string() + ": " + ec.message();
  std::vector<fs::path> folders;
  for (const auto& entry : entries) folders.push_back(entry.path());
  std::sort(folders.begin(), folders.end());

  for (const auto& folder : folders) {
    const std::string name = folder.filename().string();
    for (const auto& entry : fs::directory_iterator(folder, ec)) {
      if (auto number = versionNumber(entry.path().filename().string()))
        loaded.nextVersion = std::max(loaded.nextVersion, *number + 1);
    }
    if (!isValidFunctionName(name) || !fs::is_directory(folder, ec)) {
      spdlog::warn("state: ignoring {}: not a function's folder", folder.string());
      continue;
    }
    const fs::path record = folder / kRecord;
    if (!fs::exists(record, ec)) {
      // Only an upload that never finished leaves a folder without a record.
      spdlog::info("state: removing {}, an unfinished first upload", folder.string());
      fs::remove_all(folder, ec);
      continue;
    }
    const auto json = readRecord(record);
    auto stored = parseRecord(json, folder, name);
    if (!stored) {
      const std::string reason = std::string(kRecord) + " " + stored.error();
      spdlog::warn(
          "state: function {} is quarantined: {} {}; its name stays taken and its files stay for "
          "inspection until an admin uploads or deletes it",
          name, record.string(), stored.error());
      loaded.quarantined.push_back({name, reason, ownerOf(json)});
      continue;
    }
    // Versions the record does not point at are unfinished uploads or
    // replaced ones whose removal a crash cut short.
    removeOtherVersions(name, stored->version);
    fs::remove(folder / (std::string(kRecord) + ".tmp"), ec);
    // Records of versions before 0600 (env values are secrets).
    if ((fs::status(record, ec).permissions() & (fs::perms::group_all | fs::perms::others_all)) != fs::perms::none)
      fs::permissions(record, fs::perms::owner_read | fs::perms::owner_write, ec);
    loaded.functions.push_back(std::move(*stored));
  }
  return loaded;
}

boost::system::result<void, std::string> FunctionStore::save(const StoredFunction& function) const {
  const fs::path folder = dir_ / function.config.name;
  // The code must be on disk before a record can point at it.
  if (auto synced = syncFilesystem(folder / function.version); !synced) return synced;
  if (auto synced = syncDirectory(folder); !synced) return synced;
  json record = functionConfigJson(function.config);
  record["format"] = kFormat;
  record["owner"] = function.config.owner;
  record["version"] = function.version;
  record["code"] = function.codeSubdir.empty() ? "." : function.codeSubdir.string();
  record["created_ms"] = millis(function.created);
  record["updated_ms"] = millis(function.updated);
  return writeFileDurably(folder / kRecord, record.dump(2) + "\n");
}

void FunctionStore::removeOtherVersions(const std::string& name, const std::string& keep) const {
  std::error_code ec;
  std::vector<fs::path> unused;
  for (const auto& entry : fs::directory_iterator(dir_ / name, ec)) {
    const std::string folder = entry.path().filename().string();
    if (folder != keep && versionNumber(folder)) unused.push_back(entry.path());
  }
  for (const auto& version : unused) {
    spdlog::info("state: removing {}, a version of {} not in use", version.string(), name);
    fs::remove_all(version, ec);
  }
}

boost::system::result<void, std::string> FunctionStore::erase(const std::string& name) const {
  std::error_code ec;
  // Without its record the folder is garbage that load() removes, should
  // removing the rest be cut short.
  fs::remove(recordPath(name), ec);
  if (ec) return "cannot remove " + recordPath(name).string() + ": " + ec.message();
  if (auto synced = syncDirectory(dir_ / name); !synced) return synced;
  fs::remove_all(dir_ / name, ec);
  if (ec) return "cannot remove " + (dir_ / name).string() + ": " + ec.message();
  return {};
}

}  // namespace tinyfaas
