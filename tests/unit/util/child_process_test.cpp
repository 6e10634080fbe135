#include "util/child_process.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "test_support.hpp"

namespace tinyfaas {
namespace {

namespace asio = boost::asio;
using test::run;
using namespace std::chrono_literals;

const std::vector<std::string> kEnv = {"PATH=/usr/local/bin:/usr/bin:/bin"};

// Processes that are gone (reaped) answer ESRCH; zombies would still exist.
bool processGone(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

// The child moves itself into its own process group after fork; signals to
// the group sent before that are lost (see SignalRightAfterSpawn...).
bool inOwnGroup(pid_t pid) {
  const auto end = std::chrono::steady_clock::now() + test::kDeadline;
  while (getpgid(pid) != pid) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

class ChildProcessTest : public ::testing::Test {
 protected:
  std::unique_ptr<ChildProcess> spawn(std::vector<std::string> argv, std::vector<std::string> env = kEnv,
                                      std::filesystem::path cwd = {}) {
    auto child = ChildProcess::spawn(io.get_executor(), SpawnOptions{std::move(argv), std::move(env), std::move(cwd)},
                                     [this](std::string_view line) { lines.emplace_back(line); });
    if (!child) ADD_FAILURE() << "spawn failed: " << child.error();
    return child ? std::move(*child) : nullptr;
  }

  std::string wait(ChildProcess& child, int& code) {
    return run(io, [&]() -> asio::awaitable<std::string> { co_return co_await child.wait(code); }());
  }

  asio::io_context io;
  std::vector<std::string> lines;
  test::TempDir dir;
};

TEST_F(ChildProcessTest, CapturesStdoutAndStderrLines) {
  auto child = spawn({"sh", "-c", "echo one; echo two >&2; echo three"});
  ASSERT_TRUE(child);
  int code = -1;
  EXPECT_EQ(wait(*child, code), "exited with status 0");
  EXPECT_EQ(code, 0);
  EXPECT_FALSE(child->running());
  // The two pipes are read independently; only each one's order is fixed.
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_LT(std::find(lines.begin(), lines.end(), "one"), std::find(lines.begin(), lines.end(), "three"));
  EXPECT_NE(std::find(lines.begin(), lines.end(), "two"), lines.end());
}

TEST_F(ChildProcessTest, PassesLastLineWithoutNewline) {
  auto child = spawn({"sh", "-c", "printf 'first\\nno newline'"});
  ASSERT_TRUE(child);
  int code = -1;
  wait(*child, code);
  EXPECT_EQ(lines, (std::vector<std::string>{"first", "no newline"}));
}

TEST_F(ChildProcessTest, KeepsEmptyLinesAndStripsCarriageReturns) {
  auto child = spawn({"sh", "-c", "printf 'a\\n\\nb\\r\\n'"});
  ASSERT_TRUE(child);
  int code = -1;
  wait(*child, code);
  EXPECT_EQ(lines, (std::vector<std::string>{"a", "", "b"}));
}

TEST_F(ChildProcessTest, SplitsOverlongLinesAt8KiB) {
  auto child = spawn({"sh", "-c", "head -c 20000 /dev/zero | tr '\\0' a; echo; echo after"});
  ASSERT_TRUE(child);
  int code = -1;
  wait(*child, code);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0].size(), 8192u);
  EXPECT_EQ(lines[1].size(), 8192u);
  EXPECT_EQ(lines[2].size(), 20000u - 2 * 8192);
  EXPECT_TRUE(lines[0] == std::string(8192, 'a') && lines[2] == std::string(20000 - 2 * 8192, 'a'));
  EXPECT_EQ(lines[3], "after");
}

TEST_F(ChildProcessTest, LineOfExactly8KiBIsOneLine) {
  auto child = spawn({"sh", "-c", "head -c 8192 /dev/zero | tr '\\0' a; echo; echo after"});
  ASSERT_TRUE(child);
  int code = -1;
  wait(*child, code);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].size(), 8192u);
  EXPECT_EQ(lines[1], "after");
}

TEST_F(ChildProcessTest, ChildInheritsNoOtherDescriptors) {
  // A socket opened the way Asio opens them: without close-on-exec, at a
  // number that ls's own descriptor cannot take.
  const int socket = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(socket, 0);
  const int leaky = ::fcntl(socket, F_DUPFD, 100);
  ::close(socket);
  ASSERT_GE(leaky, 100);
  auto child = spawn({"sh", "-c", "ls /proc/self/fd"});
  ASSERT_TRUE(child);
  int code = -1;
  wait(*child, code);
  ::close(leaky);
  // 0, 1, 2 and the descriptor ls reads /proc/self/fd through.
  EXPECT_LE(lines.size(), 4u);
  EXPECT_EQ(std::find(lines.begin(), lines.end(), std::to_string(leaky)), lines.end())
      << "the socket (" << leaky << ") leaked: " << testing::PrintToString(lines);
}

TEST_F(ChildProcessTest, AllOutputIsHandledBeforeWaitCompletes) {
  auto child = spawn({"sh", "-c", "seq 1 5000"});
  ASSERT_TRUE(child);
  int code = -1;
  wait(*child, code);
  ASSERT_EQ(lines.size(), 5000u);
  EXPECT_EQ(lines.back(), "5000");
}

TEST_F(ChildProcessTest, UsesOnlyTheGivenEnvironmentAndDirectory) {
  auto child = spawn({"sh", "-c", "echo \"$GREETING\"; echo \"${HOME-unset}\"; pwd -P"},
                     {"GREETING=hello world", "PATH=/usr/bin:/bin"}, dir.path());
  ASSERT_TRUE(child);
  int code = -1;
  EXPECT_EQ(wait(*child, code), "exited with status 0");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "hello world");
  EXPECT_EQ(lines[1], "unset");  // nothing inherited from the test's environment
  EXPECT_EQ(lines[2], std::filesystem::canonical(dir.path()).string());
}

TEST_F(ChildProcessTest, LooksUpCommandsWithoutSlashInPath) {
  auto child = spawn({"echo", "hello", "world"}, {});
  ASSERT_TRUE(child);
  int code = -1;
  EXPECT_EQ(wait(*child, code), "exited with status 0");
  EXPECT_EQ(lines, (std::vector<std::string>{"hello world"}));
}

TEST_F(ChildProcessTest, ReportsExitStatus) {
  auto child = spawn({"sh", "-c", "exit 3"});
  ASSERT_TRUE(child);
  int code = -1;
  EXPECT_EQ(wait(*child, code), "exited with status 3");
  EXPECT_EQ(code, 3);
}

TEST_F(ChildProcessTest, ReportsDeathBySignalLikeAShell) {
  auto child = spawn({"sh", "-c", "kill -TERM $$"});
  ASSERT_TRUE(child);
  int code = -1;
  const std::string how = wait(*child, code);
  EXPECT_EQ(how.rfind("killed by signal 15 (", 0), 0u) << how;
  EXPECT_EQ(code, 128 + 15);
}

TEST_F(ChildProcessTest, SignalReachesTheChild) {
  auto child = spawn({"sleep", "30"});
  ASSERT_TRUE(child);
  EXPECT_TRUE(child->running());
  ASSERT_TRUE(inOwnGroup(child->pid()));
  child->signal(SIGKILL);
  int code = -1;
  EXPECT_EQ(wait(*child, code), "killed by signal 9 (Killed)");
  EXPECT_EQ(code, 137);
}

TEST_F(ChildProcessTest, SignalReachesTheWholeGroup) {
  // The background sleep keeps the pipes open: wait() only completes if the
  // signal (and the kill after reaping) reached it too.
  auto child = spawn({"sh", "-c", "sleep 30 & echo started; wait"});
  ASSERT_TRUE(child);
  ASSERT_TRUE(test::runUntil(io, [&] { return !lines.empty(); }));
  child->signal(SIGTERM);
  int code = -1;
  const std::string how = wait(*child, code);
  EXPECT_EQ(how.rfind("killed by signal 15", 0), 0u) << how;
}

TEST_F(ChildProcessTest, AProcessOutsideTheGroupHoldingTheOutputDoesNotHoldUpWait) {
  // Like bwrap's sandbox when bwrap dies before it set its parent-death
  // signal: a new session keeps the pipe, out of the group's kill.
  auto child = spawn({"sh", "-c", "setsid sleep 30 & echo $!; echo started"});
  ASSERT_TRUE(child);
  int code = -1;
  EXPECT_EQ(wait(*child, code), "exited with status 0");
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines[1], "started");
  kill(static_cast<pid_t>(std::stoi(lines[0])), SIGKILL);
}

TEST_F(ChildProcessTest, ChildStartsWithNoSignalsBlocked) {
  // A daemon may block signals in its threads; handlers must still be
  // stoppable with SIGTERM.
  sigset_t block, previous;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &block, &previous), 0);
  auto child = spawn({"sleep", "30"});
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  ASSERT_TRUE(child);
  ASSERT_TRUE(inOwnGroup(child->pid()));
  child->signal(SIGTERM);
  int code = -1;
  const std::string how = wait(*child, code);
  EXPECT_EQ(how.rfind("killed by signal 15", 0), 0u) << how;
}

TEST_F(ChildProcessTest, SignalRightAfterSpawnIsNotLost) {
  auto child = spawn({"sleep", "3"});
  ASSERT_TRUE(child);
  child->signal(SIGKILL);
  int code = -1;
  EXPECT_EQ(wait(*child, code), "killed by signal 9 (Killed)");
}

TEST_F(ChildProcessTest, ASigtermRightAfterSpawnNeverReachesTheParentsHandler) {
  // The daemon's SIGTERM handler (asio's, which writes to a pipe it shares
  // with a child that has not exec'd yet) must not hear a child's SIGTERM:
  // it would shut the daemon down.
  asio::signal_set terms(io, SIGTERM);
  bool heard = false;
  terms.async_wait([&](boost::system::error_code ec, int) { heard = !ec; });
  for (int i = 0; i < 100 && !heard; ++i) {
    auto child = spawn({"sleep", "3"});
    ASSERT_TRUE(child);
    child->signal(SIGTERM);
    int code = -1;
    EXPECT_EQ(wait(*child, code), "killed by signal 15 (Terminated)");
  }
  test::runFor(io, 20ms);
  EXPECT_FALSE(heard) << "a SIGTERM for a child was taken as the parent's";
}

TEST_F(ChildProcessTest, DestroyRightAfterSpawnDoesNotBlock) {
  auto child = spawn({"sleep", "3"});
  ASSERT_TRUE(child);
  const pid_t pid = child->pid();
  const auto started = std::chrono::steady_clock::now();
  child.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  EXPECT_TRUE(processGone(pid));
  test::runFor(io, 50ms);
}

TEST_F(ChildProcessTest, ChildIsKilledAndReapedWhenDestroyedWithoutWait) {
  auto child = spawn({"sleep", "30"});
  ASSERT_TRUE(child);
  const pid_t pid = child->pid();
  ASSERT_TRUE(inOwnGroup(pid));
  child.reset();
  EXPECT_TRUE(processGone(pid));
  // The pumps still hold the pipes; let them see EOF and end.
  test::runFor(io, 50ms);
}

TEST_F(ChildProcessTest, EmptyArgvIsAnError) {
  auto child = ChildProcess::spawn(io.get_executor(), SpawnOptions{}, nullptr);
  ASSERT_FALSE(child);
  EXPECT_EQ(child.error(), "no command given");
}

TEST_F(ChildProcessTest, UnknownCommandIsAnError) {
  auto child = ChildProcess::spawn(io.get_executor(), SpawnOptions{{"tinyfaas-no-such-command"}, kEnv, {}}, nullptr);
  ASSERT_FALSE(child);
  EXPECT_EQ(child.error(), "command not found: tinyfaas-no-such-command");
}

TEST_F(ChildProcessTest, MissingPathGivesExitStatus127) {
  auto child = spawn({(dir.path() / "missing").string()});
  ASSERT_TRUE(child);
  int code = -1;
  EXPECT_EQ(wait(*child, code), "exited with status 127");
}

TEST_F(ChildProcessTest, MissingWorkingDirectoryGivesExitStatus126) {
  auto child = spawn({"true"}, kEnv, dir.path() / "missing");
  ASSERT_TRUE(child);
  int code = -1;
  EXPECT_EQ(wait(*child, code), "exited with status 126");
}

TEST(FindExecutable, FindsCommandsInPath) {
  const std::string sh = findExecutable("sh");
  ASSERT_FALSE(sh.empty());
  EXPECT_EQ(sh.front(), '/');
  EXPECT_EQ(access(sh.c_str(), X_OK), 0);
  EXPECT_EQ(findExecutable("tinyfaas-no-such-command"), "");
}

class RunCommandTest : public ChildProcessTest {
 protected:
  boost::system::result<CommandResult, std::string> runCommand(std::vector<std::string> argv,
                                                               std::chrono::seconds timeout) {
    return run(io, tinyfaas::runCommand(io.get_executor(), SpawnOptions{std::move(argv), kEnv, {}}, timeout,
                                        [this](std::string_view line) { lines.emplace_back(line); }));
  }
};

TEST_F(RunCommandTest, CollectsExitStatusAndTheLastLines) {
  auto result = runCommand({"sh", "-c", "seq 1 30; exit 2"}, 10s);
  ASSERT_TRUE(result) << result.error();
  EXPECT_EQ(result->exitCode, 2);
  EXPECT_FALSE(result->timedOut);
  EXPECT_EQ(result->description, "exited with status 2");
  ASSERT_EQ(result->lastLines.size(), 20u);
  EXPECT_EQ(result->lastLines.front(), "11");
  EXPECT_EQ(result->lastLines.back(), "30");
  EXPECT_EQ(lines.size(), 30u);  // every line also went to the handler
}

TEST_F(RunCommandTest, KillsTheCommandAtTheDeadline) {
  const auto started = std::chrono::steady_clock::now();
  // A grandchild holding the pipes must not keep the call waiting either.
  auto result = runCommand({"sh", "-c", "sleep 60 & sleep 60"}, 1s);
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(result) << result.error();
  EXPECT_TRUE(result->timedOut);
  EXPECT_EQ(result->exitCode, 128 + 9);
  EXPECT_EQ(result->description, "killed by signal 9 (Killed)");
  EXPECT_LT(took, 10s);
}

// What the network install reports when bwrap cannot set its sandbox up:
// the reason is in bwrap's own last line.
TEST_F(RunCommandTest, AFailedPreparationCarriesTheChildsLastLine) {
  AfterSpawn refuse = [this](pid_t) -> asio::awaitable<boost::system::result<void, std::string>> {
    asio::steady_timer tick(io);
    for (const auto end = std::chrono::steady_clock::now() + test::kDeadline;
         lines.empty() && std::chrono::steady_clock::now() < end;) {
      tick.expires_after(5ms);
      co_await tick.async_wait(asio::use_awaitable);
    }
    co_return std::string("sandbox did not start");
  };
  auto result =
      run(io, tinyfaas::runCommand(
                  io.get_executor(), SpawnOptions{{"sh", "-c", "echo 'bwrap: no access' >&2; sleep 60"}, kEnv, {}}, 10s,
                  [this](std::string_view line) { lines.emplace_back(line); }, refuse));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), "sandbox did not start (bwrap: no access)");
}

TEST_F(RunCommandTest, CommandNotFoundIsAnError) {
  auto result = runCommand({"tinyfaas-no-such-command", "x"}, 10s);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), "command not found: tinyfaas-no-such-command");
}

}  // namespace
}  // namespace tinyfaas
