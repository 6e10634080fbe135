#include "backend/process/process_backend.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include <map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "backend/handler_environment.hpp"
#include "sandbox/code_links.hpp"
#include "sandbox/code_permissions.hpp"
#include "sandbox/seccomp_policy.hpp"
#include "util/async_sync.hpp"
#include "util/child_process.hpp"

namespace tinyfaas {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

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
  if (!options.stateDir.empty()) {
    std::error_code ec;
    fs::remove_all(options.stateDir / "standby", ec);  // what standbys of a crashed run left
  }
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
      watching_(executor_) {
  if (options_.warmPool == 0 || options_.stateDir.empty()) return;  // standbys keep their folders there
  auto start =
      [this](Runtime launcher) -> asio::awaitable<boost::system::result<std::unique_ptr<Standby>, std::string>> {
    co_return startStandby(launcher);
  };
  auto end = [this](std::unique_ptr<Standby> standby) -> asio::awaitable<void> {
    co_await stop(*static_cast<ProcessStandby&>(*standby).instance);
  };
  pool_ = std::make_unique<WarmPool>(executor_, options_.warmPool, std::move(start), std::move(end));
}

ProcessBackend::~ProcessBackend() = default;

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
                                                                                     UniqueFd listener,
                                                                                     UniqueFd control) const {
  Launch launch;
  launch.listenFd = launch.fds.add(std::move(listener));
  auto env = handlerEnvironment(spec);
  env["TINYFAAS_LISTEN_FD"] = std::to_string(launch.listenFd);
  if (control) {
    env["TINYFAAS_CONTROL_FD"] = std::to_string(launch.fds.add(std::move(control)));
  }
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

// Owns nothing: the manager (or the warm pool) owns the instance and always
// calls stop() (which waits for `ended`) before destroying it.
asio::awaitable<void> watchChild(ProcessInstance* instance) {
  int code = 0;
  std::string how = co_await instance->child->wait(code);
  instance->ended.set();
  if (!instance->stopping && instance->onExit) instance->onExit(std::move(how));
}

}  // namespace

boost::system::result<ProcessBackend::Spawned, std::string> ProcessBackend::spawn(const InstanceSpec& spec,
                                                                                  const fs::path& socket,
                                                                                  bool control) {
  std::error_code ec;
  fs::create_directories(spec.socketDir, ec);
  if (ec) return "cannot create " + spec.socketDir.string() + ": " + ec.message();
  fs::remove(socket, ec);
  auto listener = listenOn(socket);
  if (!listener) return listener.error();
  std::optional<ControlChannel> channel;
  if (control) {
    auto opened = openControlChannel(executor_);
    if (!opened) return opened.error();
    channel.emplace(std::move(*opened));
  }
  auto launch = launchFor(spec, std::move(*listener), channel ? std::move(channel->handlerEnd) : UniqueFd());
  if (!launch) return launch.error();

  Spawned spawned{std::make_unique<ProcessInstance>(executor_, spec.instanceId, socket),
                  channel ? std::move(channel->daemonEnd) : asio::local::stream_protocol::socket(executor_),
                  launch->listenFd};
  ProcessInstance& instance = *spawned.instance;
  std::vector<UniqueFd> cgroupProcs;
  if (options_.cgroups.enforced()) {
    sandbox::CgroupLimits limits;
    limits.memoryMb = spec.limits.memoryMb;
    limits.cpus = spec.limits.cpus;
    auto cgroup = options_.cgroups.create(spec.instanceId, limits);
    if (!cgroup) return cgroup.error();
    auto procs = (*cgroup)->openProcs();
    if (!procs) return procs.error();
    cgroupProcs = std::move(*procs);
    for (const auto& fd : cgroupProcs) launch->spawn.cgroupProcs.push_back(fd.get());
    instance.cgroup = std::move(*cgroup);
  }
  *instance.label = LogLabel{spec.function, spec.instanceId};
  LogSink& logs = logs_;
  auto child = ChildProcess::spawn(executor_, launch->spawn, [&logs, label = instance.label](std::string_view line) {
    logs.append(label->function, label->instance, line);
  });
  if (!child) return child.error();
  instance.child = std::move(*child);
  spdlog::debug("started {} (pid {})", spec.instanceId, instance.child->pid());
  watching_.spawn(executor_, watchChild(&instance));
  return spawned;
}

asio::awaitable<boost::system::result<std::unique_ptr<Instance>, std::string>> ProcessBackend::start(
    InstanceSpec spec, ExitCallback onExit) {
  if (pool_) {
    if (auto standby = standbyCanServe(spec) ? pool_->take(spec.runtime) : nullptr) {
      auto handed = co_await handOver(std::unique_ptr<ProcessStandby>(static_cast<ProcessStandby*>(standby.release())),
                                      spec, onExit);
      pool_->replenish();
      if (handed) co_return std::move(*handed);
      spdlog::warn("{}: a standby could not take it over ({}); starting one of its own", spec.instanceId,
                   handed.error());
    }
  }
  auto spawned = spawn(spec, handlerSocketPath(spec.socketDir), false);
  if (!spawned) co_return "cannot start " + spec.instanceId + ": " + spawned.error();
  spawned->instance->onExit = std::move(onExit);
  co_return std::unique_ptr<Instance>(std::move(spawned->instance));
}

boost::system::result<std::unique_ptr<Standby>, std::string> ProcessBackend::startStandby(Runtime launcher) {
  InstanceSpec spec;
  spec.instanceId = "standby-" + std::to_string(nextStandby_++);
  spec.runtime = launcher;
  spec.socketDir = options_.stateDir / "run" / spec.instanceId;
  spec.env = {"TINYFAAS_STANDBY=1"};
  // Bound read-only at its own path (bwrap's cwd); the function's code is
  // linked into it at the handover. Without a sandbox the handler goes to
  // the function's own folder instead.
  auto slot = makeStandbyFolder(options_.stateDir, spec.instanceId, options_.identity);
  if (!slot) return slot.error();
  spec.codeDir = *slot;
  auto spawned = spawn(spec, handlerSocketPath(spec.socketDir), true);
  if (!spawned) {
    std::error_code ec;
    fs::remove_all(*slot, ec);
    return spawned.error();
  }
  spawned->instance->slotDir = *slot;
  return std::make_unique<ProcessStandby>(launcher, std::move(spawned->instance), std::move(spawned->control),
                                          spawned->listenFd);
}

asio::awaitable<boost::system::result<std::unique_ptr<Instance>, std::string>> ProcessBackend::handOver(
    std::unique_ptr<ProcessStandby> standby, const InstanceSpec& spec, const ExitCallback& onExit) {
  ProcessInstance& instance = *standby->instance;
  auto fail = [&](std::string why) -> asio::awaitable<boost::system::result<std::unique_ptr<Instance>, std::string>> {
    co_await stop(instance);
    co_return why;
  };
  fs::path folder = spec.codeDir;
  if (!bwrap_.empty()) {
    folder = instance.slotDir / "code";
    if (auto linked = sandbox::linkTree(spec.codeDir, folder); !linked) co_return co_await fail(linked.error());
  }
  if (instance.cgroup) {
    sandbox::CgroupLimits limits;
    limits.memoryMb = spec.limits.memoryMb;
    limits.cpus = spec.limits.cpus;
    if (auto set = instance.cgroup->setLimits(limits); !set) co_return co_await fail(set.error());
  }
  InstanceSpec as = spec;
  as.socketDir = instance.socketPath().parent_path();
  as.codeDir = folder;
  auto env = handlerEnvironment(as);
  env["TINYFAAS_LISTEN_FD"] = std::to_string(standby->listenFd);
  const std::string program = spec.runtime == Runtime::go ? (folder / kGoHandlerFile).string() : "";
  auto message = assignmentMessage(folder, program, env);
  if (!message) co_return co_await fail("an environment variable holds a NUL byte");

  instance.rename(spec.instanceId);
  *instance.label = LogLabel{spec.function, spec.instanceId};
  instance.onExit = onExit;  // a copy: a failed handover falls back to a start of its own
  auto written =
      co_await asio::async_write(standby->control, asio::buffer(*message), asio::as_tuple(asio::use_awaitable));
  if (std::get<0>(written)) co_return co_await fail("cannot hand it over: " + std::get<0>(written).message());
  if (saysReady(spec.runtime)) instance.ready = co_await readyWaits_.await(standby->control, kReadyWait);
  spdlog::debug("{} took over a standby {} handler", spec.instanceId, toString(standby->launcher));
  co_return std::unique_ptr<Instance>(std::move(standby->instance));
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
  if (!instance.slotDir.empty()) fs::remove_all(instance.slotDir, ec);
}

std::map<Runtime, std::size_t> ProcessBackend::standbys() {
  return pool_ ? pool_->upPerLauncher() : std::map<Runtime, std::size_t>{};
}

void ProcessBackend::keepWarm(const std::set<Runtime>& runtimes) {
  if (pool_) pool_->keep(runtimes);
}

asio::awaitable<void> ProcessBackend::prepare() {
  if (pool_) co_await pool_->run();
}

void ProcessBackend::cancel() {
  if (pool_) pool_->stop();
  readyWaits_.cancelAll();
}

}  // namespace tinyfaas
