#include "backend/process/process_backend.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include <map>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "backend/handler_environment.hpp"
#include "sandbox/code_permissions.hpp"
#include "sandbox/seccomp_policy.hpp"
#include "util/async_sync.hpp"
#include "util/child_process.hpp"

namespace tinyfaas {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

class ProcessInstance final : public Instance {
 public:
  ProcessInstance(asio::any_io_executor executor, std::string id, fs::path socket)
      : ended(std::move(executor)), id_(std::move(id)), socket_(std::move(socket)) {}
  const std::string& id() const override { return id_; }
  fs::path socketPath() const override { return socket_; }
  pid_t hostPid() const override { return child ? child->pid() : 0; }

  AsyncEvent ended;  // set once the child has ended
  std::unique_ptr<ChildProcess> child;
  std::unique_ptr<sandbox::InstanceCgroup> cgroup;  // null without limits
  bool stopping = false;

 private:
  std::string id_;
  fs::path socket_;
};

// Resolves symlinks so the sandbox can mount the real location.
fs::path realPath(const fs::path& p) {
  std::error_code ec;
  auto resolved = fs::canonical(p, ec);
  return ec ? p : resolved;
}

// Copies the handler files the sandbox's uid could not read where they are
// into STATE/sandbox-runtimes, readable by its group, and points the
// options there.
boost::system::result<void, std::string> stageRuntimes(ProcessBackendOptions& options) {
  if (!options.identity.switchUser || options.stateDir.empty()) return {};
  const fs::path staging = options.stateDir / "sandbox-runtimes";
  std::error_code ec;
  fs::remove_all(staging, ec);
  bool staged = false;
  auto copy = [&](const fs::path& from, const fs::path& to) -> boost::system::result<void, std::string> {
    fs::create_directories(to.parent_path(), ec);
    if (!ec) fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
    if (ec) return "cannot copy " + from.string() + " for the sandbox: " + ec.message();
    staged = true;
    return {};
  };
  const fs::path node = options.runtimesDir / "nodejs" / "handler.js";
  const fs::path python = options.runtimesDir / "python3" / "handler.py";
  if (!sandbox::reachableByOthers(node) || !sandbox::reachableByOthers(python)) {
    for (const auto& file : {node, python}) {
      if (auto ok = copy(file, staging / "runtimes" / file.parent_path().filename() / file.filename()); !ok) return ok;
    }
    options.runtimesDir = staging / "runtimes";
  }
  if (!sandbox::reachableByOthers(options.binaryHandler)) {
    const fs::path to = staging / "binary" / options.binaryHandler.filename();
    if (auto ok = copy(options.binaryHandler, to); !ok) return ok;
    options.binaryHandler = to;
  }
  if (!staged) return {};
  return sandbox::shareWithSandbox(options.stateDir, staging, options.identity.gid);
}

}  // namespace

boost::system::result<std::unique_ptr<ProcessBackend>, std::string> ProcessBackend::create(
    asio::any_io_executor executor, ProcessBackendOptions options, LogSink& logs) {
  std::string bwrap;
  if (options.sandbox != SandboxMode::none) {
    bwrap = findExecutable("bwrap");
    if (bwrap.empty() && options.sandbox == SandboxMode::bwrap)
      return std::string("--sandbox bwrap was asked for but bwrap is not installed (apt-get install bubblewrap)");
  }
  for (std::string* tool : {&options.node, &options.python}) {
    if (tool->find('/') == std::string::npos) {
      std::string found = findExecutable(*tool);
      if (!found.empty()) *tool = found;
    }
  }
  if (auto staged = stageRuntimes(options); !staged) return staged.error();
  std::string seccomp;
  if (!bwrap.empty()) {
    auto program = sandbox::seccompProgram();
    if (!program) return "cannot build the seccomp filter: " + program.error().message;
    seccomp = std::move(*program);
  }
  return std::unique_ptr<ProcessBackend>(
      new ProcessBackend(std::move(executor), std::move(options), logs, bwrap, std::move(seccomp)));
}

ProcessBackend::ProcessBackend(asio::any_io_executor executor, ProcessBackendOptions options, LogSink& logs,
                               std::string bwrap, std::string seccomp)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      logs_(logs),
      bwrap_(std::move(bwrap)),
      seccomp_(std::move(seccomp)),
      watching_(executor_) {}

std::string ProcessBackend::describe() const {
  const std::string as = options_.identity.switchUser ? ", as " + options_.identity.user : "";
  return bwrap_.empty() ? "process (no sandbox: bubblewrap not found or disabled" + as + ")"
                        : "process (bubblewrap sandbox: " + bwrap_ + as + ")";
}

std::string ProcessBackend::limitsUnenforced() const {
  return options_.cgroups.enforced() ? std::string() : options_.cgroups.reason();
}

std::vector<std::string> ProcessBackend::handlerCommand(const InstanceSpec& spec) const {
  // The socket path is passed last although handlers get their socket as
  // fd 3: it makes every instance identifiable in `ps`.
  const std::string socket = handlerSocketPath(spec.socketDir).string();
  switch (spec.runtime) {
    case Runtime::nodejs: return {options_.node, (options_.runtimesDir / "nodejs" / "handler.js").string(), socket};
    case Runtime::python3: return {options_.python, (options_.runtimesDir / "python3" / "handler.py").string(), socket};
    case Runtime::binary: return {options_.binaryHandler.string(), socket};
    case Runtime::go: return {(spec.codeDir / kGoHandlerFile).string(), socket};
  }
  return {};
}

boost::system::result<ProcessBackend::Launch, std::string> ProcessBackend::launchFor(const InstanceSpec& spec,
                                                                                     UniqueFd listener) const {
  Launch launch;
  const int listenFd = launch.fds.add(std::move(listener));
  auto env = handlerEnvironment(spec);
  env["TINYFAAS_LISTEN_FD"] = std::to_string(listenFd);
  if (options_.identity.switchUser)
    launch.spawn.credentials = SpawnCredentials{options_.identity.uid, options_.identity.gid};

  if (bwrap_.empty()) {
    launch.spawn.argv = handlerCommand(spec);
    launch.spawn.env = environmentEntries(env);
    launch.spawn.cwd = spec.codeDir;
    launch.spawn.inheritFds = launch.fds.parentFds();
    return launch;
  }

  sandbox::SandboxLayout layout;
  layout.systemPaths = sandbox::systemPaths();
  layout.tmpfs = {{"/tmp", 0}};
  // Interpreters installed outside /usr (pyenv, nvm), the handler files and
  // the function's code: through descriptors, so they need not be
  // reachable by name for the sandbox's uid.
  std::vector<std::pair<fs::path, fs::path>> readOnly = {
      {realPath(options_.runtimesDir), realPath(options_.runtimesDir)},
      {realPath(options_.binaryHandler).parent_path(), realPath(options_.binaryHandler).parent_path()}};
  for (const std::string& tool : {options_.node, options_.python}) {
    fs::path real = realPath(tool);
    if (real.string().rfind("/usr/", 0) != 0)
      readOnly.emplace_back(real.parent_path().parent_path(), real.parent_path().parent_path());
  }
  for (const auto& [source, target] : readOnly) {
    auto fd = sandbox::openPath(source);
    if (!fd) continue;  // an optional tool that is not installed
    layout.fdBinds.push_back({launch.fds.add(std::move(*fd)), target, false});
  }
  auto code = sandbox::openPath(spec.codeDir);
  if (!code) return code.error();
  layout.fdBinds.push_back({launch.fds.add(std::move(*code)), spec.codeDir, false});
  auto seccomp = sandbox::memoryFile("tinyfaas-seccomp", seccomp_);
  if (!seccomp) return seccomp.error();
  layout.seccompFd = launch.fds.add(std::move(*seccomp));
  layout.env.assign(env.begin(), env.end());
  layout.chdir = spec.codeDir;
  launch.spawn.argv = sandbox::bwrapArguments(bwrap_, layout, handlerCommand(spec));
  launch.spawn.env = sandbox::bwrapEnvironment();
  launch.spawn.cwd = "/";
  launch.spawn.inheritFds = launch.fds.parentFds();
  return launch;
}

namespace {

// The instance's socket, bound and listening before the handler runs: the
// handler gets it as an inherited descriptor, so the sandbox's uid owns no
// file on the host and the socket is there before the first health probe.
boost::system::result<UniqueFd, std::string> listenOn(const fs::path& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return std::string("socket: ") + std::strerror(errno);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.string().size() >= sizeof address.sun_path) return "socket path " + path.string() + " is too long";
  std::memcpy(address.sun_path, path.c_str(), path.string().size() + 1);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(fd.get(), 1024) != 0)
    return "cannot listen on " + path.string() + ": " + std::strerror(errno);
  return fd;
}

// Owns nothing: the manager owns the instance and always calls stop()
// (which waits for `ended`) before destroying it.
asio::awaitable<void> watchChild(ProcessInstance* instance, ExitCallback onExit) {
  int code = 0;
  std::string how = co_await instance->child->wait(code);
  instance->ended.set();
  if (!instance->stopping && onExit) onExit(std::move(how));
}

}  // namespace

asio::awaitable<boost::system::result<std::unique_ptr<Instance>, std::string>> ProcessBackend::start(
    InstanceSpec spec, ExitCallback onExit) {
  std::error_code ec;
  fs::create_directories(spec.socketDir, ec);
  if (ec) co_return "cannot create " + spec.socketDir.string() + ": " + ec.message();
  const fs::path socket = handlerSocketPath(spec.socketDir);
  fs::remove(socket, ec);
  auto listener = listenOn(socket);
  if (!listener) co_return listener.error();
  auto launch = launchFor(spec, std::move(*listener));
  if (!launch) co_return "cannot start " + spec.instanceId + ": " + launch.error();

  auto instance = std::make_unique<ProcessInstance>(executor_, spec.instanceId, socket);
  std::vector<UniqueFd> cgroupProcs;
  if (options_.cgroups.enforced()) {
    sandbox::CgroupLimits limits;
    limits.memoryMb = spec.limits.memoryMb;
    limits.cpus = spec.limits.cpus;
    auto cgroup = options_.cgroups.create(spec.instanceId, limits);
    if (!cgroup) co_return "cannot start " + spec.instanceId + ": " + cgroup.error();
    auto procs = (*cgroup)->openProcs();
    if (!procs) co_return "cannot start " + spec.instanceId + ": " + procs.error();
    cgroupProcs = std::move(*procs);
    for (const auto& fd : cgroupProcs) launch->spawn.cgroupProcs.push_back(fd.get());
    instance->cgroup = std::move(*cgroup);
  }
  LogSink& logs = logs_;
  auto child = ChildProcess::spawn(executor_, launch->spawn,
                                   [&logs, function = spec.function, id = spec.instanceId](std::string_view line) {
                                     logs.append(function, id, line);
                                   });
  if (!child) co_return "cannot start " + spec.instanceId + ": " + child.error();
  instance->child = std::move(*child);
  spdlog::debug("started instance {} (pid {})", spec.instanceId, instance->child->pid());

  watching_.spawn(executor_, watchChild(instance.get(), std::move(onExit)));
  co_return std::unique_ptr<Instance>(std::move(instance));
}

asio::awaitable<void> ProcessBackend::stop(Instance& base) {
  auto& instance = static_cast<ProcessInstance&>(base);
  instance.stopping = true;
  if (!instance.ended.isSet()) {
    instance.child->signal(SIGTERM);
    asio::steady_timer grace(executor_, options_.stopGrace);
    ChildProcess* child = instance.child.get();
    AsyncEvent* ended = &instance.ended;
    grace.async_wait([child, ended](boost::system::error_code ec) {
      if (!ec && !ended->isSet()) child->signal(SIGKILL);
    });
    co_await instance.ended.wait();
    grace.cancel();
    // The grace handler may still be queued; let it run before `ended` dies.
    co_await asio::post(executor_, asio::use_awaitable);
  }
  // Whatever the handler started and left (a per-call process, a fork
  // that escaped the process group) goes with it.
  instance.cgroup.reset();
  std::error_code ec;
  fs::remove_all(instance.socketPath().parent_path(), ec);
}

}  // namespace tinyfaas
