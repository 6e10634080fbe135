// deploy, list, delete, logs and wipe against a fake management API.

#include <gtest/gtest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "fake_http_server.hpp"
#include "test_support.hpp"
#include "util/base64.hpp"
#include "zip_reader.hpp"

namespace tinyfaas::cli {
namespace {

namespace fs = std::filesystem;
using test::CliEnvironment;
using test::FakeHttpServer;
using test::runCli;
using tinyfaas::test::TempDir;

constexpr const char* kEndpoints = "coap://localhost:5683/echo\nhttp://localhost:8000/echo\n";

std::vector<std::string> deployArgs(const TempDir& dir, const FakeHttpServer& server) {
  return {"deploy", dir.path().string(), "--name", "echo",  "--runtime",
          "binary", "--threads",         "2",      "--url", server.url()};
}

TEST(Deploy, UploadsTheZippedFolderAsJson) {
  TempDir dir;
  dir.writeFile("fn.sh", "#!/bin/sh\ncat\n", fs::perms(0755));
  dir.writeFile("data/words.txt", "a b c\n");
  dir.writeFile("node_modules/x/index.js", "");
  FakeHttpServer server(200, kEndpoints);

  auto args = deployArgs(dir, server);
  args.insert(args.end(), {"--var", "GREETING=hello world", "--var", "EMPTY="});
  const auto run = runCli(args);
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(run.out, kEndpoints);
  EXPECT_EQ(run.err, "");

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/upload");
  EXPECT_EQ(requests[0].headers.at("content-type"), "application/json");
  const auto body = nlohmann::json::parse(requests[0].body);
  EXPECT_EQ(body.at("name"), "echo");
  EXPECT_EQ(body.at("env"), "binary");
  EXPECT_EQ(body.at("threads"), 2);  // a number, as upstream's scripts send it
  EXPECT_EQ(body.at("envs"), (nlohmann::json{"GREETING=hello world", "EMPTY="}));

  const auto zip = decodeBase64(body.at("zip").get<std::string>());
  ASSERT_TRUE(zip.has_value());
  const auto entries = test::readZip(*zip);
  // Vendored modules travel with the function, as with scripts/upload.sh.
  ASSERT_EQ(entries.size(), 6u);
  EXPECT_EQ(entries[0].name, "data/");
  EXPECT_EQ(entries[1].name, "data/words.txt");
  EXPECT_EQ(entries[2].name, "fn.sh");
  EXPECT_EQ(entries[2].mode, 0755u);
  EXPECT_EQ(entries[2].content, "#!/bin/sh\ncat\n");
  EXPECT_EQ(entries[5].name, "node_modules/x/index.js");
}

TEST(Deploy, SendsAnEmptyEnvsListWithoutVars) {
  TempDir dir;
  dir.writeFile("fn.py", "def fn(i, h):\n  return i\n");
  FakeHttpServer server(200, "http://localhost:8000/echo");
  const auto run = runCli(deployArgs(dir, server));
  ASSERT_EQ(run.exitCode, 0) << run.err;
  // The daemon's lines reach scripts whole even without a final newline.
  EXPECT_EQ(run.out, "http://localhost:8000/echo\n");
  const auto body = nlohmann::json::parse(server.requests().at(0).body);
  EXPECT_EQ(body.at("envs"), nlohmann::json::array());
  // Call limits the user did not give stay the daemon's to choose.
  EXPECT_FALSE(body.contains("timeout"));
  EXPECT_FALSE(body.contains("concurrency"));
  EXPECT_FALSE(body.contains("queue"));
}

TEST(Deploy, SendsTheCallLimitsGiven) {
  TempDir dir;
  dir.writeFile("fn.py", "def fn(i, h):\n  return i\n");
  FakeHttpServer server(200, "http://localhost:8000/echo");
  auto args = deployArgs(dir, server);
  args.insert(args.end(), {"--timeout", "2.5", "--concurrency", "4", "--queue", "0"});
  const auto run = runCli(args);
  ASSERT_EQ(run.exitCode, 0) << run.err;
  const auto body = nlohmann::json::parse(server.requests().at(0).body);
  EXPECT_EQ(body.at("timeout"), 2.5);
  EXPECT_EQ(body.at("concurrency"), 4);
  EXPECT_EQ(body.at("queue"), 0);
}

TEST(Deploy, ValidatesArgumentsBeforeSendingAnything) {
  TempDir dir;
  dir.writeFile("fn.sh", "", fs::perms(0755));
  FakeHttpServer server;
  const std::string path = dir.path().string();

  struct Case {
    std::vector<std::string> args;
    std::string err;
  };
  const std::vector<Case> cases = {
      {{"deploy", path, "--name", "my-fn-", "--runtime", "binary", "--threads", "1"},
       "tinyfaas: invalid function name \"my-fn-\": use 1 to 64 letters, digits and -, starting and ending with a "
       "letter or digit\n"},
      {{"deploy", path, "--name", "", "--runtime", "binary", "--threads", "1"},
       "tinyfaas: invalid function name \"\": use 1 to 64 letters, digits and -, starting and ending with a letter or "
       "digit\n"},
      {{"deploy", path, "--name", "fn", "--runtime", "ruby", "--threads", "1"},
       "tinyfaas: unknown runtime \"ruby\": use nodejs, python3, binary or go\n"},
      {{"deploy", path, "--name", "fn", "--runtime", "binary", "--threads", "0"},
       "tinyfaas: --threads must be at least 1, not 0\n"},
      {{"deploy", path, "--name", "fn", "--runtime", "binary", "--threads", "1", "--var", "NOEQUALS"},
       "tinyfaas: -e/--var \"NOEQUALS\": expected KEY=VALUE\n"},
      {{"deploy", path, "--name", "fn", "--runtime", "binary", "--threads", "1", "--var", "=x"},
       "tinyfaas: -e/--var \"=x\": expected KEY=VALUE\n"},
      {{"deploy", path, "--name", "fn", "-e", "python3", "--threads", "1"},
       "tinyfaas: -e \"python3\": expected KEY=VALUE; did you mean --runtime python3?\n"},
      {{"deploy", path, "--name", "fn", "--threads", "1"},
       "tinyfaas: --runtime is required: nodejs, python3, binary or go\n"},
      {{"deploy", "--name", "fn", "-r", "binary", "--threads", "1"},
       "tinyfaas: the function's folder is missing: tinyfaas deploy DIR -n NAME -r RUNTIME -t THREADS\n"},
      {{"deploy", path + "/missing", "--name", "fn", "--runtime", "binary", "--threads", "1"},
       "tinyfaas: " + path + "/missing: no such directory\n"},
      {{"deploy", path + "/fn.sh", "--name", "fn", "--runtime", "binary", "--threads", "1"},
       "tinyfaas: " + path + "/fn.sh: not a directory\n"},
      {{"deploy", path, "--name", "fn", "--runtime", "binary", "--threads", "1", "--url", "https://localhost:8080"},
       "tinyfaas: invalid URL \"https://localhost:8080\": https is not supported yet; use http:// (e.g. through an "
       "SSH tunnel)\n"},
  };
  for (const auto& c : cases) {
    auto args = c.args;
    if (std::find(args.begin(), args.end(), "--url") == args.end()) args.insert(args.end(), {"--url", server.url()});
    const auto run = runCli(args);
    EXPECT_EQ(run.exitCode, 2) << c.err;
    EXPECT_EQ(run.err, c.err);
    EXPECT_EQ(run.out, "");
  }
  EXPECT_TRUE(server.requests().empty());
}

TEST(Deploy, RefusesAFolderWithNothingToRun) {
  TempDir dir;
  dir.writeFile("node_modules/a.js", "");
  dir.writeFile(".git/HEAD", "");
  dir.writeFile(".tinyfaasignore", "node_modules/\n.git\n");
  FakeHttpServer server;
  const auto run = runCli(deployArgs(dir, server));
  EXPECT_EQ(run.exitCode, 2);
  EXPECT_EQ(run.err, "left out by .tinyfaasignore: .git/, node_modules/\ntinyfaas: " + dir.path().string() +
                         ": no files to deploy (see its .tinyfaasignore)\n");
  EXPECT_TRUE(server.requests().empty());
}

TEST(Deploy, MissingRequiredOptionIsAParseError) {
  TempDir dir;
  const auto run = runCli({"deploy", dir.path().string(), "--runtime", "binary", "--threads", "1"});
  EXPECT_EQ(run.exitCode, 2);
  EXPECT_EQ(run.err, "tinyfaas: --name is required (see `tinyfaas deploy --help`)\n");
}

// Usage errors are refused commands like any other: exit 2, one line with
// the prefix (CLI11 alone exits 104-114 and says "Run with --help").
TEST(Usage, ErrorsAreOneLineWithExitStatus2) {
  struct Case {
    std::vector<std::string> args;
    std::string err;
  };
  const std::vector<Case> cases = {
      {{"delte", "x"}, "tinyfaas: unknown command 'delte'; did you mean 'delete'? (see `tinyfaas --help`)\n"},
      {{"lst"}, "tinyfaas: unknown command 'lst'; did you mean 'list'? (see `tinyfaas --help`)\n"},
      {{"frobnicate"}, "tinyfaas: unknown command 'frobnicate' (see `tinyfaas --help`)\n"},
      {{}, "tinyfaas: A subcommand is required (see `tinyfaas --help`)\n"},
      {{"list", "--bogus"},
       "tinyfaas: The following argument was not expected: --bogus (see `tinyfaas list --help`)\n"},
      {{"deploy", ".", "--name", "x", "--runtime", "binary", "--threads", "many"},
       "tinyfaas: Could not convert: --threads = many (see `tinyfaas deploy --help`)\n"},
  };
  for (const auto& c : cases) {
    const auto run = runCli(c.args);
    EXPECT_EQ(run.exitCode, 2) << c.err;
    EXPECT_EQ(run.err, c.err);
  }
  const auto help = runCli({"list", "--help"});
  EXPECT_EQ(help.exitCode, 0);
  EXPECT_NE(help.out.find("--json"), std::string::npos) << help.out;
}

TEST(Deploy, ShowsTheDaemonsReasonForA400) {
  TempDir dir;
  dir.writeFile("fn.sh", "", fs::perms(0755));
  FakeHttpServer server(400, "fn.sh is missing from the upload\n");
  const auto run = runCli(deployArgs(dir, server));
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_EQ(run.err, "tinyfaas: 400 Bad Request: fn.sh is missing from the upload\n");
  EXPECT_EQ(run.out, "");
}

TEST(Deploy, VarDoesNotSwallowTheFolder) {
  TempDir dir;
  dir.writeFile("fn.sh", "", fs::perms(0755));
  FakeHttpServer server(200, "ok\n");
  const auto run = runCli({"deploy", "--var", "A=1", "B=2", dir.path().string(), "--name", "fn", "--runtime", "binary",
                           "--threads", "1", "--url", server.url()});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(nlohmann::json::parse(server.requests().at(0).body).at("envs"), (nlohmann::json{"A=1", "B=2"}));
}

TEST(Deploy, WithScalingProgressDoesNotPromiseThreadsInstances) {
  TempDir dir;
  dir.writeFile("fn.sh", "", fs::perms(0755));
  FakeHttpServer server(200, "ok\n");
  const auto run = runCli({"deploy", dir.path().string(), "-n", "fn", "-r", "binary", "-t", "3", "--min-instances", "0",
                           "--progress", "--url", server.url()});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_NE(run.err.find("starts its instances..."), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("3 instances"), std::string::npos) << run.err;
}

TEST(Deploy, EnvAndVarBothSetVariablesAndResourceFlagsReachTheUpload) {
  TempDir dir;
  dir.writeFile("fn.sh", "", fs::perms(0755));
  FakeHttpServer server(200, "ok\n");
  const auto run = runCli({"deploy",      dir.path().string(),
                           "-n",          "fn",
                           "-r",          "binary",
                           "-t",          "1",
                           "-e",          "A=1",
                           "--env",       "B=x=y",
                           "--var",       "C=3",
                           "--memory-mb", "64",
                           "--cpus",      "0.5",
                           "--egress",    "--url",
                           server.url()});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  const auto body = nlohmann::json::parse(server.requests().at(0).body);
  EXPECT_EQ(body.at("envs"), (nlohmann::json{"A=1", "B=x=y", "C=3"}));
  EXPECT_EQ(body.at("memory_mb"), 64);
  EXPECT_EQ(body.at("cpus"), 0.5);
  EXPECT_EQ(body.at("egress"), true);
  // Not given: the daemon's defaults.
  const auto plain =
      runCli({"deploy", dir.path().string(), "-n", "fn", "-r", "binary", "-t", "1", "--url", server.url()});
  ASSERT_EQ(plain.exitCode, 0) << plain.err;
  const auto defaults = nlohmann::json::parse(server.requests().at(1).body);
  EXPECT_FALSE(defaults.contains("memory_mb"));
  EXPECT_FALSE(defaults.contains("cpus"));
  EXPECT_FALSE(defaults.contains("egress"));
}

TEST(Deploy, ShowsProgressOnStderrAndEndpointsOnStdout) {
  TempDir dir;
  dir.writeFile("fn.sh", "", fs::perms(0755));
  FakeHttpServer server(200, kEndpoints);
  auto args = deployArgs(dir, server);
  args.push_back("--progress");
  const auto run = runCli(args);
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(run.out, kEndpoints);
  EXPECT_NE(run.err.find("packed " + dir.path().string() + ": 1 file, "), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("uploading echo to " + server.url() +
                         "; the daemon installs its dependencies and starts 2 "
                         "instances..."),
            std::string::npos)
      << run.err;
  // After the upload it asks for the function's status.
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].method, "GET");
  EXPECT_EQ(requests[1].target, "/functions/echo");
}

constexpr const char* kFunctionsJson = R"([
  {"name": "echo", "runtime": "python3", "instances": {"desired": 2, "healthy": 1}, "calls": 1234, "errors": 5,
   "latency_ms": {"p50": 1.234, "p99": 20.5}},
  {"name": "sieve", "runtime": "nodejs", "instances": {"desired": 1, "healthy": 1}, "calls": 0, "errors": 0,
   "latency_ms": {"p50": null, "p99": null}}
])";

TEST(List, PrintsATableFromFunctions) {
  FakeHttpServer server(200, kFunctionsJson);
  const auto run = runCli({"list", "--url", server.url()});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(run.out,
            "NAME   RUNTIME  INSTANCES  CALLS  ERRORS  P50\n"
            "echo   python3  1/2        1234   5       1.23 ms\n"
            "sieve  nodejs   1/1        0      0       -\n");
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target, "/functions");
}

TEST(List, JsonAndNames) {
  FakeHttpServer server(200, kFunctionsJson);
  auto run = runCli({"list", "--json", "--url", server.url()});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(nlohmann::json::parse(run.out), nlohmann::json::parse(kFunctionsJson));
  run = runCli({"list", "-q", "--url", server.url()});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(run.out, "echo\nsieve\n");
  run = runCli({"list", "-q", "--json", "--url", server.url()});
  EXPECT_NE(run.exitCode, 0);
}

TEST(List, NoFunctionsIsAHeaderOnly) {
  FakeHttpServer server(200, "[]");
  auto run = runCli({"list", "--url", server.url()});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(run.out, "NAME  RUNTIME  INSTANCES  CALLS  ERRORS  P50\n");
  run = runCli({"list", "-q", "--url", server.url()});
  EXPECT_EQ(run.out, "");
}

// A function whose record the daemon could not read at start (issue 12):
// listed for the admin with why, so it can be uploaded again or deleted.
TEST(List, AQuarantinedFunctionShowsItsStateAndReason) {
  FakeHttpServer server(200, R"json([
    {"name": "echo", "runtime": "python3", "instances": {"desired": 1, "healthy": 1}, "calls": 3, "errors": 0,
     "latency_ms": {"p50": 1.5, "p99": 2}},
    {"name": "broken", "state": "quarantined", "reason": "function.json is not a JSON object (cut short?)",
     "owner": null}
  ])json");
  auto run = runCli({"list", "--url", server.url()});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(run.out,
            "NAME    RUNTIME  INSTANCES    CALLS  ERRORS  P50\n"
            "echo    python3  1/1          3      0       1.50 ms\n"
            "broken  -        quarantined  -      -       -\n"
            "\n"
            "broken is quarantined: function.json is not a JSON object (cut short?); an admin's upload of broken "
            "replaces it, `tinyfaas delete broken` removes it\n");
  run = runCli({"list", "-q", "--url", server.url()});
  EXPECT_EQ(run.out, "echo\nbroken\n");
}

TEST(List, NotJsonIsAOneLineError) {
  FakeHttpServer server(200, "echo\nsieve\n");
  const auto run = runCli({"list", "--url", server.url()});
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_EQ(run.err,
            "tinyfaas: bad reply from the management API at " + server.url() + ": /functions is not a JSON list\n");
}

TEST(List, TakesTheUrlFromTheEnvironmentAndKeepsABasePath) {
  FakeHttpServer server(200, "[]");
  CliEnvironment environment;
  environment.vars["TINYFAAS_MANAGEMENT_URL"] = server.url() + "/edge/";
  const auto run = runCli({"list"}, environment);
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(server.requests().at(0).target, "/edge/functions");
}

TEST(List, FlagBeatsTheEnvironment) {
  FakeHttpServer server(200, "[]");
  CliEnvironment environment;
  environment.vars["TINYFAAS_URL"] = "http://127.0.0.1:" + std::to_string(test::unusedPort());
  const auto run = runCli({"list", "--url", server.url()}, environment);
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(Config, EnvironmentBeatsTheFileWhichBeatsTheDefault) {
  FakeHttpServer fromEnv(200, "[]");
  FakeHttpServer fromFile(200, "[]");
  TempDir home;
  home.writeFile(".config/tinyfaas/cli.toml", "url = \"" + fromFile.url() + "\"\ntoken = \"file-token\"\n");
  CliEnvironment environment;
  environment.vars["HOME"] = home.path().string();
  auto run = runCli({"list"}, environment);
  ASSERT_EQ(run.exitCode, 0) << run.err;
  ASSERT_EQ(fromFile.requests().size(), 1u);
  EXPECT_EQ(fromFile.requests()[0].headers.at("authorization"), "Bearer file-token");

  environment.vars["TINYFAAS_URL"] = fromEnv.url();
  environment.vars["TINYFAAS_TOKEN"] = "env-token";
  run = runCli({"list"}, environment);
  ASSERT_EQ(run.exitCode, 0) << run.err;
  ASSERT_EQ(fromEnv.requests().size(), 1u);
  EXPECT_EQ(fromEnv.requests()[0].headers.at("authorization"), "Bearer env-token");

  run = runCli({"list", "--token", "flag-token"}, environment);
  EXPECT_EQ(fromEnv.requests().at(1).headers.at("authorization"), "Bearer flag-token");
}

TEST(Config, NoTokenSendsNoAuthorization) {
  FakeHttpServer server(200, "");
  const auto run = runCli({"wipe", "--yes", "--url", server.url()});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(server.requests().at(0).headers.count("authorization"), 0u);
}

TEST(Config, BadFilesAreOneLineErrorsNamingTheKey) {
  TempDir dir;
  dir.writeFile("typo.toml", "ur1 = \"http://x\"\n");
  dir.writeFile("type.toml", "\nurl = 8080\n");
  dir.writeFile("syntax.toml", "url = \"http://x\n");
  CliEnvironment environment;
  for (auto [file, error] : std::vector<std::pair<std::string, std::string>>{
           {"typo.toml", "line 1: unknown key 'ur1' (use url, token and endpoint)"},
           {"type.toml", "line 2: 'url' must be a string"},
           {"syntax.toml", "toml::parse_basic_string"},
           {"missing.toml", "no such file"}}) {
    environment.vars["TINYFAAS_CLI_CONFIG"] = (dir.path() / file).string();
    const auto run = runCli({"list"}, environment);
    EXPECT_EQ(run.exitCode, 2) << file;
    EXPECT_TRUE(run.err.starts_with("tinyfaas: config " + (dir.path() / file).string() + ": ")) << run.err;
    EXPECT_NE(run.err.find(error), std::string::npos) << run.err;
    EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  }
}

TEST(Delete, PostsTheNameAsJson) {
  FakeHttpServer server(200, "");
  const auto run = runCli({"delete", "echo", "--url", server.url()});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/delete");
  EXPECT_EQ(requests[0].headers.at("content-type"), "application/json");
  EXPECT_EQ(nlohmann::json::parse(requests[0].body), (nlohmann::json{{"name", "echo"}}));
}

TEST(Delete, ShowsA404sReason) {
  FakeHttpServer server(404, "function nope does not exist\n");
  const auto run = runCli({"delete", "nope", "--url", server.url()});
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_EQ(run.err, "tinyfaas: 404 Not Found: function nope does not exist\n");
}

TEST(Delete, RejectsABadNameLocally) {
  FakeHttpServer server;
  const auto run = runCli({"delete", "../etc", "--url", server.url()});
  EXPECT_EQ(run.exitCode, 2);
  EXPECT_EQ(run.err,
            "tinyfaas: invalid function name \"../etc\": use 1 to 64 letters, digits and -, starting and ending with a "
            "letter or digit\n");
  EXPECT_TRUE(server.requests().empty());
}

TEST(Logs, GetsAllLogsOrOneFunctions) {
  FakeHttpServer server(200, "echo-1 | started\n");
  auto run = runCli({"logs", "--url", server.url()});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(run.out, "echo-1 | started\n");
  run = runCli({"logs", "echo", "--url", server.url()});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target, "/logs");
  EXPECT_EQ(requests[1].method, "GET");
  EXPECT_EQ(requests[1].target, "/logs?name=echo");
}

TEST(Logs, SendsTailAndSinceAsQueryParameters) {
  FakeHttpServer server(200, "");
  auto run = runCli({"logs", "echo", "--tail", "5", "--since", "10m", "--url", server.url()});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  run = runCli({"logs", "-n", "3", "--url", server.url()});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].target, "/logs?name=echo&tail=5&since=10m");
  EXPECT_EQ(requests[1].target, "/logs?tail=3");
}

TEST(Logs, RejectsASinceThatIsNoDurationLocally) {
  FakeHttpServer server;
  const auto run = runCli({"logs", "--since", "1h&x=1", "--url", server.url()});
  EXPECT_EQ(run.exitCode, 2);
  EXPECT_EQ(run.err, "tinyfaas: --since must be a duration such as 30s, 10m, 2h or 1d (got '1h&x=1')\n");
  EXPECT_TRUE(server.requests().empty());
}

TEST(Logs, RejectsABadNameLocally) {
  FakeHttpServer server;
  const auto run = runCli({"logs", "a&b=c", "--url", server.url()});
  EXPECT_EQ(run.exitCode, 2);
  EXPECT_TRUE(server.requests().empty());
}

TEST(Wipe, WithYesPostsWithoutABodyAndSaysWhatItRemoved) {
  FakeHttpServer server(200, "alpha\nbeta\n");
  const auto run = runCli({"wipe", "--yes", "--url", server.url()});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].target, "/list");
  EXPECT_EQ(requests[1].method, "POST");
  EXPECT_EQ(requests[1].target, "/wipe");
  EXPECT_EQ(requests[1].body, "");
  // The fake answers /wipe with the list too: a daemon that says what it
  // removed is shown as it says it.
  EXPECT_EQ(run.out, "alpha\nbeta\n");
}

TEST(Wipe, OffATerminalItNeedsYes) {
  FakeHttpServer server(200, "");
  CliEnvironment environment;
  environment.stdinText = "y\n";
  const auto run = runCli({"wipe", "--url", server.url()}, environment);
  EXPECT_EQ(run.exitCode, 2);
  EXPECT_EQ(run.err, "tinyfaas: wipe removes every function; pass --yes to confirm (stdin is not a terminal)\n");
  EXPECT_TRUE(server.requests().empty());
}

TEST(Wipe, OnATerminalItAsksFirst) {
  FakeHttpServer server(200, "alpha\n");
  // A terminal that answers "n", then one that answers "y" (the runner's
  // terminal reads nothing: an empty answer is no).
  for (const bool confirm : {false, true}) {
    CliEnvironment environment;
    environment.stdinText = confirm ? "y\n" : "n\n";
    environment.stdinIsTerminal = true;
    const auto run = runCli({"wipe", "--url", server.url()}, environment);
    EXPECT_EQ(run.exitCode, confirm ? 0 : 1) << run.err;
    EXPECT_NE(run.err.find("remove all 1 function (alpha) from " + server.url() + "? [y/N] "), std::string::npos)
        << run.err;
  }
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);  // list; list, wipe
  EXPECT_EQ(requests[0].target, "/list");
  EXPECT_EQ(requests[2].target, "/wipe");
}

TEST(Management, UnreachableUrlSaysSoAndExits1) {
  const std::string url = "http://127.0.0.1:" + std::to_string(test::unusedPort());
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{{"list", "--url", url},
                                                                                    {"delete", "echo", "--url", url},
                                                                                    {"logs", "--url", url},
                                                                                    {"wipe", "-y", "--url", url},
                                                                                    {"ls", "--url", url},
                                                                                    {"rm", "echo", "--url", url}}) {
    const auto run = runCli(args);
    EXPECT_EQ(run.exitCode, 1) << args[0];
    EXPECT_EQ(run.err, "tinyfaas: cannot reach the management API at " + url +
                           ": connection refused (is `tinyfaas serve` running?)\n")
        << args[0];
    EXPECT_EQ(run.out, "");
  }
}

TEST(Management, UnreachableDuringDeploy) {
  TempDir dir;
  dir.writeFile("fn.sh", "", fs::perms(0755));
  const std::string url = "http://127.0.0.1:" + std::to_string(test::unusedPort());
  const auto run =
      runCli({"deploy", dir.path().string(), "--name", "fn", "--runtime", "binary", "--threads", "1", "--url", url});
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_EQ(run.err, "tinyfaas: cannot reach the management API at " + url +
                         ": connection refused (is `tinyfaas serve` running?)\n");
}

TEST(Management, ServerErrorWithEmptyBody) {
  FakeHttpServer server(500, "");
  const auto run = runCli({"list", "--url", server.url()});
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_EQ(run.err, "tinyfaas: 500 Internal Server Error\n");
}

}  // namespace
}  // namespace tinyfaas::cli
