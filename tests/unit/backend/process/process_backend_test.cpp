#include "backend/process/process_backend.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "proxy/upstream.hpp"
#include "test_support.hpp"
#include "util/child_process.hpp"

namespace tinyfaas {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

class RecordingLogSink final : public LogSink {
 public:
  struct Line {
    std::string function, instance, text;
  };
  void append(std::string_view function, std::string_view instance, std::string_view line) override {
    lines.push_back({std::string(function), std::string(instance), std::string(line)});
  }
  bool has(std::string_view text) const {
    return std::any_of(lines.begin(), lines.end(), [&](const Line& l) { return l.text == text; });
  }
  std::vector<Line> lines;
};

// Processes (host pids) whose command line contains `argument`: the
// handler and, under bubblewrap, bwrap itself.
std::vector<pid_t> processesWith(const std::string& argument) {
  std::vector<pid_t> pids;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    // A process may end while it is read: readFile gives "" then, not an exception.
    const std::string cmdline = test::readFile(entry.path() / "cmdline");
    for (std::size_t at = 0; at < cmdline.size();) {
      const std::size_t end = cmdline.find('\0', at);
      if (cmdline.compare(at, end - at, argument) == 0) {
        pids.push_back(std::stoi(name));
        break;
      }
      if (end == std::string::npos) break;
      at = end + 1;
    }
  }
  return pids;
}

pid_t parentOf(pid_t pid) {
  const std::string stat = test::readFile("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close + 2));
  char state = 0;
  pid_t parent = -1;
  rest >> state >> parent;
  return parent;
}

bool bwrapUsable() {
  const std::string bwrap = findExecutable("bwrap");
  if (bwrap.empty()) return false;
  const std::string probe = bwrap + " --unshare-all --die-with-parent --ro-bind / / true >/dev/null 2>&1";
  return std::system(probe.c_str()) == 0;
}

class ProcessBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options.runtimesDir = test::repoDir() / "runtimes";
    options.binaryHandler = "/bin/true";  // any executable: only its path matters here
    options.stopGrace = 2000ms;
  }

  void TearDown() override {
    for (auto& instance : instances) test::run(io, backend->stop(*instance));
    test::runFor(io, 20ms);
  }

  ProcessBackend& make(SandboxMode sandbox) {
    options.sandbox = sandbox;
    auto created = ProcessBackend::create(io.get_executor(), options, logs);
    if (!created) throw std::runtime_error(created.error());
    backend = std::move(*created);
    return *backend;
  }

  InstanceSpec spec(const fs::path& codeDir, Runtime runtime = Runtime::python3, std::string id = "echo.1") {
    InstanceSpec s;
    s.function = "echo";
    s.instanceId = id;
    s.runtime = runtime;
    s.codeDir = codeDir;
    s.socketDir = dir / "run" / id;
    return s;
  }

  // A function folder of our own (the repo's echo prints nothing).
  fs::path function(const std::string& source) {
    const fs::path code = dir / "code";
    dir.writeFile("code/fn.py", source);
    return code;
  }

  Instance& start(InstanceSpec s) {
    auto started = test::run(io, backend->start(std::move(s), [this](std::string how) { exits.push_back(how); }));
    if (!started) throw std::runtime_error(started.error());
    instances.push_back(std::move(*started));
    return *instances.back();
  }

  // Until the handler accepts connections (it binds before it listens).
  bool waitForSocket(const Instance& instance) {
    return test::runUntil(io, [&] {
      if (!fs::exists(instance.socketPath())) return false;
      asio::local::stream_protocol::socket probe(io);
      boost::system::error_code ec;
      probe.connect(asio::local::stream_protocol::endpoint(instance.socketPath().string()), ec);
      return !ec;
    });
  }

  CallResult call(const Instance& instance, std::string payload) {
    // Shared: an Upstream's exchange holds it (proxy/upstream.hpp).
    auto upstream =
        std::make_shared<Upstream>(io.get_executor(), instance.id(), instance.socketPath(), UpstreamOptions{});
    return test::run(io, upstream->call(Invocation{"echo", std::move(payload), {}}));
  }

  // The command line an instance would run with (a stand-in descriptor as
  // its socket).
  std::vector<std::string> commandFor(const InstanceSpec& s) {
    fs::create_directories(s.codeDir);
    auto launch = backend->launchFor(s, UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)));
    if (!launch) throw std::runtime_error(launch.error());
    return launch->spawn.argv;
  }

  void stop(Instance& instance) {
    test::run(io, backend->stop(instance));
    instances.erase(
        std::remove_if(instances.begin(), instances.end(), [&](const auto& i) { return i.get() == &instance; }),
        instances.end());
  }

  asio::io_context io;
  test::TempDir dir;
  RecordingLogSink logs;
  ProcessBackendOptions options;
  std::unique_ptr<ProcessBackend> backend;
  std::vector<std::unique_ptr<Instance>> instances;
  std::vector<std::string> exits;
};

TEST_F(ProcessBackendTest, CommandWithoutSandboxIsTheRuntimeHandler) {
  auto& b = make(SandboxMode::none);
  EXPECT_EQ(b.describe().rfind("process (no sandbox", 0), 0u) << b.describe();
  const std::string socket = (dir / "run" / "echo.1" / "handler.sock").string();

  auto python = commandFor(spec(dir / "code"));
  ASSERT_EQ(python.size(), 3u);
  EXPECT_EQ(python[0].front(), '/') << "python3 resolved to a path: " << python[0];
  EXPECT_EQ(python[1], (options.runtimesDir / "python3" / "handler.py").string());
  EXPECT_EQ(python[2], socket);

  auto node = commandFor(spec(dir / "code", Runtime::nodejs));
  ASSERT_EQ(node.size(), 3u);
  EXPECT_EQ(node[1], (options.runtimesDir / "nodejs" / "handler.js").string());
  EXPECT_EQ(node[2], socket);

  auto binary = commandFor(spec(dir / "code", Runtime::binary));
  EXPECT_EQ(binary, (std::vector<std::string>{"/bin/true", socket}));
}

TEST_F(ProcessBackendTest, BwrapCommandIsolatesTheHandler) {
  if (findExecutable("bwrap").empty()) GTEST_SKIP() << "bwrap is not installed";
  auto& b = make(SandboxMode::bwrap);
  EXPECT_NE(b.describe().find("bubblewrap"), std::string::npos) << b.describe();
  const auto s = spec(dir / "code");
  const std::string code = s.codeDir.string();
  const std::string sockets = s.socketDir.string();
  const auto args = commandFor(s);
  ASSERT_FALSE(args.empty());
  EXPECT_EQ(fs::path(args[0]).filename(), "bwrap");
  auto has = [&](std::vector<std::string> run) {
    return std::search(args.begin(), args.end(), run.begin(), run.end()) != args.end();
  };
  EXPECT_TRUE(has({"--unshare-all"}));
  EXPECT_TRUE(has({"--die-with-parent"}));
  EXPECT_TRUE(has({"--new-session"}));
  EXPECT_TRUE(has({"--clearenv"}));
  EXPECT_TRUE(has({"--seccomp"}));
  // The code read-only through a descriptor; the socket is inherited, its
  // directory not shared.
  const auto codeBind = std::find(args.begin(), args.end(), code);
  ASSERT_NE(codeBind, args.end());
  EXPECT_EQ(*(codeBind - 2), "--ro-bind-fd");
  EXPECT_TRUE(has({"--setenv", "TINYFAAS_LISTEN_FD", "3"}));
  EXPECT_EQ(std::count(args.begin(), args.end(), sockets), 0);
  EXPECT_TRUE(has({"--chdir", code}));
  EXPECT_TRUE(has({"--tmpfs", "/tmp"}));
  // The code is never writable, and neither /etc nor / is shared whole.
  EXPECT_FALSE(has({"--bind", code, code}));
  EXPECT_FALSE(has({"--bind-fd"}));
  for (const char* whole : {"/etc", "/", "/root", "/home"}) {
    for (const char* flag : {"--bind", "--ro-bind", "--ro-bind-try", "--bind-try"}) {
      EXPECT_FALSE(has({flag, whole, whole})) << flag << " " << whole;
    }
  }
  EXPECT_TRUE(has({"--ro-bind-try", "/etc/passwd", "/etc/passwd"}));
  // The handler command follows "--", the socket path last.
  const auto separator = std::find(args.begin(), args.end(), "--");
  ASSERT_NE(separator, args.end());
  EXPECT_EQ(*(separator + 2), (options.runtimesDir / "python3" / "handler.py").string());
  EXPECT_EQ(args.back(), sockets + "/handler.sock");
}

TEST_F(ProcessBackendTest, AskingForBwrapWithoutItFails) {
  const char* saved = std::getenv("PATH");
  const std::string path = saved ? saved : "";
  setenv("PATH", dir.path().c_str(), 1);
  options.sandbox = SandboxMode::bwrap;
  auto created = ProcessBackend::create(io.get_executor(), options, logs);
  setenv("PATH", path.c_str(), 1);
  ASSERT_FALSE(created);
  EXPECT_NE(created.error().find("bwrap is not installed"), std::string::npos) << created.error();
}

TEST_F(ProcessBackendTest, StartFailsWhenTheSocketDirectoryCannotBeMade) {
  auto& b = make(SandboxMode::none);
  dir.writeFile("run", "a file where a directory should be");
  auto started = test::run(io, b.start(spec(test::repoDir() / "functions" / "echo"), nullptr));
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().find("cannot create "), std::string::npos) << started.error();
}

class RealHandlerTest : public ProcessBackendTest, public ::testing::WithParamInterface<SandboxMode> {
 protected:
  void SetUp() override {
    ProcessBackendTest::SetUp();
    if (GetParam() == SandboxMode::bwrap && !bwrapUsable()) GTEST_SKIP() << "bwrap is not usable here";
    make(GetParam());
  }
};

TEST_P(RealHandlerTest, RunsTheEchoFunctionUntilStopped) {
  auto& instance = start(spec(test::repoDir() / "functions" / "echo"));
  EXPECT_EQ(instance.id(), "echo.1");
  EXPECT_EQ(instance.socketPath(), dir / "run" / "echo.1" / "handler.sock");
  ASSERT_TRUE(waitForSocket(instance)) << "handler.sock never appeared";
  auto result = call(instance, "hello sandbox");
  EXPECT_EQ(result.status, CallStatus::ok) << result.body;
  EXPECT_EQ(result.body, "hello sandbox");
  const std::string socket = instance.socketPath().string();
  ASSERT_FALSE(processesWith(socket).empty());

  stop(instance);
  EXPECT_TRUE(processesWith(socket).empty()) << "handler still running after stop()";
  EXPECT_FALSE(fs::exists(dir / "run" / "echo.1"));
  test::runFor(io, 50ms);
  EXPECT_TRUE(exits.empty()) << "stop() must not report an exit: " << exits.front();
}

TEST_P(RealHandlerTest, HandlerOutputReachesTheLogSink) {
  auto code = function(
      "import sys\n"
      "print('loaded on stdout')\n"
      "print('loaded on stderr', file=sys.stderr)\n"
      "def fn(input, headers):\n"
      "    print('called with ' + (input or ''))\n"
      "    return input\n");
  auto& instance = start(spec(code));
  ASSERT_TRUE(waitForSocket(instance));
  EXPECT_EQ(call(instance, "x").body, "x");
  ASSERT_TRUE(test::runUntil(io, [&] { return logs.has("called with x"); }));
  EXPECT_TRUE(logs.has("loaded on stdout"));
  EXPECT_TRUE(logs.has("loaded on stderr"));
  for (const auto& line : logs.lines) {
    EXPECT_EQ(line.function, "echo");
    EXPECT_EQ(line.instance, "echo.1");
  }
}

TEST_P(RealHandlerTest, FunctionSeesItsEnvironmentButCannotRedirectItsSocket) {
  auto code = function(
      "import os\n"
      "def fn(input, headers):\n"
      "    return '|'.join(os.environ.get(k, '-') for k in\n"
      "        ('GREETING', 'TINYFAAS_SOCKET', 'TINYFAAS_FUNCTION', 'TINYFAAS_INSTANCE', 'HOME'))\n");
  auto s = spec(code);
  s.env = {"GREETING=hello=world", "TINYFAAS_SOCKET=/tmp/evil.sock", "HOME=/custom"};
  auto& instance = start(s);
  ASSERT_TRUE(waitForSocket(instance));
  auto result = call(instance, "");
  EXPECT_EQ(result.body, "hello=world|" + instance.socketPath().string() + "|echo|echo.1|/custom");
}

TEST_P(RealHandlerTest, ExternalKillIsReportedOnce) {
  auto& instance = start(spec(test::repoDir() / "functions" / "echo"));
  ASSERT_TRUE(waitForSocket(instance));
  // Serving: the sandbox is set up (killed earlier, bwrap could leave it
  // without its parent-death signal; the output pipes no longer wait on it).
  ASSERT_EQ(call(instance, "up").body, "up");
  // The process we started: python itself, or bwrap around it (polled: the
  // daemon's socket listens before the child has exec'd).
  pid_t child = -1;
  ASSERT_TRUE(test::runUntil(io, [&] {
    for (pid_t pid : processesWith(instance.socketPath().string()))
      if (parentOf(pid) == getpid()) child = pid;
    return child > 0;
  }));
  ASSERT_EQ(kill(child, SIGKILL), 0);
  ASSERT_TRUE(test::runUntil(io, [&] { return !exits.empty(); }));
  EXPECT_EQ(exits, (std::vector<std::string>{"killed by signal 9 (Killed)"}));
  EXPECT_TRUE(test::runUntil(io, [&] { return processesWith(instance.socketPath().string()).empty(); }));
  // The manager still stops it: that only cleans up now.
  stop(instance);
  EXPECT_FALSE(fs::exists(dir / "run" / "echo.1"));
  EXPECT_EQ(exits.size(), 1u);
}

TEST_P(RealHandlerTest, FunctionThatFailsToLoadExitsWithItsError) {
  auto code = function("raise RuntimeError('broken at import')\n");
  start(spec(code));
  ASSERT_TRUE(test::runUntil(io, [&] { return !exits.empty(); }));
  EXPECT_EQ(exits[0].rfind("exited with status ", 0), 0u) << exits[0];
  EXPECT_NE(exits[0], "exited with status 0");
  const bool logged = std::any_of(logs.lines.begin(), logs.lines.end(),
                                  [](const auto& l) { return l.text.find("broken at import") != std::string::npos; });
  EXPECT_TRUE(logged);
}

INSTANTIATE_TEST_SUITE_P(Sandbox, RealHandlerTest, ::testing::Values(SandboxMode::none, SandboxMode::bwrap),
                         [](const auto& info) { return info.param == SandboxMode::none ? "none" : "bwrap"; });

// Instances started from standbys (the warm pool) with the real handlers.
class StandbyTest : public RealHandlerTest {
 protected:
  void SetUp() override {
    RealHandlerTest::SetUp();
    if (IsSkipped()) return;
    options.stateDir = dir / "state";
    options.warmPool = 1;
    make(GetParam());
    asio::co_spawn(io, backend->prepare(), [this](std::exception_ptr) { poolEnded = true; });
  }
  void TearDown() override {
    if (!backend) return;
    RealHandlerTest::TearDown();
    backend->cancel();
    EXPECT_TRUE(test::runUntil(io, [&] { return poolEnded; }));
    EXPECT_TRUE(processesWith(standbySocket(0)).empty()) << "a standby outlived the pool";
  }
  std::string standbySocket(int n) {
    return (dir / "state" / "run" / ("standby-" + std::to_string(n)) / "handler.sock").string();
  }
  bool waitForStandby(Runtime runtime) {
    return test::runUntil(
        io, [&] { return backend->standbys()[runtime] > 0; }, 10s);
  }
  // Handed over: it serves on its standby's socket.
  static bool fromStandby(const Instance& instance) {
    return instance.socketPath().parent_path().filename().string().rfind("standby-", 0) == 0;
  }
  bool poolEnded = false;
};

TEST_P(StandbyTest, TakesOverAPythonFunctionWithItsEnvironment) {
  backend->keepWarm({Runtime::python3});
  ASSERT_TRUE(waitForStandby(Runtime::python3));
  auto code = function(
      "import os\n"
      "print('loaded in the standby')\n"
      "def fn(input, headers):\n"
      "    return '|'.join([os.environ.get(k, '-') for k in\n"
      "        ('GREETING', 'TINYFAAS_STANDBY', 'TINYFAAS_CONTROL_FD', 'TINYFAAS_FUNCTION', 'TINYFAAS_INSTANCE')]\n"
      "        + [','.join(sorted(os.listdir('.')))])\n");
  auto s = spec(code);
  s.env = {"GREETING=hello"};
  Instance& instance = start(s);
  EXPECT_TRUE(fromStandby(instance)) << instance.socketPath();
  EXPECT_TRUE(instance.saidReady());
  EXPECT_EQ(instance.id(), "echo.1");
  // No probe needed: it serves as start() returns.
  auto result = call(instance, "");
  EXPECT_EQ(result.status, CallStatus::ok) << result.body;
  EXPECT_EQ(result.body, "hello|-|-|echo|echo.1|fn.py");
  ASSERT_TRUE(test::runUntil(io, [&] { return logs.has("loaded in the standby"); }));
  for (const auto& line : logs.lines) {
    if (line.text == "loaded in the standby") {
      EXPECT_EQ(line.instance, "echo.1") << "the function's, not the standby's";
    }
  }
}

TEST_P(StandbyTest, TakesOverANodeFunction) {
  backend->keepWarm({Runtime::nodejs});
  ASSERT_TRUE(waitForStandby(Runtime::nodejs));
  dir.writeFile("jscode/index.js",
                "const fs = require('fs');\n"
                "module.exports = (req) => [process.env.GREETING, process.env.TINYFAAS_STANDBY || '-',\n"
                "  fs.readdirSync('.').join(','), req.body].join('|');\n");
  auto s = spec(dir / "jscode", Runtime::nodejs);
  s.env = {"GREETING=hej"};
  Instance& instance = start(s);
  EXPECT_TRUE(fromStandby(instance)) << instance.socketPath();
  auto result = call(instance, "body");
  EXPECT_EQ(result.status, CallStatus::ok) << result.body;
  EXPECT_EQ(result.body, "hej|-|index.js|body");
}

TEST_P(StandbyTest, AVariableTheInterpreterReadsAtStartGetsAnInterpreterOfItsOwn) {
  backend->keepWarm({Runtime::python3});
  ASSERT_TRUE(waitForStandby(Runtime::python3));
  auto code = function("import os\ndef fn(input, headers):\n    return os.environ.get('PYTHONHASHSEED')\n");
  auto s = spec(code);
  s.env = {"PYTHONHASHSEED=7"};
  Instance& instance = start(s);
  EXPECT_FALSE(fromStandby(instance)) << "python reads PYTHONHASHSEED only as it starts";
  ASSERT_TRUE(waitForSocket(instance));
  EXPECT_EQ(call(instance, "").body, "7");
  EXPECT_EQ(backend->standbys()[Runtime::python3], 1u) << "the standby waits on";
}

TEST_P(StandbyTest, AStandbyServesOneFunctionAndEndsWithIt) {
  backend->keepWarm({Runtime::python3});
  ASSERT_TRUE(waitForStandby(Runtime::python3));
  Instance& first = start(spec(test::repoDir() / "functions" / "echo", Runtime::python3, "echo.1"));
  ASSERT_TRUE(fromStandby(first));
  const fs::path slot = dir / "state" / "standby" / first.socketPath().parent_path().filename();
  EXPECT_TRUE(fs::exists(slot));
  // Replaced by a new standby, never by the same one back.
  ASSERT_TRUE(waitForStandby(Runtime::python3));
  Instance& second = start(spec(test::repoDir() / "functions" / "echo", Runtime::python3, "echo.2"));
  ASSERT_TRUE(fromStandby(second));
  EXPECT_NE(first.socketPath(), second.socketPath());
  EXPECT_EQ(call(second, "two").body, "two");
  const std::string socket = first.socketPath().string();
  stop(first);
  EXPECT_TRUE(processesWith(socket).empty());
  EXPECT_FALSE(fs::exists(slot)) << "its code links go with it";
}

INSTANTIATE_TEST_SUITE_P(Sandbox, StandbyTest, ::testing::Values(SandboxMode::none, SandboxMode::bwrap),
                         [](const auto& info) { return info.param == SandboxMode::none ? "none" : "bwrap"; });

TEST_F(ProcessBackendTest, BwrapSandboxHidesTheHostAndKeepsCodeReadOnly) {
  if (!bwrapUsable()) GTEST_SKIP() << "bwrap is not usable here";
  make(SandboxMode::bwrap);
  dir.writeFile("secret.txt", "host secret");
  const std::string secret = (dir / "secret.txt").string();
  auto code = function(
      "import os\n"
      "def fn(input, headers):\n"
      "    out = []\n"
      "    out.append('passwd' if os.path.exists('/etc/passwd') else 'no-passwd')\n"
      "    out.append('shadow' if os.path.exists('/etc/shadow') else 'no-shadow')\n"
      "    out.append('secret' if os.path.exists('" +
      secret +
      "') else 'no-secret')\n"
      "    try:\n"
      "        open('written.txt', 'w').write('x')\n"
      "        out.append('code-writable')\n"
      "    except OSError:\n"
      "        out.append('code-read-only')\n"
      "    open('/tmp/scratch', 'w').write('x')\n"
      "    out.append('tmp-writable')\n"
      "    out.append(','.join(sorted(os.listdir('/sys/class/net'))) if os.path.isdir('/sys/class/net') else 'lo')\n"
      "    return ' '.join(out)\n");
  auto& instance = start(spec(code));
  ASSERT_TRUE(waitForSocket(instance));
  auto result = call(instance, "");
  ASSERT_EQ(result.status, CallStatus::ok) << result.body;
  EXPECT_NE(result.body.find("passwd "), std::string::npos) << result.body;
  EXPECT_NE(result.body.find("no-shadow"), std::string::npos) << result.body;
  EXPECT_NE(result.body.find("no-secret"), std::string::npos) << result.body;
  EXPECT_NE(result.body.find("code-read-only"), std::string::npos) << result.body;
  EXPECT_NE(result.body.find("tmp-writable"), std::string::npos) << result.body;
  EXPECT_FALSE(fs::exists(code / "written.txt"));
}

TEST_F(ProcessBackendTest, StopKillsAHandlerThatIgnoresSigterm) {
  dir.writeFile("stubborn.sh", "#!/bin/sh\ntrap '' TERM\necho ready\nwhile true; do sleep 0.1; done\n",
                fs::perms(0755));
  options.binaryHandler = dir / "stubborn.sh";
  options.stopGrace = 300ms;
  auto& b = make(SandboxMode::none);
  auto& instance = start(spec(dir.path(), Runtime::binary, "stubborn.1"));
  ASSERT_TRUE(test::runUntil(io, [&] { return logs.has("ready"); }));
  const std::string socket = instance.socketPath().string();
  ASSERT_FALSE(processesWith(socket).empty());
  const auto started = std::chrono::steady_clock::now();
  test::run(io, b.stop(instance));
  instances.clear();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_TRUE(processesWith(socket).empty());
  EXPECT_TRUE(exits.empty());
}

}  // namespace
}  // namespace tinyfaas
