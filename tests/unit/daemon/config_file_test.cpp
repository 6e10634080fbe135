// `serve --config FILE`: precedence (flags > environment > file > defaults),
// validation messages naming the key, and --print-config's format.
#include "daemon/config_file.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <sstream>

#include "test_support.hpp"

namespace tinyfaas {
namespace {

class ConfigFileTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const char* name :
         {"HTTP_PORT", "COAP_PORT", "GRPC_PORT", "TINYFAAS_STATE_DIR", "TINYFAAS_LOG_LEVEL", "DOCKER_HOST"})
      unsetenv(name);
  }

  // Parses `args` as `tinyfaas serve` would (environment included), then
  // applies `file` (written to config.toml) when given.
  boost::system::result<void, std::string> load(std::vector<std::string> args, const std::string& file) {
    serve.emplace("serve");
    config = DaemonConfig{};
    addDaemonOptions(*serve, config);
    args.insert(args.begin(), "serve");
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    serve->parse(static_cast<int>(argv.size()), argv.data());
    dir.writeFile("config.toml", file);
    return applyConfigFile(dir / "config.toml", *serve);
  }

  std::string error(const std::string& file) {
    auto result = load({}, file);
    EXPECT_FALSE(result) << file;
    return result ? std::string() : result.error();
  }

  test::TempDir dir;
  std::optional<CLI::App> serve;
  DaemonConfig config;
};

TEST_F(ConfigFileTest, FileSetsWhatNothingElseSet) {
  ASSERT_TRUE(load({}, "http-port = 1234\nbackend = \"process\"\nmax-body-bytes = 4096\nstate-dir = \"/srv/tf\"\n"));
  EXPECT_EQ(config.httpPort, 1234);
  EXPECT_EQ(config.backend, "process");
  EXPECT_EQ(config.maxBodyBytes, 4096u);
  EXPECT_EQ(config.stateDir, "/srv/tf");
  EXPECT_EQ(config.coapPort, 5683);  // default
}

TEST_F(ConfigFileTest, FlagsBeatEnvironmentBeatsFile) {
  setenv("HTTP_PORT", "2000", 1);
  setenv("COAP_PORT", "3000", 1);
  ASSERT_TRUE(load({"--http-port", "1000"}, "http-port = 1\ncoap-port = 2\ngrpc-port = 3\n"));
  EXPECT_EQ(config.httpPort, 1000);  // flag over environment and file
  EXPECT_EQ(config.coapPort, 3000);  // environment over file
  EXPECT_EQ(config.grpcPort, 3);     // file over default
}

TEST_F(ConfigFileTest, UnknownKeysAreErrorsEvenWhenAFlagIsGiven) {
  EXPECT_EQ(error("http-port = 1\n\nhtp-port = 2\n"),
            "config " + (dir / "config.toml").string() +
                ": line 3: unknown key 'htp-port' (the keys are the flags of `tinyfaas serve --help` without --)");
  EXPECT_NE(error("print-config = true\n").find("unknown key 'print-config'"), std::string::npos);
  EXPECT_NE(error("config = \"x\"\n").find("unknown key 'config'"), std::string::npos);
  EXPECT_NE(error("[server]\nhttp-port = 1\n").find("unknown key 'server'"), std::string::npos);
}

TEST_F(ConfigFileTest, WrongTypesNameKeyAndType) {
  EXPECT_NE(error("http-port = \"8000\"\n").find("line 1: 'http-port' must be an integer, not a string"),
            std::string::npos);
  EXPECT_NE(error("backend = 1\n").find("'backend' must be a string, not an integer"), std::string::npos);
  EXPECT_NE(error("max-body-bytes = -1\n").find("'max-body-bytes' must not be negative"), std::string::npos);
  EXPECT_NE(error("state-dir = [\"a\"]\n").find("'state-dir' must be a string, not an array"), std::string::npos);
  EXPECT_NE(error("call-timeout = 1.5\n").find("'call-timeout' must be an integer, not a number"), std::string::npos);
}

TEST_F(ConfigFileTest, InvalidValuesGetTheFlagsOwnCheck) {
  auto message = error("log-level = \"info\"\nbackend = \"kubernetes\"\n");
  EXPECT_NE(message.find("line 2: 'backend': "), std::string::npos) << message;
  EXPECT_NE(message.find("kubernetes"), std::string::npos) << message;
  message = error("call-timeout = 0\n");
  EXPECT_NE(message.find("'call-timeout'"), std::string::npos) << message;
}

TEST_F(ConfigFileTest, SyntaxErrorsSayWhere) {
  auto message = error("http-port = 1\nbackend = \"process\nx = 1\n");
  EXPECT_NE(message.find("line 2: "), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  message = error("http-port = 1\nhttp-port = 2\n");
  EXPECT_NE(message.find("already exists"), std::string::npos) << message;
}

TEST_F(ConfigFileTest, MissingFile) {
  serve.emplace("serve");
  addDaemonOptions(*serve, config);
  auto result = applyConfigFile(dir / "absent.toml", *serve);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), "config " + (dir / "absent.toml").string() + ": no such file");
}

TEST_F(ConfigFileTest, ARepeatableFlagTakesAnArray) {
  ASSERT_TRUE(load({}, "upload-url-allow = [\"10.0.0.0/8\", \"fd00::/8\"]\n"));
  EXPECT_EQ(config.uploadUrlAllow, (std::vector<std::string>{"10.0.0.0/8", "fd00::/8"}));
  ASSERT_TRUE(load({}, "upload-url-allow = \"10.0.0.0/8\"\n"));
  EXPECT_EQ(config.uploadUrlAllow, (std::vector<std::string>{"10.0.0.0/8"}));
  ASSERT_TRUE(load({"--upload-url-allow", "192.168.0.0/16"}, "upload-url-allow = [\"10.0.0.0/8\"]\n"));
  EXPECT_EQ(config.uploadUrlAllow, (std::vector<std::string>{"192.168.0.0/16"}));
  EXPECT_EQ(error("http-port = [1, 2]\n"),
            "config " + (dir / "config.toml").string() + ": line 1: 'http-port' must be an integer, not an array");
  EXPECT_EQ(error("upload-url-allow = [1]\n"), "config " + (dir / "config.toml").string() +
                                                   ": line 1: 'upload-url-allow' must be a string, not an integer");
}

TEST_F(ConfigFileTest, PrintedConfigHasEverySettingAndLoadsBack) {
  ASSERT_TRUE(load({"--http-port", "-1", "--docker-host", "unix:///run/a \"b\".sock", "--upload-url-allow",
                    "10.0.0.0/8", "--upload-url-allow", "fd00::/8"},
                   "log-level = \"warn\"\n"));
  const std::string printed = formatConfig(config);

  std::set<std::string> keys;
  std::istringstream lines(printed);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("#")) keys.insert(line.substr(0, line.find(" = ")));
  }
  std::set<std::string> options;
  for (const CLI::Option* option : serve->get_options()) {
    if (!option->get_lnames().empty() && option->get_lnames().front() != "help")
      options.insert(option->get_lnames().front());
  }
  EXPECT_EQ(keys, options);

  DaemonConfig first = config;
  ASSERT_TRUE(load({}, printed));
  EXPECT_EQ(formatConfig(config), printed);
  EXPECT_EQ(config.httpPort, -1);
  EXPECT_EQ(config.dockerHost, first.dockerHost);
  EXPECT_EQ(config.logLevel, "warn");
  EXPECT_EQ(config.uploadUrlAllow, first.uploadUrlAllow);
  EXPECT_NE(printed.find("upload-url-allow = [\"10.0.0.0/8\", \"fd00::/8\"]\n"), std::string::npos) << printed;
}

}  // namespace
}  // namespace tinyfaas
