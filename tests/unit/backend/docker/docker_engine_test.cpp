// DockerBackend against the real engine (ctest label `docker`): an instance
// starts from its runtime image, serves on its socket, reports a kill, and
// leaves nothing behind. Skipped when no engine answers.

#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "backend/docker/docker_backend.hpp"
#include "test_support.hpp"

namespace tinyfaas::test {
namespace {

namespace fs = std::filesystem;
namespace http = boost::beast::http;
using json = nlohmann::json;

class LinesSink : public LogSink {
 public:
  void append(std::string_view, std::string_view, std::string_view line) override { lines.emplace_back(line); }
  std::vector<std::string> lines;
};

fs::path engineSocket() {
  const char* host = std::getenv("DOCKER_HOST");
  auto parsed = docker::parseDockerHost(host ? host : "");
  return parsed ? *parsed : fs::path("/var/run/docker.sock");
}

class RealEngine : public ::testing::Test {
 protected:
  boost::asio::io_context io;
  TempDir dir;
  LinesSink logs;
  std::unique_ptr<DockerBackend> backend;

  void SetUp() override {
    if (!run(io, probeDockerEngine(io.get_executor(), engineSocket(), std::chrono::milliseconds(1000))))
      GTEST_SKIP() << "no Docker engine answers on " << engineSocket();
    DockerBackendOptions options;
    options.socket = engineSocket();
    options.stateDir = dir / "state";
    options.images.runtimesDir = repoDir() / "runtimes";
    options.images.binaryHandler = TINYFAAS_BINARY_HANDLER;
    options.images.python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    options.stopGrace = std::chrono::seconds(1);
    backend = (must(DockerBackend::create(io.get_executor(), options, logs)));
    auto connected = run(io, backend->connect(std::chrono::seconds(10)));
    ASSERT_TRUE(connected) << connected.error();
  }

  InstanceSpec echoSpec(const std::string& id) {
    dir.writeFile("state/functions/echo/v1/fn.py", "def fn(input, headers):\n    return input\n");
    InstanceSpec spec;
    spec.function = "echo";
    spec.instanceId = id;
    spec.runtime = Runtime::python3;
    spec.codeDir = dir / "state" / "functions" / "echo" / "v1";
    spec.socketDir = dir / "state" / "run" / id;
    return spec;
  }

  // The handler's socket speaks HTTP like the engine: the engine client
  // without an API prefix calls it.
  docker::EngineResult callHandler(const Instance& instance, http::verb method, const std::string& target,
                                   const std::string& body) {
    docker::EngineClient handler(io.get_executor(), instance.socketPath(), "");
    docker::RequestOptions options;
    options.timeout = std::chrono::seconds(2);
    return run(io, handler.request(method, target, body, options));
  }

  bool waitHealthy(const Instance& instance) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = callHandler(instance, http::verb::get, "/health", "");
      if (r && r->status == 200) return true;
      runFor(io, std::chrono::milliseconds(50));
    }
    return false;
  }

  std::size_t containersOfThisNode() {
    docker::EngineClient engine(io.get_executor(), engineSocket());
    const std::string filter = docker::encodeQueryValue(R"({"label":["tinyfaas.node=)" + backend->nodeId() + R"("]})");
    auto listed = run(io, engine.request(http::verb::get, "/containers/json?all=1&filters=" + filter));
    EXPECT_TRUE(listed && listed->status == 200);
    return listed ? json::parse(listed->body).size() : 0;
  }
};

TEST_F(RealEngine, InstanceServesOnItsSocketAndStopRemovesIt) {
  // Building the images the first time on this engine takes a few seconds.
  auto images = run(io, backend->prepareImages(), std::chrono::minutes(5));
  ASSERT_TRUE(images) << images.error();
  int exits = 0;
  auto instance = run(io, backend->start(echoSpec("echo.1"), [&](std::string) { ++exits; }));
  ASSERT_TRUE(instance) << instance.error();
  ASSERT_TRUE(waitHealthy(**instance));
  auto answer = callHandler(**instance, http::verb::post, "/fn", "through the container");
  ASSERT_TRUE(answer) << answer.error();
  EXPECT_EQ(answer->body, "through the container");
  EXPECT_EQ(containersOfThisNode(), 1u);
  run(io, backend->stop(**instance));
  EXPECT_EQ(exits, 0) << "stop() is not an exit to report";
  EXPECT_EQ(containersOfThisNode(), 0u);
  EXPECT_FALSE(fs::exists(dir / "state" / "run" / "echo.1"));
}

TEST_F(RealEngine, KilledContainerIsReportedOnce) {
  auto images = run(io, backend->prepareImages(), std::chrono::minutes(5));
  ASSERT_TRUE(images) << images.error();
  std::vector<std::string> exits;
  auto spec = echoSpec("echo.2");
  const std::string name = backend->containerName(spec);
  auto instance = run(io, backend->start(spec, [&](std::string how) { exits.push_back(how); }));
  ASSERT_TRUE(instance) << instance.error();
  ASSERT_TRUE(waitHealthy(**instance));
  docker::EngineClient engine(io.get_executor(), engineSocket());
  auto killed = run(io, engine.request(http::verb::post, "/containers/" + name + "/kill?signal=SIGKILL"));
  ASSERT_TRUE(killed && killed->status == 204);
  ASSERT_TRUE(runUntil(io, [&] { return !exits.empty(); }));
  run(io, backend->stop(**instance));
  ASSERT_EQ(exits.size(), 1u) << "one report, however it came";
  const std::string engineAccount = "exited with status 137 (killed by signal 9)";
  if (exits[0] == "ended (its handler process died)") {
    // The pidfd told first (its socket was bound); the engine's account went
    // to the logs.
    EXPECT_NE(std::find(logs.lines.begin(), logs.lines.end(), "tinyfaas: container " + engineAccount),
              logs.lines.end());
  } else {
    // Killed before the socket watch saw the socket: the engine told.
    EXPECT_EQ(exits[0], engineAccount);
  }
  EXPECT_EQ(containersOfThisNode(), 0u);
}

TEST_F(RealEngine, LeftoversOfThisNodeOnly) {
  auto removed = run(io, backend->removeLeftovers());
  ASSERT_TRUE(removed) << removed.error();
  EXPECT_EQ(*removed, 0u) << "a fresh node id owns nothing";
}

}  // namespace
}  // namespace tinyfaas::test
