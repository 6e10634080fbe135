#include "manager/log_store.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <sstream>

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

TEST(LogStore, ReadAllGroupsByFunction) {
  LogStore logs;
  logs.append("b", "b.1", "b first");
  logs.append("a", "a.1", "a first");
  logs.append("b", "b.1", "b second");
  auto all = lines(logs.readAll());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(message(all[0]), "a first");
  EXPECT_EQ(message(all[1]), "b first");
  EXPECT_EQ(message(all[2]), "b second");
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

TEST(LogStore, IsALogSink) {
  LogStore store;
  LogSink& sink = store;
  sink.append("f", "f.1", "via sink");
  EXPECT_NE(store.read("f").find("f.1 via sink"), std::string::npos);
}

}  // namespace
}  // namespace tinyfaas
