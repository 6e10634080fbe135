#include "backend/process/process_backend.hpp"

#include <signal.h>

#include <map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "core/async.hpp"
#include "util/child_process.hpp"

namespace tinyfaas {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

class ProcessInstance final : public Instance {
 public:
  ProcessInstance(asio::any_io_executor executor, std::string id, fs::path socket)
      : exited(executor), id_(std::move(id)), socket_(std::move(socket)) {
    exited.expires_at(asio::steady_timer::time_point::max());
  }
  const std::string& id() const override { return id_; }
  fs::path socketPath() const override { return socket_; }

  asio::steady_timer exited;  // cancelled once the child has ended
  std::unique_ptr<ChildProcess> child;
  bool stopping = false;
  bool ended = false;

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
  return std::unique_ptr<ProcessBackend>(new ProcessBackend(std::move(executor), std::move(options), logs, bwrap));
}

ProcessBackend::ProcessBackend(asio::any_io_executor executor, ProcessBackendOptions options, LogSink& logs,
                               std::string bwrap)
    : executor_(std::move(executor)), options_(std::move(options)), logs_(logs), bwrap_(std::move(bwrap)) {}

std::string ProcessBackend::describe() const {
  return bwrap_.empty() ? "process (no sandbox: bubblewrap not found or disabled)"
                        : "process (bubblewrap sandbox: " + bwrap_ + ")";
}

std::vector<std::string> ProcessBackend::handlerCommand(const InstanceSpec& spec) const {
  // The socket path is passed last although handlers read TINYFAAS_SOCKET:
  // it makes every instance identifiable in `ps`.
  const std::string socket = (spec.socketDir / "handler.sock").string();
  switch (spec.runtime) {
    case Runtime::nodejs: return {options_.node, (options_.runtimesDir / "nodejs" / "handler.js").string(), socket};
    case Runtime::python3: return {options_.python, (options_.runtimesDir / "python3" / "handler.py").string(), socket};
    case Runtime::binary: return {options_.binaryHandler.string(), socket};
  }
  return {};
}

std::vector<std::string> ProcessBackend::sandboxArguments(const InstanceSpec& spec) const {
  std::vector<std::string> args = {bwrap_, "--unshare-all", "--die-with-parent", "--proc", "/proc", "--dev", "/dev",
                                   "--tmpfs", "/tmp", "--ro-bind", "/usr", "/usr"};
  // Debian's merged /usr makes these symlinks; older layouts have real dirs.
  for (const char* dir : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    std::error_code ec;
    if (fs::is_symlink(dir, ec)) {
      args.insert(args.end(), {"--symlink", fs::read_symlink(dir, ec).string(), dir});
    } else if (fs::exists(dir, ec)) {
      args.insert(args.end(), {"--ro-bind", dir, dir});
    }
  }
  // Only the parts of /etc that programs need to start: /etc as a whole holds
  // secrets the function has no business reading.
  for (const char* file : {"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
                           "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/hosts", "/etc/localtime",
                           "/etc/ssl", "/etc/ca-certificates", "/etc/mime.types"}) {
    args.insert(args.end(), {"--ro-bind-try", file, file});
  }
  // Interpreters installed outside /usr (pyenv, nvm) and the handler files.
  std::vector<fs::path> readOnly = {realPath(options_.runtimesDir), realPath(options_.binaryHandler).parent_path()};
  for (const std::string& tool : {options_.node, options_.python}) {
    fs::path real = realPath(tool);
    if (real.string().rfind("/usr/", 0) != 0) readOnly.push_back(real.parent_path().parent_path());
  }
  for (const auto& dir : readOnly) args.insert(args.end(), {"--ro-bind-try", dir.string(), dir.string()});
  args.insert(args.end(), {"--ro-bind", spec.codeDir.string(), spec.codeDir.string(), "--bind",
                           spec.socketDir.string(), spec.socketDir.string(), "--chdir", spec.codeDir.string(), "--"});
  return args;
}

std::vector<std::string> ProcessBackend::commandFor(const InstanceSpec& spec) const {
  std::vector<std::string> command = bwrap_.empty() ? std::vector<std::string>{} : sandboxArguments(spec);
  auto handler = handlerCommand(spec);
  command.insert(command.end(), handler.begin(), handler.end());
  return command;
}

asio::awaitable<boost::system::result<std::unique_ptr<Instance>, std::string>> ProcessBackend::start(
    InstanceSpec spec, ExitCallback onExit) {
  std::error_code ec;
  fs::create_directories(spec.socketDir, ec);
  if (ec) co_return "cannot create " + spec.socketDir.string() + ": " + ec.message();
  const fs::path socket = spec.socketDir / "handler.sock";
  fs::remove(socket, ec);

  // Defaults first, the function's own variables over them, and the
  // platform's last so a function cannot redirect its own socket.
  std::map<std::string, std::string> env = {
      {"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"HOME", "/tmp"}, {"LANG", "C.UTF-8"},
      {"PYTHONUNBUFFERED", "1"}, {"PYTHONDONTWRITEBYTECODE", "1"}, {"NODE_ENV", "production"}};
  for (const auto& kv : spec.env) {
    const auto eq = kv.find('=');
    env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  env["TINYFAAS_SOCKET"] = socket.string();
  env["TINYFAAS_FUNCTION"] = spec.function;
  env["TINYFAAS_INSTANCE"] = spec.instanceId;

  SpawnOptions options;
  options.argv = commandFor(spec);
  for (const auto& [k, v] : env) options.env.push_back(k + "=" + v);
  options.cwd = spec.codeDir;

  auto instance = std::make_unique<ProcessInstance>(executor_, spec.instanceId, socket);
  LogSink& logs = logs_;
  auto child = ChildProcess::spawn(executor_, options,
                                   [&logs, function = spec.function, id = spec.instanceId](std::string_view line) {
                                     logs.append(function, id, line);
                                   });
  if (!child) co_return "cannot start " + spec.instanceId + ": " + child.error();
  instance->child = std::move(*child);
  spdlog::debug("started instance {} (pid {})", spec.instanceId, instance->child->pid());

  // The watcher owns nothing: the manager owns the instance and always calls
  // stop() (which waits for this coroutine's signal) before destroying it.
  ProcessInstance* raw = instance.get();
  asio::co_spawn(
      executor_,
      [raw, onExit = std::move(onExit)]() -> asio::awaitable<void> {
        int code = 0;
        std::string how = co_await raw->child->wait(code);
        raw->ended = true;
        raw->exited.cancel();
        if (!raw->stopping && onExit) onExit(std::move(how));
      },
      asio::detached);
  co_return std::unique_ptr<Instance>(std::move(instance));
}

asio::awaitable<void> ProcessBackend::stop(Instance& base) {
  auto& instance = static_cast<ProcessInstance&>(base);
  instance.stopping = true;
  if (!instance.ended) {
    instance.child->signal(SIGTERM);
    asio::steady_timer grace(executor_, options_.stopGrace);
    ChildProcess* child = instance.child.get();
    bool* ended = &instance.ended;
    grace.async_wait([child, ended](boost::system::error_code ec) {
      if (!ec && !*ended) child->signal(SIGKILL);
    });
    co_await instance.exited.async_wait(useTuple);
    grace.cancel();
    // The grace handler may still be queued; let it run before `ended` dies.
    co_await asio::post(executor_, asio::use_awaitable);
  }
  std::error_code ec;
  fs::remove_all(instance.socketPath().parent_path(), ec);
}

}  // namespace tinyfaas
