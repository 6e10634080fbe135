#pragma once
// A child process with its stdout and stderr captured line by line, whose end
// is awaited on an asio loop (through a pidfd, so no global SIGCHLD handler).

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

namespace tinyfaas {

// The uid and groups a child switches to before exec (needs euid 0 or
// CAP_SETUID and CAP_SETGID).
struct SpawnCredentials {
  uid_t uid = 0;
  gid_t gid = 0;
};

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH when it has no '/'
  std::vector<std::string> env;   // the complete environment, "K=V"
  std::filesystem::path cwd;
  // Set: the child drops every supplementary group and switches to these,
  // with umask 027; it also gets no_new_privs.
  std::optional<SpawnCredentials> credentials{};
  // Descriptors the child keeps, as fds 3, 4, ... in this order; every
  // other descriptor above 2 is closed.
  std::vector<int> inheritFds{};
  // Open cgroup.procs files (cgroup v1 or v2): the child writes its pid to
  // each before it switches uid, so everything it starts stays inside.
  std::vector<int> cgroupProcs{};
};

// Lives on the thread running its executor.
class ChildProcess {
 public:
  using LineHandler = std::function<void(std::string_view line)>;

  // The child gets its own process group (so stop() reaches anything it
  // starts) and is killed by the kernel if this process dies first.
  static boost::system::result<std::unique_ptr<ChildProcess>, std::string> spawn(boost::asio::any_io_executor executor,
                                                                                 const SpawnOptions& options,
                                                                                 LineHandler onOutputLine);
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  // Completes when the child has ended and its output is drained (at most
  // 2 s after it ended: a process outside its group may hold the pipes);
  // returns a description such as "exited with status 0" and sets exitCode
  // (128+signal for a signal, as shells do).
  boost::asio::awaitable<std::string> wait(int& exitCode);
  // Signals the whole process group.
  void signal(int signalNumber);
  bool running() const { return !exited_; }

 private:
  struct State;
  ChildProcess(pid_t pid, std::shared_ptr<State> state);
  pid_t pid_;
  bool exited_ = false;
  std::shared_ptr<State> state_;
};

// Runs a command to completion with a deadline, collecting its output lines
// (also passed to onOutputLine). Used for dependency installs.
struct CommandResult {
  int exitCode = -1;
  bool timedOut = false;
  std::string description;
  std::vector<std::string> lastLines;  // the last few lines of output
};
// Runs once the child exists, before its end is awaited (within the same
// deadline); an error kills the child and becomes runCommand's error,
// with the last line the child wrote.
using AfterSpawn = std::function<boost::asio::awaitable<boost::system::result<void, std::string>>(pid_t pid)>;
boost::asio::awaitable<boost::system::result<CommandResult, std::string>> runCommand(
    boost::asio::any_io_executor executor, const SpawnOptions& options, std::chrono::seconds timeout,
    ChildProcess::LineHandler onOutputLine, AfterSpawn afterSpawn = nullptr);

// Finds an executable in PATH ("" when absent).
std::string findExecutable(std::string_view name);

}  // namespace tinyfaas
