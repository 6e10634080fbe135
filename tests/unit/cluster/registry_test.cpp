#include <gtest/gtest.h>

#include "cluster/code_store.hpp"
#include "cluster/function_record.hpp"
#include "cluster/node_status.hpp"
#include "fake_kv.hpp"

namespace tinyfaas::cluster {
namespace {

TEST(CodeStore, AZipLargerThanAValueIsStoredInChunksAndReadBackWhole) {
  FakeKv kv;
  std::string zip(kCodeChunkBytes * 2 + 17, '\0');
  for (std::size_t i = 0; i < zip.size(); ++i) zip[i] = static_cast<char>(i * 31);
  auto hash = storeCode(kv, zip);
  ASSERT_TRUE(hash) << hash.error();
  EXPECT_EQ(*hash, codeHash(zip));
  auto listed = kv.list(Bucket::code);
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->size(), 4u);  // three chunks and the count
  for (const auto& entry : *listed) EXPECT_LE(entry.value.size(), kCodeChunkBytes);
  auto loaded = loadCode(kv, *hash);
  ASSERT_TRUE(loaded) << loaded.error();
  EXPECT_EQ(*loaded, zip);
}

TEST(CodeStore, TheSameCodeIsStoredOnce) {
  FakeKv kv;
  ASSERT_TRUE(storeCode(kv, "zip bytes"));
  const auto puts = kv.puts;
  ASSERT_TRUE(storeCode(kv, "zip bytes"));
  EXPECT_EQ(kv.puts, puts);
}

TEST(CodeStore, ACorruptOrMissingChunkIsAnErrorNotAZip) {
  FakeKv kv;
  auto hash = storeCode(kv, "zip bytes");
  ASSERT_TRUE(hash);
  ASSERT_TRUE(kv.put(Bucket::code, *hash + ".0", "other bytes"));
  EXPECT_FALSE(loadCode(kv, *hash));
  ASSERT_TRUE(kv.erase(Bucket::code, *hash + ".0"));
  EXPECT_FALSE(loadCode(kv, *hash));
  EXPECT_FALSE(loadCode(kv, "unknown"));
}

TEST(CodeStore, DroppedCodeIsGone) {
  FakeKv kv;
  auto hash = storeCode(kv, "zip bytes");
  ASSERT_TRUE(hash);
  ASSERT_TRUE(dropCode(kv, *hash));
  EXPECT_TRUE(kv.list(Bucket::code)->empty());
}

TEST(CodeStore, AnUnreachableServerIsAnError) {
  FakeKv kv;
  kv.offline = true;
  EXPECT_FALSE(storeCode(kv, "zip"));
}

TEST(FunctionRecord, RoundTripsWithOwnerNodesAndVersion) {
  FunctionRecord record;
  record.config.name = "echo";
  record.config.runtime = Runtime::python3;
  record.config.threads = 2;
  record.config.env = {"A=1"};
  record.config.owner = "alice";
  record.code = "abc";
  record.subfolder = "fn";
  record.version = "n1-1-x";
  record.nodes = 2;
  auto parsed = parseRecord(recordJson(record));
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->config.name, "echo");
  EXPECT_EQ(parsed->config.runtime, Runtime::python3);
  EXPECT_EQ(parsed->config.threads, 2);
  EXPECT_EQ(parsed->config.env, std::vector<std::string>{"A=1"});
  EXPECT_EQ(parsed->config.owner, "alice");
  EXPECT_EQ(parsed->code, "abc");
  EXPECT_EQ(parsed->subfolder, "fn");
  EXPECT_EQ(parsed->version, "n1-1-x");
  EXPECT_EQ(parsed->nodes, 2);
}

TEST(FunctionRecord, AHostileRecordIsRefusedLikeAnUpload) {
  EXPECT_FALSE(parseRecord("not json"));
  EXPECT_FALSE(parseRecord(R"({"config":{"name":"../x","env":"python3"},"code":"a","version":"v"})"));
  EXPECT_FALSE(parseRecord(R"({"config":{"name":"ok","env":"python3"}})"));
}

TEST(NodeStatus, RoundTrips) {
  NodeStatus s;
  s.name = "a";
  s.instance = "i";
  s.lastSeenMs = 42;
  s.functions = {"f"};
  s.versions = {{"f", "v"}};
  s.failures = {{"g", {"v2", "bad zip", true}}};
  s.memoryBudgetMb = 512;
  s.reservedMb = 256;
  s.memoryBytes = 1000;
  auto parsed = parseStatus(statusJson(s));
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->functions, s.functions);
  EXPECT_EQ(parsed->versions, s.versions);
  EXPECT_EQ(parsed->failures.at("g").error, "bad zip");
  EXPECT_EQ(parsed->memoryBytes, s.memoryBytes);
  EXPECT_FALSE(parseStatus("[]"));
}

TEST(NameInUse, ANameWhoseHeartbeatGoesOnIsTaken) {
  FakeKv kv;
  ASSERT_TRUE(kv.put(Bucket::nodes, "a", "{}"));
  auto taken = nameInUse(kv, "a", std::chrono::milliseconds(1),
                         [&](std::chrono::milliseconds) { ASSERT_TRUE(kv.put(Bucket::nodes, "a", "{}")); });
  ASSERT_TRUE(taken);
  EXPECT_TRUE(*taken);
}

TEST(NameInUse, AStillHeartbeatOrNoneIsFree) {
  FakeKv kv;
  auto none = nameInUse(kv, "a", std::chrono::milliseconds(1), [](std::chrono::milliseconds) {});
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  ASSERT_TRUE(kv.put(Bucket::nodes, "a", "{}"));
  auto still = nameInUse(kv, "a", std::chrono::milliseconds(1), [](std::chrono::milliseconds) {});
  ASSERT_TRUE(still);
  EXPECT_FALSE(*still);
}

}  // namespace
}  // namespace tinyfaas::cluster
