// `tinyfaas invoke` over HTTP against a fake function endpoint.

#include <gtest/gtest.h>

#include <algorithm>

#include "cli/reply_text.hpp"
#include "cli_runner.hpp"
#include "fake_http_server.hpp"
#include "test_support.hpp"

#include <sstream>

namespace tinyfaas::cli {
namespace {

using test::CliEnvironment;
using test::FakeHttpServer;
using test::runCli;

std::vector<std::string> invokeArgs(const FakeHttpServer& server, std::vector<std::string> extra) {
  std::vector<std::string> args{"invoke", "echo", "--host", "127.0.0.1", "--port", std::to_string(server.port())};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST(HttpInvoke, PostsDataAndPrintsTheResultExactly) {
  FakeHttpServer server(200, "olleh");
  const auto run = runCli(invokeArgs(server, {"--data", "hello"}));
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(run.out, "olleh");  // a pipe gets the bytes unchanged
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/echo");
  EXPECT_EQ(requests[0].body, "hello");
  EXPECT_FALSE(requests[0].headers.contains("x-tinyfaas-async"));
}

TEST(HttpInvoke, TerminalGetsAFinalNewline) {
  FakeHttpServer server(200, "olleh");
  CliEnvironment environment;
  environment.stdoutIsTerminal = true;
  auto run = runCli(invokeArgs(server, {"--data", "hello"}), environment);
  EXPECT_EQ(run.out, "olleh\n");

  FakeHttpServer withNewline(200, "olleh\n");
  run = runCli(invokeArgs(withNewline, {"--data", "hello"}), environment);
  EXPECT_EQ(run.out, "olleh\n");
}

TEST(HttpInvoke, AsyncSendsTheHeader) {
  FakeHttpServer server(202, "");
  const auto run = runCli(invokeArgs(server, {"--async", "--data", "x"}));
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(server.requests().at(0).headers.at("x-tinyfaas-async"), "true");
}

TEST(HttpInvoke, AsyncPrintsWhereTheResultWillBe) {
  const std::string location = "/calls/" + std::string(32, 'a');
  FakeHttpServer server(202, "", FakeHttpServer::Behaviour::answer, {{"Location", location}});
  const auto run = runCli(invokeArgs(server, {"--async", "--data", "x"}));
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(run.out, server.url() + location + "\n");
}

TEST(HttpInvoke, SendsExtraHeaders) {
  FakeHttpServer server(200, "");
  const auto run = runCli(invokeArgs(server, {"-H", "Lab: edge", "--header", "X-Id:42"}));
  ASSERT_EQ(run.exitCode, 0) << run.err;
  const auto headers = server.requests().at(0).headers;
  EXPECT_EQ(headers.at("lab"), "edge");
  EXPECT_EQ(headers.at("x-id"), "42");
}

TEST(HttpInvoke, ReadsPipedStdinButNotATerminal) {
  FakeHttpServer server(200, "");
  CliEnvironment piped;
  piped.stdinText = std::string("from\0stdin", 10);
  auto run = runCli(invokeArgs(server, {}), piped);
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(server.requests().at(0).body, std::string("from\0stdin", 10));

  run = runCli(invokeArgs(server, {}));  // stdin is a terminal
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(server.requests().at(1).body, "");

  run = runCli(invokeArgs(server, {"--data", "wins"}), piped);
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(server.requests().at(2).body, "wins");
}

TEST(HttpInvoke, SendsAFile) {
  tinyfaas::test::TempDir dir;
  dir.writeFile("input.bin", std::string("\x01\x02\x00\xff", 4));
  FakeHttpServer server(200, "");
  auto run = runCli(invokeArgs(server, {"--file", (dir.path() / "input.bin").string()}));
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(server.requests().at(0).body, std::string("\x01\x02\x00\xff", 4));

  run = runCli(invokeArgs(server, {"--file", (dir.path() / "absent").string()}));
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_EQ(run.err, "tinyfaas: " + (dir.path() / "absent").string() + ": cannot open for reading\n");

  run = runCli(invokeArgs(server, {"--file", "x", "--data", "y"}));
  EXPECT_NE(run.exitCode, 0);
  EXPECT_NE(run.err.find("excludes"), std::string::npos) << run.err;

  // --data-file and curl's --data @FILE say the same.
  run = runCli(invokeArgs(server, {"--data-file", (dir.path() / "input.bin").string()}));
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(server.requests().at(1).body, std::string("\x01\x02\x00\xff", 4));
  run = runCli(invokeArgs(server, {"--data", "@" + (dir.path() / "input.bin").string()}));
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(server.requests().at(2).body, std::string("\x01\x02\x00\xff", 4));
  test::CliEnvironment piped;
  piped.stdinText = "from stdin";
  run = runCli(invokeArgs(server, {"--data", "@-"}), piped);
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(server.requests().at(3).body, "from stdin");
}

TEST(HttpInvoke, Non2xxGoesToStderrWithExit1) {
  FakeHttpServer server(500, "TypeError: x is undefined\n");
  const auto run = runCli(invokeArgs(server, {"--data", "x"}));
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(run.err, "tinyfaas: 500 Internal Server Error: TypeError: x is undefined\n");
}

TEST(HttpInvoke, PortComesFromHttpPort) {
  FakeHttpServer server(200, "ok");
  CliEnvironment environment;
  environment.vars["HTTP_PORT"] = std::to_string(server.port());
  auto run = runCli({"invoke", "echo", "--host", "127.0.0.1"}, environment);
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(run.out, "ok");

  environment.vars["HTTP_PORT"] = "-1";
  run = runCli({"invoke", "echo", "--host", "127.0.0.1"}, environment);
  EXPECT_EQ(run.exitCode, 2);
  EXPECT_EQ(run.err, "tinyfaas: HTTP_PORT=-1 disables that endpoint; pass --port to call another one\n");

  environment.vars["HTTP_PORT"] = "80a";
  run = runCli({"invoke", "echo", "--host", "127.0.0.1"}, environment);
  EXPECT_EQ(run.exitCode, 2);
}

TEST(HttpInvoke, UnreachableEndpoint) {
  const auto port = std::to_string(test::unusedPort());
  const auto run = runCli({"invoke", "echo", "--host", "127.0.0.1", "--port", port, "--data", "x"});
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_EQ(run.err, "tinyfaas: cannot reach the HTTP endpoint at http://127.0.0.1:" + port +
                         ": connection refused (is `tinyfaas serve` running?)\n");
}

TEST(Invoke, ValidatesArguments) {
  struct Case {
    std::vector<std::string> args;
    std::string err;
  };
  const std::vector<Case> cases = {
      {{"invoke", "no/such"},
       "tinyfaas: invalid function name \"no/such\": use 1 to 64 letters, digits and -, starting and ending with a "
       "letter or digit\n"},
      {{"invoke", "echo", "--protocol", "mqtt"}, "tinyfaas: unknown protocol \"mqtt\": use http, coap or grpc\n"},
      {{"invoke", "echo", "--protocol", "coap", "--async"}, "tinyfaas: --async works over http only\n"},
      {{"invoke", "echo", "--protocol", "grpc", "--async"}, "tinyfaas: --async works over http only\n"},
      {{"invoke", "echo", "--protocol", "coap", "-H", "A: b"}, "tinyfaas: --header works over http and grpc only\n"},
      {{"invoke", "echo", "-H", "novalue"}, "tinyfaas: --header \"novalue\": expected \"Name: value\"\n"},
      {{"invoke", "echo", "--port", "70000"}, "tinyfaas: --port 70000: expected 1-65535\n"},
      {{"invoke", "echo", "--timeout", "0"}, "tinyfaas: --timeout must be between 0 and 86400 seconds\n"},
  };
  for (const auto& c : cases) {
    const auto run = runCli(c.args);
    EXPECT_EQ(run.exitCode, 2) << c.err;
    EXPECT_EQ(run.err, c.err);
  }
}

TEST(GrpcInvoke, PortFromGrpcPortAndUnreachableIsOneLine) {
  CliEnvironment environment;
  environment.vars["GRPC_PORT"] = "-1";
  auto run = runCli({"invoke", "echo", "--protocol", "grpc", "--data", "x"}, environment);
  EXPECT_EQ(run.exitCode, 2);
  EXPECT_EQ(run.err, "tinyfaas: GRPC_PORT=-1 disables that endpoint; pass --port to call another one\n");

  environment.vars["GRPC_PORT"] = std::to_string(test::unusedPort());
  run = runCli({"invoke", "echo", "--protocol", "grpc", "--host", "127.0.0.1", "--data", "x", "--timeout", "5"},
               environment);
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_TRUE(run.err.starts_with("tinyfaas: UNAVAILABLE")) << run.err;
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  EXPECT_EQ(run.out, "");
}

TEST(ReplyText, StatusLineTrimsTrailingNewlines) {
  EXPECT_EQ(statusLine(404, "Not Found", "no such function\r\n"), "404 Not Found: no such function");
  EXPECT_EQ(statusLine(500, "Internal Server Error", ""), "500 Internal Server Error");
  EXPECT_EQ(statusLine("4.04 Not Found", "x"), "4.04 Not Found: x");
}

TEST(ReplyText, StatusLineStaysOneLine) {
  EXPECT_EQ(statusLine(500, "Internal Server Error", "Traceback:\n  File \"fn.py\"\r\nboom\x1b[0m\tx\n"),
            "500 Internal Server Error: Traceback:\\n  File \"fn.py\"\\r\\nboom\\x1b[0m\tx");
  const auto line = statusLine(500, "Internal Server Error", std::string(5000, 'a'));
  EXPECT_EQ(line, "500 Internal Server Error: " + std::string(2000, 'a') + " ... (3000 more bytes)");
}

TEST(HttpInvoke, MultiLineFunctionErrorIsOneLineOnStderr) {
  FakeHttpServer server(500, "Traceback (most recent call last):\n  File \"fn.py\", line 2\nZeroDivisionError\n");
  const auto run = runCli(invokeArgs(server, {"--data", "x"}));
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_EQ(run.err,
            "tinyfaas: 500 Internal Server Error: Traceback (most recent call last):\\n  File \"fn.py\", line "
            "2\\nZeroDivisionError\n");
}

TEST(ReplyText, PrintBodyAndPrintLines) {
  std::ostringstream out;
  printBody(out, "", true);
  printBody(out, "a", false);
  printBody(out, "b", true);
  printLines(out, "");
  printLines(out, "c");
  printLines(out, "d\n");
  EXPECT_EQ(out.str(), "ab\nc\nd\n");
}

}  // namespace
}  // namespace tinyfaas::cli
