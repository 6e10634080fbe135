// Which host `invoke` calls: --endpoint > $TINYFAAS_ENDPOINT > config
// `endpoint` > the management URL's host (issue 14: it called localhost).

#include <gtest/gtest.h>

#include "cli_runner.hpp"
#include "fake_http_server.hpp"
#include "test_support.hpp"

namespace tinyfaas::cli {
namespace {

using test::CliEnvironment;
using test::FakeHttpServer;
using test::runCli;
using tinyfaas::test::TempDir;

// The fake endpoint listens on 127.0.0.1 only; 127.0.0.2 is loopback too,
// but nothing listens there, so a call that goes there is refused.
CliEnvironment environmentFor(const FakeHttpServer& server) {
  CliEnvironment environment;
  environment.vars["HTTP_PORT"] = std::to_string(server.port());
  return environment;
}

TEST(InvokeEndpoint, FollowsTheManagementUrlsHost) {
  FakeHttpServer server(200, "ok");
  auto environment = environmentFor(server);
  auto run = runCli({"invoke", "echo", "-d", "x", "--url", "http://127.0.0.1:8080"}, environment);
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(run.out, "ok");

  environment.vars["TINYFAAS_URL"] = "http://127.0.0.2:8080";
  run = runCli({"invoke", "echo", "-d", "x"}, environment);
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_NE(run.err.find("http://127.0.0.2:" + std::to_string(server.port())), std::string::npos) << run.err;
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(InvokeEndpoint, ConfigFileUrlAndEndpointKeys) {
  FakeHttpServer server(200, "ok");
  TempDir dir;
  dir.writeFile("cli.toml", "url = \"http://127.0.0.1:8080\"\n");
  auto environment = environmentFor(server);
  environment.vars["TINYFAAS_CLI_CONFIG"] = (dir.path() / "cli.toml").string();
  auto run = runCli({"invoke", "echo", "-d", "x"}, environment);
  ASSERT_EQ(run.exitCode, 0) << run.err;

  // `endpoint` wins over the url's host...
  dir.writeFile("cli.toml", "url = \"http://127.0.0.2:8080\"\nendpoint = \"127.0.0.1\"\n");
  run = runCli({"invoke", "echo", "-d", "x"}, environment);
  ASSERT_EQ(run.exitCode, 0) << run.err;
  // ...$TINYFAAS_ENDPOINT over the file, and --endpoint over both; a URL
  // gives its host.
  environment.vars["TINYFAAS_ENDPOINT"] = "127.0.0.2";
  run = runCli({"invoke", "echo", "-d", "x"}, environment);
  EXPECT_EQ(run.exitCode, 1);
  run = runCli({"invoke", "echo", "-d", "x", "--endpoint", "http://127.0.0.1:8000"}, environment);
  ASSERT_EQ(run.exitCode, 0) << run.err;
  run = runCli({"invoke", "echo", "-d", "x", "--host", "127.0.0.1"}, environment);
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(server.requests().size(), 4u);
}

TEST(InvokeEndpoint, BadEndpointsAreUsageErrors) {
  CliEnvironment environment;
  auto run = runCli({"invoke", "echo", "-d", "x", "--endpoint", "http://"}, environment);
  EXPECT_EQ(run.exitCode, 2);
  EXPECT_TRUE(run.err.starts_with("tinyfaas: endpoint: invalid URL \"http://\"")) << run.err;
  run = runCli({"invoke", "echo", "-d", "x", "--url", "ftp://x"}, environment);
  EXPECT_EQ(run.exitCode, 2);
  EXPECT_EQ(run.err, "tinyfaas: invalid URL \"ftp://x\": only http:// is supported\n");
}

}  // namespace
}  // namespace tinyfaas::cli
