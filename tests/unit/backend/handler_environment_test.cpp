// The one handler environment (backend/handler_environment.hpp) and that
// both backends hand exactly it to the instance: the process backend's
// spawn (plain and under bwrap) and the docker backend's container Env.

#include "backend/handler_environment.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "backend/docker/docker_backend.hpp"
#include "backend/process/process_backend.hpp"
#include "test_support.hpp"
#include "util/child_process.hpp"

namespace tinyfaas {
namespace {

namespace fs = std::filesystem;

class NullSink final : public LogSink {
 public:
  void append(std::string_view, std::string_view, std::string_view) override {}
};

InstanceSpec specIn(const test::TempDir& dir) {
  InstanceSpec s;
  s.function = "echo";
  s.instanceId = "echo.4";
  s.runtime = Runtime::python3;
  s.codeDir = dir / "functions" / "echo" / "v1";
  s.socketDir = dir / "run" / "echo.4";
  // FOO without '=' only comes from a hand-edited record: uploads refuse it.
  s.env = {"GREETING=hi", "A=b=c", "FOO", "HOME=/custom", "TINYFAAS_SOCKET=/tmp/evil.sock"};
  fs::create_directories(s.codeDir);
  return s;
}

TEST(HandlerEnvironment, FunctionVariablesOverDefaultsAndThePlatformsLast) {
  test::TempDir dir;
  const auto spec = specIn(dir);
  const auto env = handlerEnvironment(spec);
  EXPECT_EQ(env.at("GREETING"), "hi");
  EXPECT_EQ(env.at("A"), "b=c");
  EXPECT_EQ(env.at("FOO"), "");  // as FOO= would, not FOO=FOO
  EXPECT_EQ(env.at("HOME"), "/custom");
  EXPECT_EQ(env.at("PATH"), "/usr/local/bin:/usr/bin:/bin");
  EXPECT_EQ(env.at("TINYFAAS_SOCKET"), (dir / "run" / "echo.4" / "handler.sock").string());
  EXPECT_EQ(env.at("TINYFAAS_FUNCTION"), "echo");
  EXPECT_EQ(env.at("TINYFAAS_INSTANCE"), "echo.4");
  const auto entries = environmentEntries(env);
  EXPECT_EQ(std::count(entries.begin(), entries.end(), "FOO="), 1);
  EXPECT_EQ(std::count(entries.begin(), entries.end(), "A=b=c"), 1);
  EXPECT_EQ(entries.size(), env.size());
}

// How the process backend would launch `spec` (a stand-in descriptor as
// its socket).
ProcessBackend::Launch processLaunch(SandboxMode sandbox, const InstanceSpec& spec) {
  boost::asio::io_context io;
  NullSink logs;
  ProcessBackendOptions options;
  options.runtimesDir = test::repoDir() / "runtimes";
  options.binaryHandler = "/bin/true";
  options.sandbox = sandbox;
  auto backend = test::must(ProcessBackend::create(io.get_executor(), options, logs));
  auto launch = backend->launchFor(spec, UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)));
  if (!launch) throw std::runtime_error(launch.error());
  return std::move(*launch);
}

TEST(HandlerEnvironment, TheProcessBackendSpawnsWithIt) {
  test::TempDir dir;
  const auto spec = specIn(dir);
  auto expected = handlerEnvironment(spec);
  expected["TINYFAAS_LISTEN_FD"] = "3";  // the process backend's own addition
  EXPECT_EQ(processLaunch(SandboxMode::none, spec).spawn.env, environmentEntries(expected));
}

TEST(HandlerEnvironment, TheBwrapSandboxSetsIt) {
  if (findExecutable("bwrap").empty()) GTEST_SKIP() << "bwrap is not installed";
  test::TempDir dir;
  const auto spec = specIn(dir);
  const auto argv = processLaunch(SandboxMode::bwrap, spec).spawn.argv;
  for (const auto& [name, value] : handlerEnvironment(spec)) {
    const std::vector<std::string> setenv = {"--setenv", name, value};
    EXPECT_NE(std::search(argv.begin(), argv.end(), setenv.begin(), setenv.end()), argv.end()) << name << "=" << value;
  }
}

TEST(HandlerEnvironment, TheDockerBackendsContainerHasIt) {
  test::TempDir dir;
  boost::asio::io_context io;
  NullSink logs;
  DockerBackendOptions options;
  options.socket = dir / "no-engine.sock";  // the config needs no engine
  options.stateDir = dir / "state";
  auto backend = test::must(DockerBackend::create(io.get_executor(), options, logs));
  const auto spec = specIn(dir);
  auto config = nlohmann::json::parse(backend->containerConfig(spec, "image", {"handler"}));
  EXPECT_EQ(config.at("Env").get<std::vector<std::string>>(), environmentEntries(handlerEnvironment(spec)));
}

}  // namespace
}  // namespace tinyfaas
