#include "manager/log_store.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <boost/asio/io_context.hpp>

#include "test_support.hpp"

namespace tinyfaas {
namespace {

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// "TIMESTAMP INSTANCE " stripped.
std::string message(const std::string& line) {
  const auto first = line.find(' ');
  return line.substr(line.find(' ', first + 1) + 1);
}

// "2026-01-31T12:34:56.789Z": '9' stands for any digit. (Not std::regex:
// GCC 12 warns inside it under the sanitizers.)
bool isTimestamp(std::string_view text) {
  constexpr std::string_view shape = "9999-99-99T99:99:99.999Z";
  if (text.size() != shape.size()) return false;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == '9' ? !std::isdigit(static_cast<unsigned char>(text[i])) : text[i] != shape[i]) return false;
  }
  return true;
}

TEST(LogStore, ReadsLinesAsTimestampInstanceLine) {
  LogStore logs;
  logs.append("echo", "echo.1", "hello world");
  const std::string text = logs.read("echo");
  ASSERT_EQ(text.size(), 24 + std::string_view(" echo.1 hello world\n").size()) << text;
  EXPECT_TRUE(isTimestamp(std::string_view(text).substr(0, 24))) << text;
  EXPECT_EQ(text.substr(24), " echo.1 hello world\n");
}

TEST(LogStore, KeepsLinesInOrderWithEveryInstance) {
  LogStore logs;
  logs.append("f", "f.1", "one");
  logs.append("f", "f.2", "two");
  logs.append("f", "deploy", "");
  auto read = lines(logs.read("f"));
  ASSERT_EQ(read.size(), 3u);
  EXPECT_EQ(message(read[0]), "one");
  EXPECT_NE(read[1].find(" f.2 two"), std::string::npos);
  EXPECT_EQ(read[2].substr(read[2].size() - 8), " deploy ");
  EXPECT_LE(read[0].substr(0, 24), read[1].substr(0, 24));  // timestamps sort as text
}

TEST(LogStore, UnknownFunctionReadsEmpty) {
  LogStore logs;
  EXPECT_EQ(logs.read("nothing"), "");
  EXPECT_EQ(logs.readAll(), "");
}

TEST(LogStore, BoundsLinesPerFunctionDroppingTheOldest) {
  LogStore logs(LogLimits{.maxLinesPerFunction = 3});
  for (int i = 1; i <= 5; ++i) logs.append("f", "f.1", "line " + std::to_string(i));
  logs.append("g", "g.1", "other");
  auto read = lines(logs.read("f"));
  ASSERT_EQ(read.size(), 3u);
  EXPECT_EQ(message(read[0]), "line 3");
  EXPECT_EQ(message(read[2]), "line 5");
  // Another function's lines are counted separately.
  EXPECT_EQ(lines(logs.read("g")).size(), 1u);
}

LogQuery tailOf(std::size_t lines) {
  LogQuery query;
  query.tail = lines;
  return query;
}

LogQuery sinceOf(std::chrono::system_clock::time_point when) {
  LogQuery query;
  query.since = when;
  return query;
}

LogLimits limits(std::size_t fileBytes, std::size_t diskBytes,
                 std::chrono::milliseconds flushInterval = std::chrono::seconds(60)) {
  LogLimits limits;
  limits.maxFileBytes = fileBytes;
  limits.maxDiskBytes = diskBytes;
  limits.flushInterval = flushInterval;
  return limits;
}

TEST(LogStore, ReadAllOrdersLinesByTimeAcrossFunctions) {
  LogStore logs;
  logs.append("b", "b.1", "b first");
  logs.append("a", "a.1", "a first");
  logs.append("b", "b.1", "b second");
  auto all = lines(logs.readAll());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(message(all[0]), "b first");
  EXPECT_EQ(message(all[1]), "a first");
  EXPECT_EQ(message(all[2]), "b second");
}

TEST(LogStore, TailAndSinceSelectLines) {
  LogStore logs;
  for (const char* text : {"one", "two", "three"}) logs.append("a", "a.1", text);
  logs.append("b", "b.1", "four");
  auto last = lines(logs.readAll({}, tailOf(2)));
  ASSERT_EQ(last.size(), 2u);
  EXPECT_EQ(message(last[0]), "three");
  EXPECT_EQ(message(last[1]), "four");
  EXPECT_EQ(lines(logs.read("a", {}, tailOf(10))).size(), 3u);
  EXPECT_EQ(logs.read("a", {}, tailOf(0)), "");
  const auto now = std::chrono::system_clock::now();
  EXPECT_EQ(lines(logs.readAll({}, sinceOf(now - std::chrono::minutes(1)))).size(), 4u);
  EXPECT_EQ(logs.readAll({}, sinceOf(now + std::chrono::minutes(1))), "");
}

TEST(LogStore, ParsesTailAndSinceNamingTheBadOne) {
  const auto now = std::chrono::system_clock::now();
  auto query = parseLogQuery("25", "1h30m", now);
  ASSERT_TRUE(query) << query.error();
  EXPECT_EQ(query->tail, 25u);
  EXPECT_EQ(query->since, now - std::chrono::minutes(90));
  query = parseLogQuery(std::nullopt, "2d", now);
  ASSERT_TRUE(query);
  EXPECT_FALSE(query->tail);
  EXPECT_EQ(query->since, now - std::chrono::hours(48));
  EXPECT_TRUE(parseLogQuery(std::nullopt, std::nullopt, now).has_value());
  for (const char* tail : {"", "-1", "ten", "1.5", "99999999999999999999999"}) {
    auto bad = parseLogQuery(tail, std::nullopt, now);
    ASSERT_FALSE(bad) << tail;
    EXPECT_EQ(bad.error().rfind("tail must be", 0), 0u) << bad.error();
  }
  for (const char* since : {"", "10", "5x", "m", "-5m", "10m3", "99999999999d", "1 h"}) {
    auto bad = parseLogQuery("1", since, now);
    ASSERT_FALSE(bad) << since;
    EXPECT_EQ(bad.error().rfind("since must be a duration such as 30s, 10m, 2h, 1d or 1h30m", 0), 0u) << bad.error();
  }
}

// On disk: a store that keeps its lines in a directory, flushed by hand.
class PersistentLogStore : public ::testing::Test {
 protected:
  std::unique_ptr<LogStore> open(LogLimits limits = {}) {
    auto store = std::make_unique<LogStore>(limits);
    auto kept = store->keepIn(dir / "logs", io.get_executor());
    EXPECT_TRUE(kept) << (kept ? "" : kept.error());
    return store;
  }
  std::uintmax_t size(const std::string& file) const {
    std::error_code ec;
    auto bytes = std::filesystem::file_size(dir / "logs" / file, ec);
    return ec ? 0 : bytes;
  }
  boost::asio::io_context io;
  test::TempDir dir;
};

TEST_F(PersistentLogStore, LinesSurviveReopeningInTimeOrderWithTheirOwners) {
  {
    auto logs = open();
    logs->claim("a", "alice");
    logs->claim("b", "bob");
    logs->append("a", "a.1", "a first");
    logs->append("b", "b.1", "b first");
    logs->append("a", "a.1", "a second");
  }  // destroyed: flushed
  auto logs = open();
  auto all = lines(logs->readAll());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(message(all[0]), "a first");
  EXPECT_EQ(message(all[1]), "b first");
  EXPECT_EQ(message(all[2]), "a second");
  EXPECT_EQ(lines(logs->read("a", Scope{"alice", false})).size(), 2u);
  EXPECT_EQ(logs->read("a", Scope{"bob", false}), "");
  // The same owner keeps them; a new owner never sees them, nor after a restart.
  logs->claim("a", "alice");
  EXPECT_EQ(lines(logs->read("a")).size(), 2u);
  logs->claim("b", "carol");
  EXPECT_EQ(logs->read("b"), "");
  logs.reset();
  logs = open();
  EXPECT_EQ(logs->read("b"), "");
  EXPECT_EQ(lines(logs->read("a", Scope{"alice", false})).size(), 2u);
}

TEST_F(PersistentLogStore, FilesArePrivateAndForgetRemovesThem) {
  auto logs = open();
  logs->append("a", "a.1", "secret");
  logs->flush();
  namespace fs = std::filesystem;
  EXPECT_EQ(fs::status(dir / "logs").permissions() & fs::perms(077), fs::perms::none);
  EXPECT_EQ(fs::status(dir / "logs" / "a.log").permissions(), fs::perms(0600));
  logs->forget("a");
  EXPECT_FALSE(fs::exists(dir / "logs" / "a.log"));
}

TEST_F(PersistentLogStore, WritesOnlyWhenFlushedOrAtTheInterval) {
  auto logs = open(limits(256 << 10, 32 << 20, std::chrono::milliseconds(20)));
  logs->append("a", "a.1", "buffered");
  EXPECT_EQ(size("a.log"), 0u);  // no write per line
  io.run_for(std::chrono::milliseconds(200));
  EXPECT_GT(size("a.log"), 0u);
}

// At shutdown the buffered lines are written at once, and no flush timer is
// left to keep the loop (so the daemon) running for another interval.
TEST_F(PersistentLogStore, StoppingTimedFlushesWritesNowAndLeavesTheLoopNoWork) {
  auto logs = open(limits(256 << 10, 32 << 20, std::chrono::hours(1)));
  logs->append("a", "a.1", "buffered");
  EXPECT_EQ(size("a.log"), 0u);
  logs->stopTimedFlushes();
  EXPECT_GT(size("a.log"), 0u);
  logs->append("a", "a.1", "after");  // kept for the destructor's flush
  const auto started = std::chrono::steady_clock::now();
  io.run();  // with an hour-long timer left this would not return
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
  logs.reset();
  logs = open();
  EXPECT_EQ(lines(logs->read("a")).size(), 2u);
}

TEST_F(PersistentLogStore, RotatesAndStaysWithinItsBounds) {
  const std::string text(100, 'x');
  {
    auto logs = open(limits(1000, 3000));
    for (int i = 0; i < 100; ++i) {
      logs->append("a", "a.1", std::to_string(i) + text);
      logs->flush();
      EXPECT_LE(size("a.log"), 1000u);
      EXPECT_LE(size("a.log.1"), 1000u);
    }
    EXPECT_GT(size("a.log.1"), 0u);
    for (int i = 0; i < 100; ++i) {
      logs->append(i % 2 ? "b" : "c", "x.1", text);
      logs->flush();
      EXPECT_LE(size("a.log") + size("a.log.1") + size("b.log") + size("b.log.1") + size("c.log") + size("c.log.1"),
                3000u);
    }
  }
  // What is left on disk reads back, newest last.
  auto logs = open();
  auto a = lines(logs->read("a"));
  EXPECT_LT(a.size(), 100u);
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(message(a.back()), "99" + text);
}

TEST_F(PersistentLogStore, ALineCutShortByACrashIsDropped) {
  {
    auto logs = open();
    logs->append("a", "a.1", "whole");
  }
  {
    std::ofstream out(dir / "logs" / "a.log", std::ios::app);
    out << "7 2026-01-01T00:00:00.000Z a.1 cut sh";
  }
  auto logs = open();
  logs->append("a", "a.1", "after");
  logs.reset();
  logs = open();
  auto a = lines(logs->read("a"));
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(message(a[0]), "whole");
  EXPECT_EQ(message(a[1]), "after");
}

TEST(LogStore, ForgetDropsAFunctionsLines) {
  LogStore logs;
  logs.append("a", "a.1", "x");
  logs.append("b", "b.1", "y");
  logs.forget("a");
  logs.forget("never");
  EXPECT_EQ(logs.read("a"), "");
  auto all = lines(logs.readAll());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(message(all[0]), "y");
  logs.append("a", "a.2", "again");
  EXPECT_EQ(lines(logs.read("a")).size(), 1u);
}

Scope tenant(const std::string& name) { return Scope{name, false}; }

TEST(LogStore, OwnersReadOnlyTheirFunctionsLines) {
  LogStore logs;
  logs.claim("a", "alice");
  logs.claim("b", "bob");
  logs.append("a", "a.1", "alice's");
  logs.append("b", "b.1", "bob's");
  logs.append("c", "c.1", "nobody's");
  EXPECT_EQ(lines(logs.read("a", tenant("alice"))).size(), 1u);
  EXPECT_EQ(logs.read("b", tenant("alice")), "");
  EXPECT_EQ(logs.read("c", tenant("alice")), "");
  auto own = lines(logs.readAll(tenant("bob")));
  ASSERT_EQ(own.size(), 1u);
  EXPECT_EQ(message(own[0]), "bob's");
  EXPECT_EQ(lines(logs.readAll()).size(), 3u);  // an admin reads all, unclaimed names too
}

TEST(LogStore, ANewOwnerNeverReadsThePreviousOwnersLines) {
  LogStore logs;
  logs.claim("x", "alice");
  logs.append("x", "x.1", "alice's");
  logs.forget("x");
  logs.append("x", "x.1", "late line of alice's stopped instance");
  logs.claim("x", "bob");
  logs.append("x", "x.2", "bob's");
  auto read = lines(logs.read("x"));
  ASSERT_EQ(read.size(), 1u);
  EXPECT_EQ(message(read[0]), "bob's");
  // Claiming for the same owner again (a redeploy) keeps the lines.
  logs.claim("x", "bob");
  EXPECT_EQ(lines(logs.read("x", tenant("bob"))).size(), 1u);
}

TEST(LogStore, AFollowerGetsOnlyLinesItsTenantOwnsWhenTheyAreWritten) {
  LogStore logs;
  logs.claim("x", "alice");
  std::vector<std::string> seen;
  auto subscription = logs.follow(tenant("alice"), [&](std::string_view function, std::string_view entry) {
    seen.push_back(std::string(function) + ": " + message(std::string(entry)));
  });
  logs.append("x", "x.1", "one");
  logs.append("y", "y.1", "unclaimed");
  logs.forget("x");
  logs.claim("x", "bob");
  logs.append("x", "x.2", "bob's");
  EXPECT_EQ(seen, (std::vector<std::string>{"x: one"}));
  std::vector<std::string> admin;
  auto all = logs.follow(Scope{}, [&](std::string_view, std::string_view entry) { admin.emplace_back(entry); });
  logs.append("y", "y.1", "unclaimed");
  logs.append("x", "x.2", "bob's");
  EXPECT_EQ(admin.size(), 2u);
}

TEST(LogStore, BoundsTheTotalSizeDroppingTheOldestLinesFirst) {
  const std::string text(1000, 'x');
  LogStore logs(LogLimits{.maxBytes = 10 * 1100});
  for (int i = 0; i < 20; ++i) logs.append(i % 2 ? "odd" : "even", "i.1", std::to_string(i) + text);
  auto all = lines(logs.readAll());
  ASSERT_GE(all.size(), 5u);
  ASSERT_LE(all.size(), 10u);
  // What is left is the newest lines of both functions.
  auto even = lines(logs.read("even"));
  auto odd = lines(logs.read("odd"));
  EXPECT_EQ(message(even.back()), "18" + text);
  EXPECT_EQ(message(odd.back()), "19" + text);
  EXPECT_EQ(even.size() + odd.size(), all.size());
  EXPECT_LE(odd.size() - even.size(), 1u);
}

TEST(LogStore, BoundsTheNumberOfFunctionsWithLinesDroppingTheOldest) {
  LogStore logs(LogLimits{.maxFunctions = 3});
  for (const char* function : {"a", "b", "c", "d", "e"}) logs.append(function, "1", function);
  EXPECT_EQ(logs.read("a"), "");
  EXPECT_EQ(logs.read("b"), "");
  EXPECT_EQ(lines(logs.readAll()).size(), 3u);
  EXPECT_EQ(lines(logs.read("e")).size(), 1u);
}

TEST(LogStore, ALineLargerThanTheWholeBoundIsStillKeptAlone) {
  LogStore logs(LogLimits{.maxBytes = 100});
  logs.append("a", "1", "small");
  logs.append("b", "1", std::string(500, 'y'));
  EXPECT_EQ(logs.read("a"), "");
  EXPECT_EQ(lines(logs.read("b")).size(), 1u);
}

TEST(LogStore, AReleasedNameKeepsItsLinesForItsOwnerUntilTheBoundsDropThem) {
  LogStore logs(LogLimits{.maxFunctions = 2});
  logs.claim("failed", "alice");
  logs.append("failed", "failed.1", "SyntaxError");
  logs.release("failed");
  EXPECT_NE(logs.read("failed", Scope{"alice", false}), "");
  EXPECT_EQ(logs.read("failed", Scope{"bob", false}), "");
  logs.claim("live", "bob");
  logs.append("a", "a.1", "x");
  logs.append("b", "b.1", "y");  // two names hold newer lines: the released one's go, and the name with them
  EXPECT_EQ(logs.read("failed"), "");
  logs.append("failed", "failed.1", "later");
  EXPECT_EQ(logs.read("failed", Scope{"alice", false}), "");  // nobody's now
  // A claimed name stays its owner's without lines.
  logs.append("c", "c.1", "z");
  logs.append("live", "live.1", "mine");
  EXPECT_NE(logs.read("live", Scope{"bob", false}), "");
}

TEST(LogStore, ForgetReleasedTakesOnlyTheScopesFailedDeploys) {
  LogStore logs;
  for (const char* name : {"alicefail", "alicelive", "bobfail"}) {
    logs.claim(name, std::string(name).starts_with("alice") ? "alice" : "bob");
    logs.append(name, "x.1", "line");
  }
  logs.release("alicefail");
  logs.release("bobfail");
  logs.forgetReleased(Scope{"alice", false});
  EXPECT_EQ(logs.read("alicefail"), "");
  EXPECT_NE(logs.read("alicelive"), "");
  EXPECT_NE(logs.read("bobfail"), "");
  logs.forgetReleased(Scope{});  // an admin's wipe
  EXPECT_EQ(logs.read("bobfail"), "");
  EXPECT_NE(logs.read("alicelive"), "");
}

TEST(LogStore, IsALogSink) {
  LogStore store;
  LogSink& sink = store;
  sink.append("f", "f.1", "via sink");
  EXPECT_NE(store.read("f").find("f.1 via sink"), std::string::npos);
}

}  // namespace
}  // namespace tinyfaas
