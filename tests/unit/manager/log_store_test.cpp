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
  LogStore logs(3);
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

TEST(LogStore, IsALogSink) {
  LogStore store;
  LogSink& sink = store;
  sink.append("f", "f.1", "via sink");
  EXPECT_NE(store.read("f").find("f.1 via sink"), std::string::npos);
}

}  // namespace
}  // namespace tinyfaas
