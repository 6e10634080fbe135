#include "util/child_process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>

#include "core/async.hpp"
#include "util/async_sync.hpp"
#include "util/pidfd.hpp"

namespace tinyfaas {

namespace asio = boost::asio;

namespace {

constexpr std::size_t kMaxLineBytes = 8192;
constexpr std::chrono::seconds kOutputDrainLimit{2};

std::string errnoText(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// Reads one pipe until EOF, handing complete lines (over-long ones split) on.
asio::awaitable<void> pumpLines(std::shared_ptr<asio::posix::stream_descriptor> pipe,
                                ChildProcess::LineHandler onLine) {
  asio::streambuf buffer(kMaxLineBytes);
  std::string line;
  bool split = false;  // the last piece handed on was a full buffer without its newline
  for (;;) {
    auto [ec, n] = co_await asio::async_read_until(*pipe, buffer, '\n', useTuple);
    const bool full = ec == asio::error::not_found;
    if (ec) n = buffer.size();  // full buffer without newline, or EOF: hand on what is there
    if (n == 0 && ec) break;
    line.assign(asio::buffers_begin(buffer.data()),
                asio::buffers_begin(buffer.data()) + static_cast<std::ptrdiff_t>(n));
    buffer.consume(n);
    // A line of exactly the buffer's size ends with a lone newline: that
    // newline terminates the piece already handed on, it is no empty line.
    const bool terminatorOnly = split && (line == "\n" || line == "\r\n");
    split = full;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (onLine && !terminatorOnly) onLine(line);
    if (ec && !full) break;
  }
}

}  // namespace

struct ChildProcess::State {
  explicit State(asio::any_io_executor executor) : pidfd(executor), stdoutDone(executor), stderrDone(executor) {}
  asio::posix::stream_descriptor pidfd;
  std::shared_ptr<asio::posix::stream_descriptor> stdoutPipe;
  std::shared_ptr<asio::posix::stream_descriptor> stderrPipe;
  // Set when each pump finishes, so wait() includes output.
  AsyncEvent stdoutDone;
  AsyncEvent stderrDone;
};

boost::system::result<std::unique_ptr<ChildProcess>, std::string> ChildProcess::spawn(asio::any_io_executor executor,
                                                                                      const SpawnOptions& options,
                                                                                      LineHandler onOutputLine) {
  if (options.argv.empty()) return std::string("no command given");
  std::string program = options.argv[0];
  if (program.find('/') == std::string::npos) {
    program = findExecutable(program);
    if (program.empty()) return "command not found: " + options.argv[0];
  }

  // Everything the child needs is prepared before fork(): after it, only
  // async-signal-safe calls are allowed in a multi-threaded process.
  std::vector<char*> argv;
  for (const auto& arg : options.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& kv : options.env) envp.push_back(const_cast<char*>(kv.c_str()));
  envp.push_back(nullptr);
  const std::string cwd = options.cwd.string();
  const std::vector<int> inherit = options.inheritFds;
  const std::vector<int> cgroupProcs = options.cgroupProcs;
  const auto credentials = options.credentials;
  // Inherited fds are moved above every number they will take and above
  // each other first, so placing one never overwrites another.
  int highest = 2 + static_cast<int>(inherit.size());
  for (int fd : inherit) highest = std::max(highest, fd);

  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return errnoText("pipe");
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return errnoText("pipe");
  }
  const pid_t parent = getpid();
  // Until the child has dropped the daemon's signal handlers: asio's handler
  // would report a SIGTERM meant for the child (a stop right after the
  // spawn) to the daemon through its pipe, and the daemon would shut down.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  const pid_t pid = fork();
  if (pid != 0) pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (pid < 0) {
    for (int fd : {out[0], out[1], err[0], err[1]}) close(fd);
    return errnoText("fork");
  }
  if (pid == 0) {
    for (int number = 1; number < NSIG; ++number) {
      struct sigaction current {};
      if (sigaction(number, nullptr, &current) == 0 && current.sa_handler != SIG_IGN) ::signal(number, SIG_DFL);
    }
    sigprocmask(SIG_SETMASK, &previous, nullptr);
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    // Into the cgroup before anything else runs, while still privileged.
    for (int procs : cgroupProcs) {
      if (write(procs, "0\n", 2) != 2) _exit(125);
    }
    int staged[64];
    if (inherit.size() > 64) _exit(125);
    for (std::size_t i = 0; i < inherit.size(); ++i) {
      staged[i] = fcntl(inherit[i], F_DUPFD, highest + 1);
      if (staged[i] < 0) _exit(125);
    }
    for (std::size_t i = 0; i < inherit.size(); ++i) {
      if (dup2(staged[i], 3 + static_cast<int>(i)) < 0) _exit(125);
    }
    // Asio opens its sockets without close-on-exec: without this, a handler
    // would inherit the endpoints' listening sockets and could accept their
    // connections.
    syscall(SYS_close_range, 3u + static_cast<unsigned>(inherit.size()), ~0u, 0u);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    if (credentials) {
      // Groups first: after setuid the process could no longer drop them.
      if (setgroups(0, nullptr) != 0 || setgid(credentials->gid) != 0 || setuid(credentials->uid) != 0) _exit(125);
      // From root, setuid() dropped every capability; from a daemon holding
      // ambient ones (the packaged unit's CAP_SETUID, CAP_SETGID, CAP_KILL)
      // a change between two non-zero uids keeps them, and bwrap refuses to
      // run with capabilities it was not installed setuid for.
      __user_cap_header_struct capHeader{_LINUX_CAPABILITY_VERSION_3, 0};
      __user_cap_data_struct noCaps[_LINUX_CAPABILITY_U32S_3] = {};
      if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 || syscall(SYS_capset, &capHeader, noCaps) != 0)
        _exit(125);
      umask(027);
      // A uid change clears the parent-death signal.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(125);
    }
    // Signal dispositions and masks survive exec; the daemon blocks some.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(program.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  // The child calls setpgid() too; doing it here as well means the group
  // exists before spawn() returns, so a signal sent to it at once is not lost
  // (EACCES once the child has exec'd: then it already did it itself).
  setpgid(pid, pid);
  close(out[1]);
  close(err[1]);

  auto state = std::make_shared<State>(executor);
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    const std::string error = errnoText("pidfd_open");
    kill(-pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    close(out[0]);
    close(err[0]);
    return error;
  }
  state->pidfd.assign(pidfd);

  auto pump = [&](int fd, std::shared_ptr<asio::posix::stream_descriptor> State::*pipe, AsyncEvent State::*done) {
    (*state).*pipe = std::make_shared<asio::posix::stream_descriptor>(executor, fd);
    asio::co_spawn(executor, pumpLines((*state).*pipe, onOutputLine),
                   [state, done](std::exception_ptr) { ((*state).*done).set(); });
  };
  pump(out[0], &State::stdoutPipe, &State::stdoutDone);
  pump(err[0], &State::stderrPipe, &State::stderrDone);
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, std::move(state)));
}

ChildProcess::ChildProcess(pid_t pid, std::shared_ptr<State> state) : pid_(pid), state_(std::move(state)) {}

ChildProcess::~ChildProcess() {
  if (!exited_) {
    // Nobody waited: do not leave the group running or a zombie behind.
    kill(-pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

asio::awaitable<std::string> ChildProcess::wait(int& exitCode) {
  auto state = state_;
  co_await awaitProcessEnd(state->pidfd);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exited_ = true;
  // Kill anything the child left in its group so pipes reach EOF.
  kill(-pid_, SIGKILL);
  // A process outside the group may still hold them: one in a session of
  // its own that never got its parent-death signal (bwrap's sandbox when
  // bwrap is killed before the sandbox set it). Its last lines are not
  // worth a wait without end: stop reading after a while.
  asio::steady_timer drainLimit(state->pidfd.get_executor(), kOutputDrainLimit);
  drainLimit.async_wait([state](boost::system::error_code ec) {
    if (ec) return;
    state->stdoutPipe->close(ec);
    state->stderrPipe->close(ec);
  });
  co_await state->stdoutDone.wait();
  co_await state->stderrDone.wait();
  drainLimit.cancel();
  if (WIFEXITED(status)) {
    exitCode = WEXITSTATUS(status);
    co_return "exited with status " + std::to_string(exitCode);
  }
  if (WIFSIGNALED(status)) {
    exitCode = 128 + WTERMSIG(status);
    co_return std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) +
        ")";
  }
  exitCode = -1;
  co_return "ended";
}

void ChildProcess::signal(int signalNumber) {
  if (!exited_) kill(-pid_, signalNumber);
}

asio::awaitable<boost::system::result<CommandResult, std::string>> runCommand(asio::any_io_executor executor,
                                                                              const SpawnOptions& options,
                                                                              std::chrono::seconds timeout,
                                                                              ChildProcess::LineHandler onOutputLine,
                                                                              AfterSpawn afterSpawn) {
  auto lines = std::make_shared<std::deque<std::string>>();
  auto child = ChildProcess::spawn(executor, options, [lines, onOutputLine](std::string_view line) {
    lines->emplace_back(line);
    if (lines->size() > 20) lines->pop_front();
    if (onOutputLine) onOutputLine(line);
  });
  if (!child) co_return child.error();
  auto process = std::move(*child);

  CommandResult result;
  asio::steady_timer deadline(executor, timeout);
  const pid_t pid = process->pid();
  bool* timedOut = &result.timedOut;
  deadline.async_wait([pid, timedOut](boost::system::error_code ec) {
    if (ec) return;
    *timedOut = true;
    kill(-pid, SIGKILL);
  });
  if (afterSpawn) {
    if (auto prepared = co_await afterSpawn(pid); !prepared) {
      kill(-pid, SIGKILL);
      int ignored = 0;
      co_await process->wait(ignored);
      deadline.cancel();
      // The child's own last words usually say why (bwrap's "bwrap: ...").
      if (lines->empty()) co_return prepared.error();
      co_return prepared.error() + " (" + lines->back() + ")";
    }
  }
  result.description = co_await process->wait(result.exitCode);
  deadline.cancel();
  result.lastLines.assign(lines->begin(), lines->end());
  co_return result;
}

std::string findExecutable(std::string_view name) {
  const char* path = std::getenv("PATH");
  std::string_view rest = path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (!rest.empty()) {
    const auto colon = rest.find(':');
    std::string_view dir = rest.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
    if (dir.empty()) continue;
    std::string candidate = std::string(dir) + "/" + std::string(name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

}  // namespace tinyfaas
