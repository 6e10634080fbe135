// The docker backend's parts that need no engine: node ids, the container
// configuration, and its dealings with a fake engine (leftovers, versions,
// an image build cut by shutdown).

#include "backend/docker/docker_backend.hpp"

#include <optional>

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "backend/docker/container_config.hpp"
#include "backend/handler_environment.hpp"
#include "fake_engine.hpp"
#include "sandbox/seccomp_policy.hpp"
#include "test_support.hpp"

namespace tinyfaas::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class NullSink : public LogSink {
 public:
  void append(std::string_view, std::string_view, std::string_view) override {}
};

TEST(NodeId, CreatedOnceAndKept) {
  TempDir dir;
  auto first = loadNodeId(dir.path());
  ASSERT_TRUE(first) << first.error();
  EXPECT_EQ(first->size(), 12u);
  EXPECT_EQ(first->find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(must(loadNodeId(dir.path())), *first);
  EXPECT_EQ(readFile(dir / "node-id"), *first + "\n");
  dir.writeFile("node-id", "not/an id\n");
  auto replaced = loadNodeId(dir.path());
  ASSERT_TRUE(replaced);
  EXPECT_NE(*replaced, "not/an id");
}

class DockerBackendTest : public ::testing::Test {
 protected:
  boost::asio::io_context io;
  TempDir dir;
  NullSink logs;
  std::shared_ptr<FakeEngine> engine = FakeEngine::start(io.get_executor(), dir / "docker.sock");
  std::unique_ptr<DockerBackend> backend = [&] {
    DockerBackendOptions options;
    options.socket = dir / "docker.sock";
    options.stateDir = dir / "state";
    return must(DockerBackend::create(io.get_executor(), options, logs));
  }();
  void TearDown() override { engine->stop(); }

  InstanceSpec spec() const {
    InstanceSpec s;
    s.function = "echo";
    s.instanceId = "echo.7";
    s.runtime = Runtime::python3;
    s.codeDir = dir / "state" / "functions" / "echo" / "v1";
    s.socketDir = dir / "state" / "run" / "echo.7";
    s.env = {"GREETING=hi", "TINYFAAS_SOCKET=/elsewhere", "PATH=/custom"};
    s.limits.memoryMb = 64;
    s.limits.cpus = 0.5;
    return s;
  }
};

TEST_F(DockerBackendTest, ContainerConfigIsHardened) {
  auto config = json::parse(backend->containerConfig(spec(), "tinyfaas-runtime-python3:0123456789ab",
                                                     {"/usr/bin/python3.11", "/opt/tinyfaas/handler.py"}));
  const auto socket = (spec().socketDir / "handler.sock").string();
  EXPECT_EQ(config["Image"], "tinyfaas-runtime-python3:0123456789ab");
  EXPECT_EQ(config["Cmd"], json({"/usr/bin/python3.11", "/opt/tinyfaas/handler.py", socket}));
  EXPECT_EQ(config["WorkingDir"], spec().codeDir.string());
  EXPECT_EQ(config["Tty"], false);
  const auto& host = config["HostConfig"];
  EXPECT_EQ(host["NetworkMode"], "none");
  EXPECT_EQ(host["ReadonlyRootfs"], true);
  EXPECT_EQ(host["CapDrop"], json({"ALL"}));
  // no_new_privs, and the sandbox's seccomp deny table as a profile.
  EXPECT_EQ(host["SecurityOpt"], json({"no-new-privileges", "seccomp=" + sandbox::dockerSeccompProfile()}));
  EXPECT_EQ(host["PidsLimit"], 256);
  EXPECT_EQ(host["Memory"], 64 << 20);
  EXPECT_EQ(host["MemorySwap"], 64 << 20);
  EXPECT_EQ(host["NanoCpus"], 500000000);
  EXPECT_EQ(host["Tmpfs"]["/tmp"], "rw,nosuid,nodev,size=67108864,mode=1777");
  ASSERT_EQ(host["Mounts"].size(), 2u);
  EXPECT_EQ(host["Mounts"][0]["Source"], spec().codeDir.string());
  EXPECT_EQ(host["Mounts"][0]["Target"], spec().codeDir.string());
  EXPECT_EQ(host["Mounts"][0]["ReadOnly"], true);
  EXPECT_EQ(host["Mounts"][1]["Target"], spec().socketDir.string());
  EXPECT_EQ(host["Mounts"][1]["ReadOnly"], false);
  const auto& labels = config["Labels"];
  EXPECT_EQ(labels["tinyfaas.node"], backend->nodeId());
  EXPECT_EQ(labels["tinyfaas.function"], "echo");
  EXPECT_EQ(labels["tinyfaas.instance"], "echo.7");
  // The function's variables over the defaults, the platform's over both.
  std::set<std::string> env(config["Env"].begin(), config["Env"].end());
  EXPECT_TRUE(env.count("GREETING=hi"));
  EXPECT_TRUE(env.count("PATH=/custom"));
  EXPECT_TRUE(env.count("TINYFAAS_SOCKET=" + socket));
  EXPECT_TRUE(env.count("TINYFAAS_FUNCTION=echo"));
  EXPECT_TRUE(env.count("TINYFAAS_INSTANCE=echo.7"));
  EXPECT_TRUE(env.count("HOME=/tmp"));
  EXPECT_EQ(backend->containerName(spec()), "tinyfaas-" + backend->nodeId() + "-echo.7");
}

TEST_F(DockerBackendTest, EgressGetsTheFunctionsNetwork) {
  auto s = spec();
  s.limits.egress = true;
  s.limits.cpus = 1000;  // more than the host has: capped, not refused by the engine
  auto config = json::parse(backend->containerConfig(s, "i", {"x"}));
  EXPECT_EQ(config["HostConfig"]["NetworkMode"], "tinyfaas-" + backend->nodeId() + "-echo");
  EXPECT_LE(config["HostConfig"]["NanoCpus"].get<std::int64_t>(),
            std::int64_t{std::max(1u, std::thread::hardware_concurrency())} * 1000000000);
}

// A standby container is an instance's in every hardening setting, with
// no network, no function's variables and an empty folder of its own as
// its (read-only) code.
TEST_F(DockerBackendTest, StandbyContainerIsAnInstanceWithoutAFunction) {
  const InstanceSpec standby = backend->standbySpec(Runtime::nodejs, 3);
  auto config = json::parse(backend->containerConfig(standby, "i", {"node", "/opt/tinyfaas/handler.js"}));
  auto like = spec();
  like.limits = {};
  auto instance = json::parse(backend->containerConfig(like, "i", {"node", "/opt/tinyfaas/handler.js"}));

  auto host = config["HostConfig"];
  auto instanceHost = instance["HostConfig"];
  EXPECT_EQ(host["NetworkMode"], "none");
  const auto mounts = host["Mounts"];
  host.erase("Mounts");
  instanceHost.erase("Mounts");
  EXPECT_EQ(host, instanceHost) << "the same hardening and default limits as any instance";
  EXPECT_EQ(config["User"], instance["User"]);
  ASSERT_EQ(mounts.size(), 2u);
  const fs::path slot = dir / "state" / "standby" / "standby-3";
  EXPECT_EQ(mounts[0]["Source"], slot.string());
  EXPECT_EQ(mounts[0]["Target"], slot.string());
  EXPECT_EQ(mounts[0]["ReadOnly"], true);
  EXPECT_EQ(mounts[1]["Source"], (dir / "state" / "run" / "standby-3").string());
  EXPECT_EQ(config["WorkingDir"], slot.string());
  EXPECT_EQ(config["Labels"]["tinyfaas.node"], backend->nodeId()) << "the leftover sweep finds it";
  EXPECT_EQ(config["Labels"]["tinyfaas.function"], "");

  // Only the platform's defaults and the standby's own variables.
  std::set<std::string> env(config["Env"].begin(), config["Env"].end());
  std::set<std::string> defaults;
  for (const auto& entry : handlerEnvironment(InstanceSpec{})) defaults.insert(entry.first);
  const std::string controlSocket = (dir / "state" / "run" / "standby-3" / "control.sock").string();
  EXPECT_TRUE(env.count("TINYFAAS_STANDBY=1"));
  EXPECT_TRUE(env.count("TINYFAAS_CONTROL_SOCKET=" + controlSocket));
  EXPECT_TRUE(env.count("TINYFAAS_FUNCTION="));
  for (const std::string& entry : env) {
    const std::string name = entry.substr(0, entry.find('='));
    EXPECT_TRUE(defaults.count(name) || name == "TINYFAAS_STANDBY" || name == "TINYFAAS_CONTROL_SOCKET") << entry;
  }
}

// A handover sets exactly the limits a container of the function's own
// would have been created with.
TEST_F(DockerBackendTest, HandoverLimitsAreTheInstancesLimits) {
  docker::ContainerSettings settings;
  settings.pidsLimit = 99;
  ResourceLimits limits;
  limits.memoryMb = 64;
  limits.cpus = 0.5;
  const auto update = docker::limitsConfig(settings, limits);
  EXPECT_EQ(update, json({{"Memory", 64 << 20}, {"MemorySwap", 64 << 20}, {"NanoCpus", 500000000}, {"PidsLimit", 99}}));
  auto created = json::parse(backend->containerConfig(spec(), "i", {"x"}))["HostConfig"];
  for (const auto& field : {"Memory", "MemorySwap", "NanoCpus"}) EXPECT_EQ(created[field], update[field]) << field;
}

TEST_F(DockerBackendTest, LeftoversAreFoundByLabelAndRemoved) {
  engine->answer(200, R"([{"Id":"c1"},{"Id":"c2"},{"Id":"c3"}])");
  engine->answer(204, "");                                        // c1 removed
  engine->answer(404, R"({"message":"No such container: c2"})");  // c2 already gone
  engine->answer(409, R"({"message":"removal of container c3 is already in progress"})");
  engine->answer(200, R"([{"Id":"n1","Name":"tinyfaas-x-echo"}])");
  engine->answer(204, "");
  auto removed = run(io, backend->removeLeftovers());
  ASSERT_TRUE(removed) << removed.error();
  EXPECT_EQ(*removed, 4u);
  const auto& requests = engine->requests();
  ASSERT_EQ(requests.size(), 6u);
  const std::string filter = docker::encodeQueryValue(R"({"label":["tinyfaas.node=)" + backend->nodeId() + R"("]})");
  EXPECT_EQ(requests[0].target, "/v1.41/containers/json?all=1&filters=" + filter);
  EXPECT_EQ(requests[1].method, "DELETE");
  EXPECT_EQ(requests[1].target, "/v1.41/containers/c1?force=1&v=1");
  EXPECT_EQ(requests[4].target, "/v1.41/networks?filters=" + filter);
  EXPECT_EQ(requests[5].target, "/v1.41/networks/n1");
}

// Another node on the same engine keeps its images: only this node's own
// tags go, and an image only when no node tag is left on it.
TEST_F(DockerBackendTest, PruningRemovesOnlyThisNodesImageTags) {
  const std::string me = backend->nodeId();
  const std::string repo = "tinyfaas-runtime-python3:";
  const json images = json::array({
      {{"RepoTags", {repo + "aaaaaaaaaaaa", repo + "aaaaaaaaaaaa-" + me}}},  // ours, old
      {{"RepoTags", {repo + "bbbbbbbbbbbb", repo + "bbbbbbbbbbbb-0123456789ab", repo + "bbbbbbbbbbbb-" + me}}},
      {{"RepoTags", {repo + "cccccccccccc", repo + "cccccccccccc-0123456789ab"}}},  // another node's
      {{"RepoTags", {repo + "dddddddddddd", repo + "dddddddddddd-" + me}}},         // in use
      {{"RepoTags", {repo + "eeeeeeeeeeee"}}},  // from before node tags: nobody's to remove
  });
  engine->answer(200, images.dump());
  for (int i = 0; i < 3; ++i) engine->answer(200, "[]");
  run(io, backend->pruneOldImages(Runtime::python3, repo + "dddddddddddd-" + me));
  std::vector<std::string> deleted;
  for (const auto& request : engine->requests()) {
    if (request.method == "DELETE") deleted.push_back(request.target);
  }
  EXPECT_EQ(deleted, (std::vector<std::string>{"/v1.41/images/" + repo + "aaaaaaaaaaaa-" + me,
                                               "/v1.41/images/" + repo + "aaaaaaaaaaaa",
                                               "/v1.41/images/" + repo + "bbbbbbbbbbbb-" + me}));
}

// Shutdown does not wait for a runtime image the engine is slow to deliver,
// nor does an instance start waiting for it.
TEST_F(DockerBackendTest, CancelEndsAnImageBuildAndTheStartWaitingForIt) {
  DockerBackendOptions options;
  options.socket = dir / "docker.sock";
  options.stateDir = dir / "pulling";
  options.imageSource = RuntimeImageSource::official;  // no host runtime to read first
  auto pulling = must(DockerBackend::create(io.get_executor(), options, logs));
  engine->script(EngineExchange{{}, {}, false, true});  // the first image's inspect never answered

  bool prepared = false;
  auto prepare = [&]() -> boost::asio::awaitable<void> {
    co_await pulling->prepare();
    prepared = true;
  };
  boost::asio::co_spawn(io, prepare(), boost::asio::detached);
  InstanceSpec waiting = spec();
  waiting.runtime = Runtime::nodejs;
  std::optional<std::string> startError;
  auto start = [&]() -> boost::asio::awaitable<void> {
    auto started = co_await pulling->start(waiting, [](std::string) {});
    startError = started ? std::string("started") : started.error();
  };
  boost::asio::co_spawn(io, start(), boost::asio::detached);
  ASSERT_TRUE(runUntil(io, [&] { return engine->requests().size() == 1; }));

  pulling->cancel();
  ASSERT_TRUE(runUntil(
      io, [&] { return prepared && startError; }, std::chrono::seconds(5)));
  EXPECT_EQ(*startError, "the nodejs runtime image is not available: tinyFaaS is shutting down");
  EXPECT_EQ(engine->requests().size(), 1u) << "the other runtimes' images were still asked for";
}

TEST_F(DockerBackendTest, EngineUnableToListIsAnError) {
  engine->answer(500, R"({"message":"boom"})");
  auto removed = run(io, backend->removeLeftovers());
  ASSERT_FALSE(removed);
  EXPECT_NE(removed.error().find("boom"), std::string::npos) << removed.error();
}

TEST_F(DockerBackendTest, TooOldEngineIsRefusedWithItsVersion) {
  engine->answer(200, "OK", "text/plain");
  engine->answer(200, R"({"Version":"19.03.1","ApiVersion":"1.40"})");
  auto connected = run(io, backend->connect(std::chrono::seconds(5)));
  ASSERT_FALSE(connected);
  EXPECT_NE(connected.error().find("speaks API 1.40"), std::string::npos) << connected.error();
  engine->answer(200, "OK", "text/plain");
  engine->answer(200, R"({"Version":"20.10.24","ApiVersion":"1.41"})");
  ASSERT_TRUE(run(io, backend->connect(std::chrono::seconds(5))));
  EXPECT_NE(backend->describe().find("engine 20.10.24"), std::string::npos);
}

TEST_F(DockerBackendTest, ProbeSaysWhyThereIsNoEngine) {
  auto none = run(io, probeDockerEngine(io.get_executor(), dir / "nothing.sock", std::chrono::milliseconds(1000)));
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().find("not running"), std::string::npos) << none.error();
  engine->answer(200, "OK", "text/plain");
  EXPECT_TRUE(run(io, probeDockerEngine(io.get_executor(), dir / "docker.sock", std::chrono::milliseconds(1000))));
}

}  // namespace
}  // namespace tinyfaas::test
