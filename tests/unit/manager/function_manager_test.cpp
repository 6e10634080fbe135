#include "manager/function_manager.hpp"

#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "manager_fixture.hpp"
#include "util/process_memory.hpp"

namespace tinyfaas {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::FakeHandler;
using test::ZipBuilder;

class FunctionManagerTest : public test::ManagerFixture {
 protected:
  // Gives a function a log line, so a start failure's reason carries a
  // "last output" (StartFailureOfAFunctionThatLoggedNothing covers none).
  void seedLog(const std::string& name) { logs.append(name, "seed", "starting"); }

  // Starts a deploy without waiting for it.
  void startDeploy(const std::string& name, int threads,
                   std::optional<boost::system::result<void, DeployError>>& result) {
    FunctionConfig config;
    config.name = name;
    config.runtime = Runtime::python3;
    config.threads = threads;
    asio::co_spawn(io, manager().deploy(std::move(config), test::pythonZip(), ""),
                   [&result](std::exception_ptr, boost::system::result<void, DeployError> r) { result = r; });
  }
  // What a daemon restart does: the old manager stops its instances and a
  // new one reads the same state directory and restores.
  FunctionManager& restartManager() {
    test::run(io, manager().shutdown());
    manager_ = std::make_unique<FunctionManager>(io.get_executor(), io.get_executor(), router, backend, logs, options);
    auto prepared = manager_->prepareStateDir();
    EXPECT_TRUE(prepared) << prepared.error();
    return *manager_;
  }

  boost::system::result<void, DeployError> deployAs(const std::string& name, const Scope& scope) {
    FunctionConfig config;
    config.name = name;
    config.runtime = Runtime::python3;
    return test::run(io, manager().deploy(std::move(config), test::pythonZip(), "", scope));
  }

  void startCall(const std::string& name, std::optional<CallResult>& result) {
    asio::co_spawn(io, proxy.invoke(Invocation{name, "", {}}),
                   [&result](std::exception_ptr, CallResult r) { result = std::move(r); });
  }
};

TEST_F(FunctionManagerTest, DeployPublishesOneInstancePerThread) {
  auto deployed = deploy("echo", 3);
  ASSERT_TRUE(deployed) << deployed.error().message;
  EXPECT_EQ(backend.instances.size(), 3u);
  EXPECT_EQ(routed("echo"), (std::set<std::string>{"echo.1", "echo.2", "echo.3"}));
  EXPECT_EQ(manager().names(), (std::vector<std::string>{"echo"}));
  auto result = call("echo");
  EXPECT_EQ(result.status, CallStatus::ok);
  EXPECT_EQ(result.body.rfind("echo.", 0), 0u);
}

TEST_F(FunctionManagerTest, StatusReportsWhatHealthyInstancesMeasurablyUse) {
  options.memoryInterval = 10ms;
  // The test process stands in for each instance's processes.
  backend.instancePid = ::getpid();
  ASSERT_TRUE(deploy("echo", 2));
  const auto memory = [&] { return manager().status().at(0).memoryBytes; };
  EXPECT_FALSE(memory()) << "nothing is reported before the first measurement";
  manager().startScaling();
  ASSERT_TRUE(test::runUntil(io, [&] { return memory().has_value(); }));
  const auto own = processTreePssBytes(::getpid());
  ASSERT_TRUE(own);
  EXPECT_GE(*memory(), *own) << "two instances, each the whole test process";
  EXPECT_LE(*memory(), 3 * *own);
  test::run(io, manager().shutdown());  // ends the measuring loop before the manager goes
}

class MemoryBudgetTest : public FunctionManagerTest {
 protected:
  MemoryBudgetTest() {
    options.memoryBudgetMb = 256;
    options.memoryInterval = 10ms;
    // Every instance is measured to use 20 MB.
    options.measure = [](pid_t) { return std::optional<std::uint64_t>{20u << 20}; };
    backend.instancePid = ::getpid();
  }

  boost::system::result<void, DeployError> deployMb(const std::string& name, int memoryMb) {
    FunctionConfig config;
    config.name = name;
    config.runtime = Runtime::python3;
    config.limits.memoryMb = memoryMb;
    return test::run(io, manager().deploy(std::move(config), test::pythonZip(), ""));
  }

  bool allMeasured() {
    const auto all = manager().status();
    return std::all_of(all.begin(), all.end(), [](const FunctionStatus& f) { return f.memoryBytes.has_value(); });
  }

  // Deploys two functions of 128 MB, which fill the budget at their limits,
  // and waits until both were measured.
  void fillTheBudgetAtTheLimits() {
    ASSERT_TRUE(deployMb("a", 128));
    ASSERT_TRUE(deployMb("b", 128));
    manager().startScaling();
    ASSERT_TRUE(test::runUntil(io, [&] { return allMeasured(); }));
  }

  void TearDown() override {
    test::run(io, manager().shutdown());  // ends the measuring loop before the manager goes
    FunctionManagerTest::TearDown();
  }
};

TEST_F(MemoryBudgetTest, CountingLimitsAFunctionBeyondTheLimitsIsRefused) {
  fillTheBudgetAtTheLimits();
  auto third = deployMb("c", 128);
  ASSERT_FALSE(third);
  EXPECT_NE(third.error().message.find("memory budget is 256 MB"), std::string::npos) << third.error().message;
}

TEST_F(MemoryBudgetTest, CountingMeasuredMemoryFitsWhatInstancesReallyUse) {
  options.budgetCounts = ManagerOptions::BudgetCounts::measured;
  fillTheBudgetAtTheLimits();
  // 20 + 20 + 128: new code counts at its limit until measured.
  auto third = deployMb("c", 128);
  ASSERT_TRUE(third) << third.error().message;
  ASSERT_TRUE(test::runUntil(io, [&] { return allMeasured(); }));
  // 20 + 20 + 20 + 200 does not fit.
  auto big = deployMb("big", 200);
  ASSERT_FALSE(big);
  EXPECT_NE(big.error().message.find("minimum instances take 60 MB"), std::string::npos) << big.error().message;
}

TEST_F(FunctionManagerTest, TheBackendKeepsStandbysForTheRuntimesInUse) {
  ASSERT_TRUE(deploy("py", 1));
  EXPECT_EQ(backend.warm, (std::set<Runtime>{Runtime::python3}));
  const std::string js = ZipBuilder().file("index.js", "module.exports = () => 'x';\n").build();
  ASSERT_TRUE(deploy("js", 1, js, "", Runtime::nodejs));
  EXPECT_EQ(backend.warm, (std::set<Runtime>{Runtime::python3, Runtime::nodejs}));
  // A failed deploy of a new runtime leaves none of it.
  backend.failStarts = 1;
  EXPECT_FALSE(deploy("bin", 1, ZipBuilder().file("fn.sh", "#!/bin/sh\ncat\n", 0755).build(), "", Runtime::binary));
  EXPECT_EQ(backend.warm, (std::set<Runtime>{Runtime::python3, Runtime::nodejs}));
  ASSERT_TRUE(test::run(io, manager().remove("py")));
  EXPECT_EQ(backend.warm, (std::set<Runtime>{Runtime::nodejs}));
}

TEST_F(FunctionManagerTest, InstancesGetTheirSpec) {
  FunctionConfig config;
  config.name = "echo";
  config.runtime = Runtime::python3;
  config.threads = 1;
  config.env = {"GREETING=hi", "A=b=c"};
  config.limits.memoryMb = 128;
  config.limits.egress = true;
  auto deployed = test::run(io, manager().deploy(config, test::pythonZip(), ""));
  ASSERT_TRUE(deployed) << deployed.error().message;
  ASSERT_EQ(backend.instances.size(), 1u);
  const auto& spec = backend.instances[0]->spec;
  EXPECT_EQ(spec.function, "echo");
  EXPECT_EQ(spec.instanceId, "echo.1");
  EXPECT_EQ(spec.runtime, Runtime::python3);
  EXPECT_EQ(spec.env, config.env);
  EXPECT_EQ(spec.limits.memoryMb, 128);
  EXPECT_TRUE(spec.limits.egress);
  EXPECT_TRUE(fs::equivalent(spec.codeDir, options.stateDir / "functions" / "echo" / "v1")) << spec.codeDir;
  EXPECT_EQ(spec.socketDir, options.stateDir / "run" / "echo.1");
  EXPECT_EQ(test::readFile(spec.codeDir / "fn.py"), "def fn(input, headers):\n    return input\n");
}

TEST_F(FunctionManagerTest, NamesAreSorted) {
  ASSERT_TRUE(deploy("zeta", 1));
  ASSERT_TRUE(deploy("alpha", 1));
  ASSERT_TRUE(deploy("Mid", 1));
  EXPECT_EQ(manager().names(), (std::vector<std::string>{"Mid", "alpha", "zeta"}));
}

TEST_F(FunctionManagerTest, RedeploySwapsRoutesAndStopsTheOldVersion) {
  ASSERT_TRUE(deploy("echo", 1));
  const fs::path v1 = options.stateDir / "functions" / "echo" / "v1";
  ASSERT_TRUE(fs::exists(v1));
  auto redeployed = deploy("echo", 2);
  ASSERT_TRUE(redeployed) << redeployed.error().message;
  EXPECT_EQ(routed("echo"), (std::set<std::string>{"echo.2", "echo.3"}));
  EXPECT_EQ(stoppedIds(), (std::set<std::string>{"echo.1"}));
  EXPECT_FALSE(fs::exists(v1));
  EXPECT_TRUE(fs::exists(options.stateDir / "functions" / "echo" / "v2" / "fn.py"));
  EXPECT_EQ(manager().names(), (std::vector<std::string>{"echo"}));
}

TEST_F(FunctionManagerTest, RedeployStopsOldInstancesOnlyOnceTheyDrained) {
  ASSERT_TRUE(deploy("echo", 1));
  auto& old = *backend.instances[0];
  old.handler->mode = FakeHandler::Mode::gated;
  std::optional<CallResult> inFlight;
  startCall("echo", inFlight);
  ASSERT_TRUE(test::runUntil(io, [&] { return old.handler->inFlight() == 1; }));

  std::optional<boost::system::result<void, DeployError>> redeployed;
  startDeploy("echo", 1, redeployed);
  // New calls go to the new version as soon as it is healthy...
  ASSERT_TRUE(test::runUntil(io, [&] { return routed("echo") == std::set<std::string>{"echo.2"}; }));
  EXPECT_EQ(call("echo").body, "echo.2");
  // ...while the old one keeps its call.
  test::runFor(io, 200ms);
  EXPECT_FALSE(old.stopped);
  EXPECT_FALSE(redeployed.has_value());

  old.handler->openGate();
  ASSERT_TRUE(test::runUntil(io, [&] { return inFlight.has_value() && redeployed.has_value(); }));
  EXPECT_EQ(inFlight->status, CallStatus::ok);
  EXPECT_EQ(inFlight->body, "echo.1");
  EXPECT_TRUE(*redeployed);
  EXPECT_TRUE(old.stopped);
  EXPECT_EQ(old.inFlightAtStop, 0u);
}

TEST_F(FunctionManagerTest, DrainGivesUpAfterTheDrainTimeout) {
  options.drainTimeout = 1s;
  ASSERT_TRUE(deploy("echo", 1));
  auto& old = *backend.instances[0];
  old.handler->mode = FakeHandler::Mode::never;
  std::optional<CallResult> stuck;
  startCall("echo", stuck);
  ASSERT_TRUE(test::runUntil(io, [&] { return old.handler->inFlight() == 1; }));
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(deploy("echo", 1));
  EXPECT_GE(std::chrono::steady_clock::now() - started, 900ms);
  EXPECT_TRUE(old.stopped);
  ASSERT_TRUE(test::runUntil(io, [&] { return stuck.has_value(); }));
  EXPECT_NE(stuck->status, CallStatus::ok);
}

TEST_F(FunctionManagerTest, StartFailureIsAUserErrorAndCleansUp) {
  backend.exitOnStart = 1;
  auto deployed = deploy("echo", 2);
  ASSERT_FALSE(deployed);
  EXPECT_TRUE(deployed.error().userError);
  EXPECT_EQ(deployed.error().message.rfind("function did not start: instance echo.", 0), 0u)
      << deployed.error().message;
  EXPECT_NE(deployed.error().message.find(" exited with status 1"), std::string::npos) << deployed.error().message;
  // The tail of the function's log explains it to the uploader.
  EXPECT_NE(deployed.error().message.find("; last output: "), std::string::npos) << deployed.error().message;
  EXPECT_FALSE(fs::exists(options.stateDir / "functions" / "echo" / "v1"));
  EXPECT_FALSE(router.contains("echo"));
  EXPECT_TRUE(manager().names().empty());
  EXPECT_EQ(backend.running(), 0u);  // the instance that did start was stopped again
}

TEST_F(FunctionManagerTest, BackendStartErrorIsAUserErrorAndCleansUp) {
  seedLog("echo");
  backend.failStarts = 1;
  auto deployed = deploy("echo", 2);
  ASSERT_FALSE(deployed);
  EXPECT_TRUE(deployed.error().userError);
  EXPECT_EQ(deployed.error().message.rfind("function did not start: injected start failure", 0), 0u)
      << deployed.error().message;
  EXPECT_FALSE(fs::exists(options.stateDir / "functions" / "echo" / "v1"));
  EXPECT_FALSE(router.contains("echo"));
  EXPECT_EQ(backend.running(), 0u);
}

TEST_F(FunctionManagerTest, StartFailureOfAFunctionThatLoggedNothing) {
  // A handler that never gets healthy and never prints a line.
  options.healthTimeout = 1s;
  backend.startUnhealthy = true;
  boost::system::result<void, DeployError> deployed{boost::system::in_place_value};
  EXPECT_NO_THROW(deployed = deploy("echo", 1));
  ASSERT_FALSE(deployed);
  EXPECT_EQ(deployed.error().message, "function did not start: instance echo.1 did not answer /health within 1 s");
  EXPECT_FALSE(fs::exists(options.stateDir / "functions" / "echo" / "v1"));
}

TEST_F(FunctionManagerTest, FailedRedeployKeepsTheOldVersionServing) {
  ASSERT_TRUE(deploy("echo", 1));
  backend.exitOnStart = 1;
  auto deployed = deploy("echo", 1);
  ASSERT_FALSE(deployed);
  EXPECT_EQ(routed("echo"), (std::set<std::string>{"echo.1"}));
  EXPECT_EQ(call("echo").body, "echo.1");
  EXPECT_TRUE(fs::exists(options.stateDir / "functions" / "echo" / "v1"));
  EXPECT_FALSE(fs::exists(options.stateDir / "functions" / "echo" / "v2"));
  EXPECT_EQ(stoppedIds(), (std::set<std::string>{"echo.2"}));  // the new one, after it exited
}

TEST_F(FunctionManagerTest, ADeployedFunctionsLinesAreItsOwnersAndAFailedRedeployKeepsThem) {
  FunctionConfig config;
  config.name = "echo";
  config.runtime = Runtime::python3;
  ASSERT_TRUE(test::run(io, manager().deploy(config, test::pythonZip(), "", Scope{"alice", false})));
  logs.append("echo", "echo.1", "alice's line");
  EXPECT_NE(logs.read("echo", Scope{"alice", false}), "");
  EXPECT_EQ(logs.read("echo", Scope{"bob", false}), "");
  backend.exitOnStart = 1;
  ASSERT_FALSE(test::run(io, manager().deploy(config, test::pythonZip(), "", Scope{"alice", false})));
  EXPECT_NE(logs.read("echo", Scope{"alice", false}).find("alice's line"), std::string::npos);
}

TEST_F(FunctionManagerTest, DeployWhoseEveryStartFailsAtOnceReturns) {
  seedLog("echo");
  backend.failStarts = 1;  // fails inside start(), before any suspension
  FunctionConfig config;
  config.name = "echo";
  config.runtime = Runtime::python3;
  config.threads = 1;
  auto deployed = test::run(io, manager().deploy(config, test::pythonZip(), ""), 3s);
  ASSERT_FALSE(deployed);
  EXPECT_NE(deployed.error().message.find("injected start failure"), std::string::npos);
}

TEST_F(FunctionManagerTest, UnhealthyInstanceFailsTheDeployAfterTheHealthTimeout) {
  options.healthTimeout = 1s;
  backend.startUnhealthy = true;
  seedLog("echo");
  auto deployed = deploy("echo", 1);
  ASSERT_FALSE(deployed);
  EXPECT_NE(deployed.error().message.find("instance echo.1 did not answer /health within 1 s"), std::string::npos)
      << deployed.error().message;
  EXPECT_EQ(stoppedIds(), (std::set<std::string>{"echo.1"}));
  EXPECT_GT(backend.instances[0]->handler->healthChecks(), 1u);  // it kept asking
}

TEST_F(FunctionManagerTest, InstanceDyingWhileStartingFailsTheDeployWithTheReason) {
  backend.startUnhealthy = true;
  std::optional<boost::system::result<void, DeployError>> deployed;
  startDeploy("echo", 1, deployed);
  ASSERT_TRUE(test::runUntil(io, [&] { return !backend.instances.empty(); }));
  backend.exit("echo.1", "exited with status 3");
  ASSERT_TRUE(test::runUntil(io, [&] { return deployed.has_value(); }));
  ASSERT_FALSE(*deployed);
  const std::string& message = deployed->error().message;
  EXPECT_NE(message.find("instance echo.1 exited with status 3"), std::string::npos) << message;
  // The tail of the function's log explains it to the uploader.
  EXPECT_NE(message.find("last output: "), std::string::npos) << message;
  EXPECT_NE(message.find("; see `tinyfaas logs echo`"), std::string::npos) << message;
  // The uploader reads the lines that explain it; a next owner's claim drops them.
  EXPECT_NE(logs.read("echo"), "");
}

TEST_F(FunctionManagerTest, StartFailureQuotesTheRuntimesReasonFirst) {
  backend.startUnhealthy = true;
  std::optional<boost::system::result<void, DeployError>> deployed;
  startDeploy("echo", 1, deployed);
  ASSERT_TRUE(test::runUntil(io, [&] { return !backend.instances.empty(); }));
  logs.append("echo", "echo.1", "    at Module._compile (node:internal/modules/cjs/loader:1495:20)");
  logs.append("echo", "echo.1",
              "tinyfaas nodejs handler: cannot load the function: index.js:2: SyntaxError: missing ) after "
              "argument list");
  backend.exit("echo.1", "exited with status 1");
  ASSERT_TRUE(test::runUntil(io, [&] { return deployed.has_value(); }));
  ASSERT_FALSE(*deployed);
  EXPECT_EQ(deployed->error().message,
            "function did not start: index.js:2: SyntaxError: missing ) after argument list (instance echo.1 "
            "exited with status 1); see `tinyfaas logs echo`");
}

TEST_F(FunctionManagerTest, AnInstanceStuckPastItsGraceIsReplacedWhileTheOtherServes) {
  options.upstream.callTimeout = 100ms;
  options.upstream.timeoutGrace = 100ms;
  ASSERT_TRUE(deploy("echo", 2));
  ASSERT_EQ(routed("echo"), (std::set<std::string>{"echo.1", "echo.2"}));
  // echo.1 takes calls and never answers (a busy loop); echo.2 answers.
  backend.instances[0]->handler->mode = test::FakeHandler::Mode::never;
  bool timedOut = false;
  for (int i = 0; i < 4 && !timedOut; ++i) timedOut = call("echo", "x").status == CallStatus::timeout;
  ASSERT_TRUE(timedOut);
  ASSERT_TRUE(test::runUntil(io, [&] { return stoppedIds().count("echo.1") == 1; }));
  EXPECT_NE(logs.read("echo").find("echo.1 tinyfaas: instance echo.1 replaced: a call was still running 0.1 s after "
                                   "its timeout"),
            std::string::npos)
      << logs.read("echo");
  // A new instance took its place; a replacement is no crash.
  ASSERT_TRUE(test::runUntil(io, [&] { return routed("echo") == std::set<std::string>{"echo.2", "echo.3"}; }));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(call("echo", "y").status, CallStatus::ok);
  const auto status = manager().status();
  ASSERT_EQ(status.size(), 1u);
  EXPECT_EQ(status[0].healthy, 2);
  EXPECT_EQ(status[0].restarts, 0u);
  EXPECT_FALSE(status[0].crashLoop);
}

TEST_F(FunctionManagerTest, RejectsUploadsThatCannotRun) {
  struct Case {
    std::string zip;
    Runtime runtime;
    std::string reason;
  };
  const Case cases[] = {
      {"not a zip", Runtime::python3, "not a valid zip archive"},
      {ZipBuilder().file("main.py", "x").build(), Runtime::python3, "python3 function needs fn.py"},
      {ZipBuilder().file("fn.py", "x").build(), Runtime::nodejs, "nodejs function needs package.json or index.js"},
      {ZipBuilder().file("fn.py", "x").build(), Runtime::binary, "binary function needs fn.sh"},
      {ZipBuilder().file("fn.go", "x").build(), Runtime::go, "go function needs fn.go and go.mod"},
      {ZipBuilder().file("../fn.py", "x").build(), Runtime::python3, "points outside"},
  };
  for (const auto& c : cases) {
    auto deployed = deploy("bad", 1, c.zip, "", c.runtime);
    ASSERT_FALSE(deployed) << c.reason;
    EXPECT_TRUE(deployed.error().userError);
    EXPECT_NE(deployed.error().message.find(c.reason), std::string::npos) << deployed.error().message;
  }
  EXPECT_TRUE(backend.instances.empty());
  EXPECT_TRUE(manager().names().empty());
  // No half-extracted versions left behind.
  const fs::path versions = options.stateDir / "functions" / "bad";
  EXPECT_TRUE(!fs::exists(versions) || fs::is_empty(versions));
}

TEST_F(FunctionManagerTest, DeploysFromASubfolder) {
  auto deployed = deploy("echo", 1, test::pythonZip("functions/echo/"), "functions/echo");
  ASSERT_TRUE(deployed) << deployed.error().message;
  EXPECT_TRUE(fs::equivalent(backend.instances[0]->spec.codeDir,
                             options.stateDir / "functions" / "echo" / "v1" / "functions" / "echo"));
  EXPECT_TRUE(deploy("top", 1, test::pythonZip(), "/"));
}

TEST_F(FunctionManagerTest, RejectsBadSubfolders) {
  auto outside = deploy("echo", 1, test::pythonZip(), "../..");
  ASSERT_FALSE(outside);
  EXPECT_NE(outside.error().message.find("points outside the archive"), std::string::npos) << outside.error().message;
  auto missing = deploy("echo", 1, test::pythonZip(), "nope");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("is not a folder in the archive"), std::string::npos);
  auto file = deploy("echo", 1, test::pythonZip(), "fn.py");
  ASSERT_FALSE(file);
  EXPECT_TRUE(backend.instances.empty());
}

TEST_F(FunctionManagerTest, FailedDependencyInstallIsReported) {
  options.python = "false";  // stands in for a pip that fails, without a network
  auto zip = ZipBuilder().file("fn.py", "x").file("requirements.txt", "requests\n").build();
  auto deployed = deploy("deps", 1, zip);
  ASSERT_FALSE(deployed);
  EXPECT_EQ(deployed.error().message, "installing dependencies failed (exited with status 1): no output");
  EXPECT_TRUE(backend.instances.empty());
}

TEST_F(FunctionManagerTest, SuccessfulDependencyInstallGoesOnToStart) {
  options.python = "true";
  auto zip = ZipBuilder().file("fn.py", "x").file("requirements.txt", "requests\n").build();
  auto deployed = deploy("deps", 1, zip);
  ASSERT_TRUE(deployed) << deployed.error().message;
  EXPECT_EQ(backend.instances.size(), 1u);
}

TEST_F(FunctionManagerTest, NodejsPackageWithoutDependenciesNeedsNoInstall) {
  options.npm = "false";  // would fail if it ran
  auto zip = ZipBuilder().file("package.json", R"({"name":"f","main":"index.js"})").file("index.js", "x").build();
  auto deployed = deploy("js", 1, zip, "", Runtime::nodejs);
  ASSERT_TRUE(deployed) << deployed.error().message;
  auto broken = ZipBuilder().file("package.json", "{not json").build();
  auto rejected = deploy("js", 1, broken, "", Runtime::nodejs);
  ASSERT_FALSE(rejected);
  EXPECT_EQ(rejected.error().message, "package.json is not valid JSON");
}

TEST_F(FunctionManagerTest, ExitedInstanceLeavesTheRoutesAndIsRestarted) {
  options.restartBackoffMin = 300ms;  // long enough to see the gap
  ASSERT_TRUE(deploy("echo", 2));
  backend.exit("echo.1", "killed by signal 9 (Killed)");
  ASSERT_TRUE(test::runUntil(io, [&] { return routed("echo") == std::set<std::string>{"echo.2"}; }));
  EXPECT_EQ(backend.instances.size(), 2u);  // not restarted before the backoff
  ASSERT_TRUE(test::runUntil(io, [&] { return routed("echo") == std::set<std::string>{"echo.2", "echo.3"}; }));
  EXPECT_EQ(backend.instances[2]->spec.codeDir, backend.instances[0]->spec.codeDir);
  EXPECT_NE(logs.read("echo").find("echo.1 tinyfaas: instance killed by signal 9 (Killed)"), std::string::npos)
      << logs.read("echo");
  EXPECT_EQ(call("echo").status, CallStatus::ok);
}

TEST_F(FunctionManagerTest, RestartKeepsTryingWithBackoff) {
  ASSERT_TRUE(deploy("echo", 1));
  backend.exitOnStart = 2;
  backend.exit("echo.1");
  // echo.2 and echo.3 were the failed attempts.
  ASSERT_TRUE(test::runUntil(io, [&] { return routed("echo") == std::set<std::string>{"echo.4"}; }));
  const std::string log = logs.read("echo");
  std::size_t failures = 0;
  for (auto at = log.find("restart failed: instance echo."); at != std::string::npos;
       at = log.find("restart failed: instance echo.", at + 1))
    ++failures;
  EXPECT_EQ(failures, 2u) << log;
  EXPECT_EQ(stoppedIds(), (std::set<std::string>{"echo.1", "echo.2", "echo.3"}));
}

TEST_F(FunctionManagerTest, RestartRetriesAfterBackendStartErrors) {
  ASSERT_TRUE(deploy("echo", 1));
  backend.failStarts = 2;
  backend.exit("echo.1");
  ASSERT_TRUE(test::runUntil(io, [&] { return routed("echo") == std::set<std::string>{"echo.4"}; }));
  const std::string log = logs.read("echo");
  std::size_t failures = 0;
  for (auto at = log.find("restart failed: injected start failure"); at != std::string::npos;
       at = log.find("restart failed: injected start failure", at + 1))
    ++failures;
  EXPECT_EQ(failures, 2u) << log;
}

TEST_F(FunctionManagerTest, UnknownFunctionRemovalIsFalse) { EXPECT_FALSE(test::run(io, manager().remove("nope"))); }

TEST_F(FunctionManagerTest, RemoveStopsEverythingAndForgetsTheFunction) {
  ASSERT_TRUE(deploy("echo", 2));
  ASSERT_TRUE(deploy("other", 1));
  logs.append("echo", "echo.1", "a line");
  EXPECT_TRUE(test::run(io, manager().remove("echo")));
  EXPECT_FALSE(router.contains("echo"));
  EXPECT_EQ(call("echo").status, CallStatus::notFound);
  EXPECT_EQ(stoppedIds(), (std::set<std::string>{"echo.1", "echo.2"}));
  EXPECT_FALSE(fs::exists(options.stateDir / "functions" / "echo"));
  EXPECT_FALSE(fs::exists(options.stateDir / "run" / "echo.1"));
  EXPECT_EQ(logs.read("echo"), "");
  EXPECT_EQ(manager().names(), (std::vector<std::string>{"other"}));
  EXPECT_EQ(call("other").status, CallStatus::ok);
  EXPECT_FALSE(test::run(io, manager().remove("echo")));
}

TEST_F(FunctionManagerTest, RemoveWaitsForCallsInProgress) {
  ASSERT_TRUE(deploy("echo", 1));
  auto& instance = *backend.instances[0];
  instance.handler->mode = FakeHandler::Mode::gated;
  std::optional<CallResult> inFlight;
  startCall("echo", inFlight);
  ASSERT_TRUE(test::runUntil(io, [&] { return instance.handler->inFlight() == 1; }));
  std::optional<bool> removed;
  asio::co_spawn(io, manager().remove("echo"), [&](std::exception_ptr, bool r) { removed = r; });
  ASSERT_TRUE(test::runUntil(io, [&] { return !router.contains("echo"); }));
  test::runFor(io, 100ms);
  EXPECT_FALSE(instance.stopped);
  instance.handler->openGate();
  ASSERT_TRUE(test::runUntil(io, [&] { return removed.has_value() && inFlight.has_value(); }));
  EXPECT_EQ(inFlight->status, CallStatus::ok);
  EXPECT_EQ(instance.inFlightAtStop, 0u);
}

TEST_F(FunctionManagerTest, InstancesApplyTheFunctionsCallLimits) {
  FunctionConfig config;
  config.name = "echo";
  config.runtime = Runtime::python3;
  config.calls.concurrency = 1;
  config.calls.queue = 1;
  ASSERT_TRUE(test::run(io, manager().deploy(config, test::pythonZip(), "")));
  auto& instance = *backend.instances[0];
  instance.handler->mode = FakeHandler::Mode::gated;
  std::optional<CallResult> running, queued, refused;
  startCall("echo", running);
  startCall("echo", queued);
  startCall("echo", refused);
  ASSERT_TRUE(test::runUntil(io, [&] { return refused.has_value(); }));
  EXPECT_EQ(refused->status, CallStatus::overloaded) << refused->body;
  EXPECT_TRUE(test::runUntil(io, [&] { return instance.handler->inFlight() == 1; }));
  instance.handler->openGate();
  ASSERT_TRUE(test::runUntil(io, [&] { return running.has_value() && queued.has_value(); }));
  EXPECT_EQ(running->status, CallStatus::ok);
  EXPECT_EQ(queued->status, CallStatus::ok);
  // Shown with the daemon's timeout, as the function set none.
  const auto status = manager().status(Scope{});
  ASSERT_EQ(status.size(), 1u);
  EXPECT_EQ(status[0].calls.timeout, options.upstream.callTimeout);
  EXPECT_EQ(status[0].calls.concurrency, 1);
  EXPECT_EQ(status[0].calls.queue, 1);
}

TEST_F(FunctionManagerTest, AFunctionsTimeoutReplacesTheDaemons) {
  FunctionConfig config;
  config.name = "echo";
  config.runtime = Runtime::python3;
  config.calls.timeout = 100ms;
  ASSERT_TRUE(test::run(io, manager().deploy(config, test::pythonZip(), "")));
  backend.instances[0]->handler->mode = FakeHandler::Mode::never;
  EXPECT_EQ(call("echo").status, CallStatus::timeout);
  EXPECT_EQ(manager().status(Scope{})[0].calls.timeout, 100ms);
}

TEST_F(FunctionManagerTest, RemoveAllRemovesEveryFunction) {
  ASSERT_TRUE(deploy("a", 1));
  ASSERT_TRUE(deploy("b", 2));
  test::run(io, manager().removeAll());
  EXPECT_TRUE(manager().names().empty());
  EXPECT_EQ(backend.running(), 0u);
  EXPECT_FALSE(router.contains("a"));
  EXPECT_FALSE(router.contains("b"));
}

TEST_F(FunctionManagerTest, ConcurrentDeploysBothSucceed) {
  std::optional<boost::system::result<void, DeployError>> first, second;
  startDeploy("a", 2, first);
  startDeploy("b", 2, second);
  ASSERT_TRUE(test::runUntil(io, [&] { return first.has_value() && second.has_value(); }));
  EXPECT_TRUE(*first);
  EXPECT_TRUE(*second);
  EXPECT_EQ(routed("a").size(), 2u);
  EXPECT_EQ(routed("b").size(), 2u);
}

TEST_F(FunctionManagerTest, RemovalDuringARestartLeavesNothingRunning) {
  ASSERT_TRUE(deploy("echo", 1));
  backend.startUnhealthy = true;  // the replacement will sit in its health wait
  backend.exit("echo.1");
  ASSERT_TRUE(test::runUntil(io, [&] { return backend.instances.size() == 2; }));
  EXPECT_TRUE(test::run(io, manager().remove("echo")));
  test::runFor(io, 300ms);
  EXPECT_EQ(backend.running(), 0u);
  EXPECT_FALSE(router.contains("echo"));
}

TEST_F(FunctionManagerTest, RemovalDuringARestartBackoffStopsTheRestart) {
  // A backoff far longer than remove() takes on a loaded machine, and a wait
  // past its end: a restart the removal failed to cancel would show.
  options.restartBackoffMin = 1s;
  ASSERT_TRUE(deploy("echo", 1));
  backend.exit("echo.1");
  test::runFor(io, 20ms);
  EXPECT_TRUE(test::run(io, manager().remove("echo")));
  test::runFor(io, 1300ms);
  EXPECT_EQ(backend.instances.size(), 1u);  // never restarted
  EXPECT_FALSE(router.contains("echo"));
}

TEST_F(FunctionManagerTest, PrepareStateDirRemovesLeftovers) {
  fs::create_directories(options.stateDir / "functions" / "old" / "v3");
  fs::create_directories(options.stateDir / "run" / "old.9");
  fs::create_directories(options.stateDir / "keep");
  manager();  // prepares
  EXPECT_TRUE(fs::is_empty(options.stateDir / "functions"));
  EXPECT_TRUE(fs::is_empty(options.stateDir / "run"));
  EXPECT_TRUE(fs::exists(options.stateDir / "keep"));
}

TEST_F(FunctionManagerTest, PrepareStateDirRefusesPathsTooLongForSockets) {
  options.stateDir = dir / std::string(100, 's');
  FunctionManager longManager(io.get_executor(), io.get_executor(), router, backend, logs, options);
  auto prepared = longManager.prepareStateDir();
  ASSERT_FALSE(prepared);
  EXPECT_NE(prepared.error().find("too long for Unix socket paths"), std::string::npos) << prepared.error();
}

TEST_F(FunctionManagerTest, NamesTooLongForTheSocketPathAreRefusedAtDeploy) {
  options.stateDir = dir / std::string(40, 's');
  seedLog(std::string(64, 'n'));
  FunctionConfig config;
  config.name = std::string(64, 'n');
  config.runtime = Runtime::python3;
  auto deployed = test::run(io, manager().deploy(config, test::pythonZip(), ""), 3s);
  ASSERT_FALSE(deployed);
  EXPECT_NE(deployed.error().message.find("longer than Unix sockets allow"), std::string::npos)
      << deployed.error().message;
  EXPECT_TRUE(backend.instances.empty());
}

TEST_F(FunctionManagerTest, StoredFunctionsComeBackAfterARestart) {
  FunctionConfig config;
  config.name = "echo";
  config.runtime = Runtime::python3;
  config.threads = 2;
  config.env = {"GREETING=hi"};
  config.limits.memoryMb = 64;
  ASSERT_TRUE(test::run(io, manager().deploy(config, ZipBuilder().file("app/fn.py", "x").build(), "app")));
  ASSERT_TRUE(deploy("other", 1));
  const auto createdBefore = std::chrono::time_point_cast<std::chrono::milliseconds>(manager().status()[0].created);

  auto& restarted = restartManager();
  // Listed before any instance is up; calls get 503 until then, not 404.
  EXPECT_EQ(restarted.names(), (std::vector<std::string>{"echo", "other"}));
  EXPECT_EQ(backend.running(), 0u);
  test::run(io, restarted.restore());
  EXPECT_EQ(backend.running(), 3u);
  EXPECT_EQ(routed("echo").size(), 2u);
  EXPECT_EQ(call("echo").status, CallStatus::ok);
  const auto& spec = backend.instances.back()->spec.function == "echo"
                         ? backend.instances.back()->spec
                         : backend.instances[backend.instances.size() - 2]->spec;
  EXPECT_EQ(spec.env, (std::vector<std::string>{"GREETING=hi"}));
  EXPECT_EQ(spec.limits.memoryMb, 64);
  EXPECT_TRUE(fs::exists(spec.codeDir / "fn.py")) << spec.codeDir;
  // Timestamps survive too (stored with millisecond precision).
  EXPECT_EQ(restarted.status()[0].created, createdBefore);
}

TEST_F(FunctionManagerTest, ARedeployAfterARestartGetsAFreshVersion) {
  ASSERT_TRUE(deploy("echo", 1));
  auto& restarted = restartManager();
  test::run(io, restarted.restore());
  ASSERT_TRUE(deploy("echo", 1));
  auto& again = restartManager();
  test::run(io, again.restore());
  EXPECT_EQ(call("echo").status, CallStatus::ok);
  EXPECT_EQ(again.names(), std::vector<std::string>{"echo"});
}

TEST_F(FunctionManagerTest, FailedRedeployKeepsTheStoredVersion) {
  ASSERT_TRUE(deploy("echo", 1));
  const auto firstCode = backend.instances[0]->spec.codeDir;
  backend.exitOnStart = 1;
  ASSERT_FALSE(deploy("echo", 1));
  auto& restarted = restartManager();
  test::run(io, restarted.restore());
  EXPECT_EQ(backend.instances.back()->spec.codeDir, firstCode);
  EXPECT_EQ(call("echo").status, CallStatus::ok);
}

TEST_F(FunctionManagerTest, DeletedFunctionsStayDeletedAfterARestart) {
  ASSERT_TRUE(deploy("echo", 1));
  ASSERT_TRUE(deploy("other", 1));
  ASSERT_TRUE(test::run(io, manager().remove("echo")));
  auto& restarted = restartManager();
  EXPECT_EQ(restarted.names(), std::vector<std::string>{"other"});
  EXPECT_FALSE(fs::exists(options.stateDir / "functions" / "echo"));
}

TEST_F(FunctionManagerTest, RestoredInstanceThatDoesNotStartIsRetriedInTheBackground) {
  ASSERT_TRUE(deploy("echo", 1));
  auto& restarted = restartManager();
  backend.exitOnStart = 2;
  test::run(io, restarted.restore());
  EXPECT_EQ(restarted.names(), std::vector<std::string>{"echo"});
  ASSERT_TRUE(test::runUntil(io, [&] { return routed("echo").size() == 1; }));
  EXPECT_EQ(call("echo").status, CallStatus::ok);
}

TEST_F(FunctionManagerTest, RestartsAndCrashLoopsAreLogged) {
  ASSERT_TRUE(deploy("echo", 1));
  backend.exitOnStart = 3;
  backend.exit("echo.1");
  ASSERT_TRUE(test::runUntil(io, [&] { return logs.read("echo").find("crash loop") != std::string::npos; }));
  auto during = manager().status();
  ASSERT_EQ(during.size(), 1u);
  EXPECT_TRUE(during[0].crashLoop);
  EXPECT_EQ(during[0].healthy, 0);
  EXPECT_NE(logs.read("echo").find("(crash loop: 3 failures in a row)"), std::string::npos) << logs.read("echo");
  ASSERT_TRUE(test::runUntil(io, [&] { return routed("echo").size() == 1; }));
  auto after = manager().status();
  EXPECT_FALSE(after[0].crashLoop);
  EXPECT_EQ(after[0].healthy, 1);
  EXPECT_EQ(after[0].restarts, 4u);
  EXPECT_NE(logs.read("echo").find("tinyfaas: serving again after restart 4"), std::string::npos) << logs.read("echo");
}

TEST_F(FunctionManagerTest, TenantsSeeAndChangeOnlyTheirOwnFunctions) {
  const Scope alice{"alice", false};
  const Scope bob{"bob", false};
  const Scope admin{"ops", true};
  ASSERT_TRUE(deployAs("mine", alice));
  ASSERT_TRUE(deployAs("theirs", bob));
  EXPECT_EQ(manager().names(alice), std::vector<std::string>{"mine"});
  EXPECT_EQ(manager().names(admin), (std::vector<std::string>{"mine", "theirs"}));

  auto taken = deployAs("theirs", alice);
  ASSERT_FALSE(taken);
  EXPECT_TRUE(taken.error().nameTaken);
  EXPECT_EQ(taken.error().message, "function name theirs is taken; choose another name");
  EXPECT_FALSE(test::run(io, manager().remove("theirs", alice)));
  test::run(io, manager().removeAll(alice));
  EXPECT_EQ(manager().names(), std::vector<std::string>{"theirs"});

  // An admin's redeploy keeps the owner, also across a restart.
  ASSERT_TRUE(deployAs("theirs", admin));
  auto& restarted = restartManager();
  EXPECT_EQ(restarted.names(bob), std::vector<std::string>{"theirs"});
  EXPECT_TRUE(restarted.names(alice).empty());
  ASSERT_EQ(restarted.status(bob).size(), 1u);
  EXPECT_TRUE(restarted.status(alice).empty());
}

}  // namespace
}  // namespace tinyfaas
