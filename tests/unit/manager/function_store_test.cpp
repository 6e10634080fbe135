#include "manager/function_store.hpp"

#include <gtest/gtest.h>

#include <map>

#include <nlohmann/json.hpp>

#include "test_support.hpp"
#include "util/durable_file.hpp"
#include "util/private_dir.hpp"

namespace tinyfaas {
namespace {

namespace fs = std::filesystem;

class FunctionStoreTest : public ::testing::Test {
 protected:
  FunctionStoreTest() { fs::create_directories(functions); }

  StoredFunction stored(const std::string& name, std::uint64_t version, const std::string& owner = "alice") {
    StoredFunction function;
    function.config.name = name;
    function.config.runtime = Runtime::python3;
    function.config.threads = 3;
    function.config.env = {"GREETING=hi", "EMPTY="};
    function.config.limits = {128, 0.5, true};
    function.config.calls = {std::chrono::milliseconds(2500), 4, 9, {4, std::chrono::milliseconds(1000)}};
    function.config.owner = owner;
    function.version = "v" + std::to_string(version);
    function.codeSubdir = "src";
    dir.writeFile(store.versionDir(name, version) / "src" / "fn.py", "def fn(i, h):\n    return i\n");
    return function;
  }

  test::TempDir dir;
  fs::path functions = dir / "functions";
  FunctionStore store{functions};
};

TEST_F(FunctionStoreTest, SavedFunctionsLoadWithEverySetting) {
  ASSERT_TRUE(store.save(stored("echo", 4)));
  auto loaded = store.load();
  ASSERT_TRUE(loaded) << loaded.error();
  ASSERT_EQ(loaded->functions.size(), 1u);
  const auto& echo = loaded->functions[0];
  EXPECT_EQ(echo.config.name, "echo");
  EXPECT_EQ(echo.config.runtime, Runtime::python3);
  EXPECT_EQ(echo.config.threads, 3);
  EXPECT_EQ(echo.config.env, (std::vector<std::string>{"GREETING=hi", "EMPTY="}));
  EXPECT_EQ(echo.config.limits.memoryMb, 128);
  EXPECT_DOUBLE_EQ(echo.config.limits.cpus, 0.5);
  EXPECT_TRUE(echo.config.limits.egress);
  EXPECT_EQ(echo.config.calls.timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(echo.config.calls.concurrency, 4);
  EXPECT_EQ(echo.config.calls.queue, 9);
  // The retry policy of asynchronous calls survives a restart.
  EXPECT_EQ(echo.config.calls.async.retries, 4);
  EXPECT_EQ(echo.config.calls.async.backoff, std::chrono::milliseconds(1000));
  EXPECT_EQ(echo.config.owner, "alice");
  EXPECT_EQ(echo.version, "v4");
  EXPECT_EQ(echo.codeSubdir, "src");
  EXPECT_EQ(loaded->nextVersion, 5u);
  // Replaced whole: no temporary left next to it.
  EXPECT_FALSE(fs::exists(functions / "echo" / "function.json.tmp"));
}

TEST_F(FunctionStoreTest, SavingAgainPointsTheRecordAtTheNewVersion) {
  ASSERT_TRUE(store.save(stored("echo", 1)));
  auto second = stored("echo", 2, "bob");
  ASSERT_TRUE(store.save(second));
  auto loaded = store.load();
  ASSERT_TRUE(loaded);
  ASSERT_EQ(loaded->functions.size(), 1u);
  EXPECT_EQ(loaded->functions[0].version, "v2");
  EXPECT_EQ(loaded->functions[0].config.owner, "bob");
  EXPECT_FALSE(fs::exists(store.versionDir("echo", 1)));  // no longer pointed at: removed at load
}

TEST_F(FunctionStoreTest, LoadRemovesWhatUnfinishedUploadsLeft) {
  ASSERT_TRUE(store.save(stored("echo", 2)));
  // A redeploy killed while unpacking v7, and its record's temporary.
  dir.writeFile(store.versionDir("echo", 7) / "fn.py", "half");
  dir.writeFile(functions / "echo" / "function.json.tmp", "{\"na");
  // A first upload of a new name killed before its record was written.
  dir.writeFile(store.versionDir("fresh", 9) / "fn.py", "half");
  auto loaded = store.load();
  ASSERT_TRUE(loaded);
  ASSERT_EQ(loaded->functions.size(), 1u);
  EXPECT_EQ(loaded->functions[0].version, "v2");
  EXPECT_TRUE(fs::exists(store.versionDir("echo", 2) / "src" / "fn.py"));
  EXPECT_FALSE(fs::exists(store.versionDir("echo", 7)));
  EXPECT_FALSE(fs::exists(functions / "echo" / "function.json.tmp"));
  EXPECT_FALSE(fs::exists(functions / "fresh"));
  // New versions never reuse a number a crash may have left half-written.
  EXPECT_EQ(loaded->nextVersion, 10u);
}

// A record that cannot be used keeps its name taken (issue 12, finding 12):
// skipping it would hand the name, and the URLs its clients call, to
// whoever uploads it next.
TEST_F(FunctionStoreTest, CorruptOrPartialRecordsAreQuarantinedAndKept) {
  ASSERT_TRUE(store.save(stored("good", 1)));
  ASSERT_TRUE(store.save(stored("cut", 2)));
  ASSERT_TRUE(store.save(stored("wrong", 3, "bob")));
  ASSERT_TRUE(store.save(stored("lost", 4)));
  ASSERT_TRUE(store.save(stored("empty", 5)));
  const std::string record = test::readFile(functions / "cut" / "function.json");
  dir.writeFile(functions / "cut" / "function.json", record.substr(0, record.size() / 2));
  auto wrong = nlohmann::json::parse(test::readFile(functions / "wrong" / "function.json"));
  wrong["threads"] = 0;
  dir.writeFile(functions / "wrong" / "function.json", wrong.dump());
  fs::remove_all(store.versionDir("lost", 4));
  dir.writeFile(functions / "empty" / "function.json", "");
  dir.writeFile(functions / "not a name" / "function.json", "{}");

  auto loaded = store.load();
  ASSERT_TRUE(loaded) << loaded.error();
  ASSERT_EQ(loaded->functions.size(), 1u);
  EXPECT_EQ(loaded->functions[0].config.name, "good");
  std::map<std::string, QuarantinedFunction> quarantined;
  for (const auto& function : loaded->quarantined) quarantined[function.name] = function;
  ASSERT_EQ(quarantined.size(), 4u);
  EXPECT_EQ(quarantined["cut"].reason, "function.json is not a JSON object (cut short?)");
  EXPECT_EQ(quarantined["empty"].reason, "function.json is not a JSON object (cut short?)");
  EXPECT_NE(quarantined["wrong"].reason.find("threads"), std::string::npos) << quarantined["wrong"].reason;
  EXPECT_EQ(quarantined["lost"].reason, "function.json points at missing code (v4)");
  // The owner, where what is left of the record still says it.
  EXPECT_EQ(quarantined["wrong"].owner, "bob");
  EXPECT_EQ(quarantined["cut"].owner, "");
  for (const auto& [name, function] : quarantined)
    EXPECT_EQ(function.reason.find('\n'), std::string::npos) << name << ": " << function.reason;
  // Left for the operator to inspect, not deleted; version numbers stay used.
  EXPECT_TRUE(fs::exists(store.versionDir("cut", 2)));
  EXPECT_TRUE(fs::exists(functions / "wrong" / "function.json"));
  EXPECT_TRUE(fs::exists(functions / "not a name"));
  EXPECT_EQ(loaded->nextVersion, 6u);
}

TEST_F(FunctionStoreTest, AQuarantinedFunctionIsReplacedByANewRecordOrErased) {
  ASSERT_TRUE(store.save(stored("fixed", 1)));
  ASSERT_TRUE(store.save(stored("gone", 2)));
  for (const char* name : {"fixed", "gone"}) dir.writeFile(functions / name / "function.json", "{\"format\"");
  auto loaded = store.load();
  ASSERT_TRUE(loaded);
  ASSERT_EQ(loaded->quarantined.size(), 2u);

  // An admin's upload: a new version and record, then the old code goes.
  ASSERT_TRUE(store.save(stored("fixed", 7)));
  store.removeOtherVersions("fixed", "v7");
  EXPECT_FALSE(fs::exists(store.versionDir("fixed", 1)));
  ASSERT_TRUE(store.erase("gone"));
  EXPECT_FALSE(fs::exists(functions / "gone"));

  loaded = store.load();
  ASSERT_TRUE(loaded);
  EXPECT_TRUE(loaded->quarantined.empty());
  ASSERT_EQ(loaded->functions.size(), 1u);
  EXPECT_EQ(loaded->functions[0].version, "v7");
}

// Records hold env values: the daemon's user only (issue 12, finding 11).
TEST_F(FunctionStoreTest, RecordsAreReadableByTheOwnerOnly) {
  dir.writeFile(functions / "echo" / "function.json.tmp", "stale", fs::perms(0644));
  ASSERT_TRUE(store.save(stored("echo", 1)));
  auto mode = [](const fs::path& file) { return fs::status(file).permissions() & fs::perms::mask; };
  EXPECT_EQ(mode(functions / "echo" / "function.json"), fs::perms(0600));
  // One an earlier version wrote world-readable is tightened at load.
  fs::permissions(functions / "echo" / "function.json", fs::perms(0644));
  ASSERT_TRUE(store.load());
  EXPECT_EQ(mode(functions / "echo" / "function.json"), fs::perms(0600));
}

TEST_F(FunctionStoreTest, RecordsFromBeforeCallLimitsLoadWithTheDefaults) {
  ASSERT_TRUE(store.save(stored("echo", 1)));
  auto record = nlohmann::json::parse(test::readFile(functions / "echo" / "function.json"));
  for (const char* field : {"timeout", "concurrency", "queue", "async"}) record.erase(field);
  dir.writeFile(functions / "echo" / "function.json", record.dump());
  auto loaded = store.load();
  ASSERT_TRUE(loaded);
  ASSERT_EQ(loaded->functions.size(), 1u);
  const CallLimits& calls = loaded->functions[0].config.calls;
  EXPECT_EQ(calls.timeout.count(), 0);  // the daemon's --call-timeout
  EXPECT_EQ(calls.concurrency, CallLimits{}.concurrency);
  EXPECT_EQ(calls.queue, CallLimits{}.queue);
  EXPECT_EQ(calls.async.retries, RetryPolicy{}.retries);
}

TEST_F(FunctionStoreTest, RecordsPointingOutsideTheirFolderAreQuarantined) {
  ASSERT_TRUE(store.save(stored("echo", 1)));
  auto record = nlohmann::json::parse(test::readFile(functions / "echo" / "function.json"));
  record["code"] = "../../..";
  dir.writeFile(functions / "echo" / "function.json", record.dump());
  auto loaded = store.load();
  ASSERT_TRUE(loaded);
  EXPECT_TRUE(loaded->functions.empty());
  ASSERT_EQ(loaded->quarantined.size(), 1u);
  EXPECT_EQ(loaded->quarantined[0].reason, "function.json points outside its folder (../../..)");
}

TEST_F(FunctionStoreTest, EraseForgetsTheFunction) {
  ASSERT_TRUE(store.save(stored("echo", 1)));
  ASSERT_TRUE(store.erase("echo"));
  EXPECT_FALSE(fs::exists(functions / "echo"));
  auto loaded = store.load();
  ASSERT_TRUE(loaded);
  EXPECT_TRUE(loaded->functions.empty());
}

TEST_F(FunctionStoreTest, MissingDirectoryIsAnError) {
  FunctionStore missing(dir / "nowhere");
  auto loaded = missing.load();
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().find("nowhere"), std::string::npos) << loaded.error();
}

TEST(DurableFileTest, ReplacesTheContentsWhole) {
  test::TempDir dir;
  const auto file = dir / "record";
  dir.writeFile("record.tmp", "stale temporary of a crashed write");
  ASSERT_TRUE(writeFileDurably(file, "first"));
  ASSERT_TRUE(writeFileDurably(file, "second"));
  EXPECT_EQ(test::readFile(file), "second");
  EXPECT_FALSE(fs::exists(dir / "record.tmp"));
  EXPECT_EQ(fs::status(file).permissions() & fs::perms::mask, fs::perms(0600));
}

TEST(DurableFileTest, FailureNamesThePath) {
  test::TempDir dir;
  auto written = writeFileDurably(dir / "missing" / "record", "x");
  ASSERT_FALSE(written);
  EXPECT_NE(written.error().find("missing/record.tmp"), std::string::npos) << written.error();
}

TEST(PrivateDirectoryTest, CreatesOwnerOnlyAndTightensWhatOthersCouldRead) {
  test::TempDir dir;
  auto mode = [](const fs::path& p) { return fs::status(p).permissions() & fs::perms::mask; };
  ASSERT_TRUE(makePrivateDirectory(dir / "new" / "state"));
  EXPECT_EQ(mode(dir / "new" / "state"), fs::perms(0700));
  // Group and others lose reading, writing and listing; the group's pass
  // through (the sandbox's way to its code) stays.
  for (const auto& [before, after] : std::map<unsigned, unsigned>{
           {0755, 0710}, {01777, 0710}, {0750, 0710}, {0710, 0710}, {0700, 0700}, {0500, 0700}}) {
    const fs::path existing = dir / ("m" + std::to_string(before));
    fs::create_directory(existing);
    fs::permissions(existing, fs::perms(before));
    ASSERT_TRUE(makePrivateDirectory(existing));
    EXPECT_EQ(mode(existing), fs::perms(after)) << std::oct << before;
  }
  dir.writeFile("file", "x");
  auto refused = makePrivateDirectory(dir / "file");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().rfind("cannot create " + (dir / "file").string(), 0), 0u) << refused.error();
}

}  // namespace
}  // namespace tinyfaas
