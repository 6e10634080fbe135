#include "backend/docker/docker_backend.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "backend/docker/engine_calls.hpp"
#include "backend/handler_environment.hpp"
#include "core/async.hpp"
#include "sandbox/code_links.hpp"
#include "util/durable_file.hpp"
#include "util/private_dir.hpp"

namespace tinyfaas {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace fs = std::filesystem;
using json = nlohmann::json;
using docker::Container;
using docker::RequestOptions;

namespace {

constexpr std::chrono::seconds kExitWatchTimeout{5};

// Debian 12's engine; older ones do not serve the API version we pin.
bool apiAtLeast(const std::string& version, int major, int minor) {
  int gotMajor = 0, gotMinor = 0;
  if (std::sscanf(version.c_str(), "%d.%d", &gotMajor, &gotMinor) != 2) return false;
  return gotMajor > major || (gotMajor == major && gotMinor >= minor);
}

// Who containers run as: the sandbox user where the daemon can switch uids;
// else, as root, the image's own user; otherwise the daemon can neither
// chown socket directories nor read what that user writes, so the daemon's
// user.
std::pair<unsigned, unsigned> containerUser(const sandbox::SandboxIdentity& identity) {
  if (identity.switchUser) return {identity.uid, identity.gid};
  if (geteuid() == 0) return {docker::kFunctionUid, docker::kFunctionGid};
  return {getuid(), getgid()};
}

}  // namespace

class DockerBackend::ContainerInstance final : public Instance {
 public:
  ContainerInstance(std::shared_ptr<Container> container, fs::path socket)
      : container(std::move(container)), socket_(std::move(socket)) {}
  const std::string& id() const override { return container->instanceId; }
  fs::path socketPath() const override { return socket_; }
  pid_t hostPid() const override { return container->ended.isSet() ? 0 : container->pid; }
  bool saidReady() const override { return ready; }
  std::shared_ptr<Container> container;
  // A standby's folder, bound read-only; the function's code is linked
  // into it at the handover. Removed with the instance.
  fs::path slotDir;
  bool ready = false;  // its handler said "ready" on the control socket

 private:
  fs::path socket_;
};

class DockerBackend::ContainerStandby final : public Standby {
 public:
  ContainerStandby(Runtime launcher, std::unique_ptr<ContainerInstance> instance,
                   asio::local::stream_protocol::socket control)
      : Standby(launcher, std::move(control)), instance(std::move(instance)) {}
  bool ended() const override { return instance->container->ended.isSet() || instance->container->notified; }
  void onEnd(ExitCallback callback) override { instance->container->onExit = std::move(callback); }
  std::unique_ptr<ContainerInstance> instance;
};

// ---------------------------------------------------------------------------

boost::system::result<std::string, std::string> loadNodeId(const fs::path& stateDir) {
  const fs::path file = stateDir / "node-id";
  {
    std::ifstream in(file);
    std::string id;
    if (in && std::getline(in, id) && !id.empty() && id.size() <= 32 &&
        id.find_first_not_of("0123456789abcdef") == std::string::npos)
      return {boost::system::in_place_value, id};
  }
  if (auto made = makePrivateDirectory(stateDir); !made) return {boost::system::in_place_error, made.error()};
  std::random_device random;
  std::string id;
  static constexpr char digits[] = "0123456789abcdef";
  for (int i = 0; i < 12; ++i) id += digits[random() % 16];
  // Durably: a lost id after a power cut would orphan this node's containers.
  if (auto written = writeFileDurably(file, id + "\n"); !written)
    return {boost::system::in_place_error, written.error()};
  return {boost::system::in_place_value, id};
}

asio::awaitable<boost::system::result<void, std::string>> probeDockerEngine(asio::any_io_executor executor,
                                                                            fs::path socket,
                                                                            std::chrono::milliseconds timeout) {
  docker::EngineClient client(std::move(executor), std::move(socket));
  RequestOptions options;
  options.timeout = timeout;
  options.maxBodyBytes = 1024;
  auto ping = co_await client.request(http::verb::get, "/_ping", {}, options);
  if (!ping) co_return ping.error();
  // 200 "OK": the engine is up. Anything else (a proxy, a half-started engine) is not an engine we can use.
  if (!ping->is({200})) co_return "the Docker engine answered /_ping with status " + std::to_string(ping->status);
  co_return boost::system::result<void, std::string>{};
}

boost::system::result<std::unique_ptr<DockerBackend>, std::string> DockerBackend::create(asio::any_io_executor executor,
                                                                                         DockerBackendOptions options,
                                                                                         LogSink& logs) {
  if (options.stateDir.empty()) return std::string("the docker backend needs a state directory");
  auto nodeId = loadNodeId(options.stateDir);
  if (!nodeId) return nodeId.error();
  return std::unique_ptr<DockerBackend>(new DockerBackend(std::move(executor), std::move(options), logs, *nodeId));
}

DockerBackend::DockerBackend(asio::any_io_executor executor, DockerBackendOptions options, LogSink& logs,
                             std::string nodeId)
    : executor_(executor),
      options_(std::move(options)),
      logs_(logs),
      nodeId_(std::move(nodeId)),
      client_(executor, options_.socket),
      uid_(containerUser(options_.identity).first),
      gid_(containerUser(options_.identity).second),
      containerSettings_{nodeId_,
                         std::to_string(uid_) + ":" + std::to_string(gid_),
                         options_.pidsLimit,
                         options_.tmpfsBytes,
                         options_.shmBytes,
                         options_.stopGrace},
      images_(executor, client_,
              {options_.images, options_.imageSource, options_.stateDir, options_.imageBuildTimeout, nodeId_,
               containerSettings_.user, options_.pidsLimit}),
      networks_(client_, nodeId_),
      watcher_(executor, client_, logs_) {
  if (options_.warmPool == 0) return;
  auto start = [this](Runtime launcher) { return startStandby(launcher); };
  auto end = [this](std::unique_ptr<Standby> standby) -> asio::awaitable<void> {
    co_await stop(*static_cast<ContainerStandby&>(*standby).instance);
  };
  pool_ = std::make_unique<WarmPool>(executor_, options_.warmPool, std::move(start), std::move(end));
}

DockerBackend::~DockerBackend() = default;

std::string DockerBackend::describe() const {
  return "docker (engine " + (engineVersion_.empty() ? std::string("?") : engineVersion_) + " at " +
         options_.socket.string() + ", node id " + nodeId_ + ", runtime images " +
         (options_.imageSource == RuntimeImageSource::local ? "built from this host's runtimes"
                                                            : "from the official registry images") +
         ")";
}

std::string DockerBackend::containerName(const InstanceSpec& spec) const {
  return "tinyfaas-" + nodeId_ + "-" + spec.instanceId;
}

std::string DockerBackend::networkName(const std::string& function) const { return networks_.name(function); }

asio::awaitable<boost::system::result<void, std::string>> DockerBackend::connect(std::chrono::milliseconds timeout) {
  auto reachable = co_await probeDockerEngine(executor_, options_.socket, timeout);
  if (!reachable) co_return reachable.error();
  RequestOptions options;
  options.timeout = timeout;
  auto version = co_await client_.request(http::verb::get, "/version", {}, options);
  if (!version) co_return version.error();
  // 200 the engine's versions. 400 is how an engine older than our pinned API answers.
  if (!version->is({200})) co_return "the Docker engine refused GET /version: " + version->message();
  auto parsed = json::parse(version->body, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) co_return std::string("the Docker engine's /version is not JSON");
  engineVersion_ = parsed.value("Version", std::string("?"));
  const std::string api = parsed.value("ApiVersion", std::string());
  if (!apiAtLeast(api, 1, 41))
    co_return "Docker engine " + engineVersion_ + " speaks API " + api +
        "; tinyfaas needs API 1.41 (Docker 20.10) or newer";
  co_return boost::system::result<void, std::string>{};
}

// ---------------------------------------------------------------------------
// leftovers

asio::awaitable<boost::system::result<std::size_t, std::string>> DockerBackend::removeLeftovers() {
  const std::string filter = docker::encodeQueryValue(docker::labelFilter("tinyfaas.node=" + nodeId_));
  RequestOptions listOptions;
  listOptions.maxBodyBytes = docker::kMaxListBytes;
  std::size_t removed = 0;

  auto containers =
      co_await client_.request(http::verb::get, "/containers/json?all=1&filters=" + filter, {}, listOptions);
  if (!containers) co_return containers.error();
  // 200 the list; anything else means we cannot know what is left.
  if (!containers->is({200})) co_return "cannot list leftover containers: " + containers->message();
  auto list = json::parse(containers->body, nullptr, false);
  if (list.is_array()) {
    for (const auto& item : list) {
      if (!item.is_object() || !item.contains("Id") || !item["Id"].is_string()) continue;
      co_await docker::removeContainer(client_, item["Id"].get<std::string>());
      ++removed;
    }
  }

  auto networks = co_await client_.request(http::verb::get, "/networks?filters=" + filter, {}, listOptions);
  if (!networks) co_return networks.error();
  if (!networks->is({200})) co_return "cannot list leftover networks: " + networks->message();
  list = json::parse(networks->body, nullptr, false);
  if (list.is_array()) {
    for (const auto& item : list) {
      if (!item.is_object() || !item.contains("Id") || !item["Id"].is_string()) continue;
      auto gone = co_await client_.request(http::verb::delete_, "/networks/" + item["Id"].get<std::string>());
      // 204 removed; 404 already gone.
      if (!gone) co_return gone.error();
      if (!gone->is({204, 404})) {
        spdlog::warn("cannot remove leftover network {}: {}", item.value("Name", std::string("?")), gone->message());
        continue;
      }
      ++removed;
    }
  }
  // Image tars of a build that was interrupted; standbys' folders.
  std::error_code ec;
  fs::remove_all(options_.stateDir / "images", ec);
  fs::remove_all(options_.stateDir / "standby", ec);
  co_return removed;
}

// ---------------------------------------------------------------------------
// runtime images

asio::awaitable<boost::system::result<void, std::string>> DockerBackend::prepareImages() {
  co_return co_await images_.prepareAll();
}

asio::awaitable<void> DockerBackend::prepare() {
  auto ready = co_await prepareImages();
  if (!ready && !images_.cancelled()) spdlog::error("runtime images: {}; deploys will try again", ready.error());
  if (pool_) co_await pool_->run();
}

void DockerBackend::cancel() {
  images_.cancel();
  if (pool_) pool_->stop();
  readyWaits_.cancelAll();
}

void DockerBackend::keepWarm(const std::set<Runtime>& runtimes) {
  if (pool_) pool_->keep(runtimes);
}

std::map<Runtime, std::size_t> DockerBackend::standbys() {
  return pool_ ? pool_->upPerLauncher() : std::map<Runtime, std::size_t>{};
}

asio::awaitable<void> DockerBackend::pruneOldImages(Runtime runtime, const std::string& keep) {
  co_await images_.pruneOld(runtime, keep);
}

// ---------------------------------------------------------------------------
// instances

std::string DockerBackend::containerConfig(const InstanceSpec& spec, const std::string& image,
                                           const std::vector<std::string>& command) const {
  docker::ContainerImage chosen{image, command, images_.known(spec.runtime).extraMounts};
  return docker::instanceContainerConfig(containerSettings_, spec, chosen,
                                         spec.limits.egress ? networks_.name(spec.function) : "none");
}

void DockerBackend::makeReadable(const fs::path& codeDir) {
  // The sandbox user reads code through its group (the manager gives code
  // to it). The image's user has no such group: its files are opened to all.
  if (options_.identity.switchUser || uid_ == geteuid() || readableCodeDirs_.count(codeDir.string())) return;
  if (readableCodeDirs_.size() > 1024) readableCodeDirs_.clear();
  std::error_code ec;
  auto fix = [](const fs::path& p) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0 || S_ISLNK(st.st_mode)) return;
    const mode_t want = S_ISDIR(st.st_mode) ? (S_IROTH | S_IXOTH) : S_IROTH;
    if ((st.st_mode & want) != want) ::chmod(p.c_str(), (st.st_mode & 07777) | want);
  };
  fix(codeDir);
  for (fs::recursive_directory_iterator it(codeDir, ec), end; !ec && it != end; it.increment(ec)) fix(it->path());
  readableCodeDirs_.insert(codeDir.string());
}

asio::awaitable<boost::system::result<std::unique_ptr<DockerBackend::ContainerInstance>, std::string>>
DockerBackend::runContainer(const InstanceSpec& spec, ExitCallback onExit) {
  const std::string runtime(toString(spec.runtime));
  std::error_code ec;
  fs::create_directories(spec.socketDir, ec);
  if (ec) co_return "cannot create " + spec.socketDir.string() + ": " + ec.message();
  fs::remove(handlerSocketPath(spec.socketDir), ec);
  // Writable for the function's user until its handler has bound the socket
  // (then ContainerWatcher locks it), and for nobody else.
  if (::chown(spec.socketDir.c_str(), uid_, gid_) != 0 && geteuid() == 0)
    co_return "cannot hand " + spec.socketDir.string() + " to the function's user: " + std::strerror(errno);
  ::chmod(spec.socketDir.c_str(), 0700);
  makeReadable(spec.codeDir);

  if (spec.limits.egress) {
    if (auto network = co_await networks_.acquire(spec.function); !network) co_return network.error();
  }
  auto giveUp = [&](std::string why) -> asio::awaitable<std::string> {
    if (spec.limits.egress) co_await networks_.release(spec.function);
    co_return why;
  };

  const std::string name = containerName(spec);
  std::string id;
  for (int attempt = 0;; ++attempt) {
    auto image = co_await images_.ensure(spec.runtime);
    if (!image) co_return co_await giveUp("the " + runtime + " runtime image is not available: " + image.error());
    // A go function's handler is its own static binary, in its code folder.
    const std::vector<std::string> command = spec.runtime == Runtime::go
                                                 ? std::vector<std::string>{(spec.codeDir / kGoHandlerFile).string()}
                                                 : (*image)->command;
    const std::string config = containerConfig(spec, (*image)->reference, command);
    RequestOptions options;
    auto created = co_await client_.request(http::verb::post, "/containers/create?name=" + name, config, options);
    if (!created) co_return co_await giveUp(created.error());
    // 201 created.
    if (created->is({201})) {
      id = json::parse(created->body, nullptr, false).value("Id", std::string());
      if (id.empty()) co_return co_await giveUp("the Docker engine created " + name + " without an id");
      break;
    }
    // 404 for the image: removed behind our back (docker image prune); build it again, once.
    if (created->is({404}) && created->message().find("image") != std::string::npos && attempt == 0) {
      spdlog::warn("runtime image {} disappeared from the engine; building it again", (*image)->reference);
      images_.forget(spec.runtime);
      continue;
    }
    // 409: the name is taken. Names hold this node's id and a fresh instance
    // number, so only another daemon on the same state directory does that.
    if (created->is({409}))
      co_return co_await giveUp("a container named " + name + " already exists (is another tinyfaas running on " +
                                options_.stateDir.string() + "?)");
    co_return co_await giveUp("the Docker engine refused to create " + name + ": " + created->message());
  }

  auto started = co_await client_.request(http::verb::post, "/containers/" + id + "/start");
  // 204 started; 304 already running.
  if (!started || !started->is({204, 304})) {
    const std::string why = started ? started->message() : started.error();
    co_await docker::removeContainer(client_, id);
    co_return co_await giveUp("cannot start container " + name + ": " + why);
  }
  auto container = std::make_shared<Container>(executor_);
  container->id = id;
  container->name = name;
  container->function = spec.function;
  container->instanceId = spec.instanceId;
  container->socketDir = spec.socketDir;
  container->egress = spec.limits.egress;
  container->onExit = std::move(onExit);
  spdlog::debug("started instance {} in container {} ({})", spec.instanceId, name, id.substr(0, 12));
  watcher_.follow(container);
  co_return std::make_unique<ContainerInstance>(container, handlerSocketPath(spec.socketDir));
}

asio::awaitable<boost::system::result<std::unique_ptr<Instance>, std::string>> DockerBackend::start(
    InstanceSpec spec, ExitCallback onExit) {
  if (pool_ && !spec.limits.egress && standbyCanServe(spec)) {
    if (auto standby = pool_->take(spec.runtime)) {
      auto handed = co_await handOver(
          std::unique_ptr<ContainerStandby>(static_cast<ContainerStandby*>(standby.release())), spec, onExit);
      pool_->replenish();
      if (handed) co_return std::move(*handed);
      spdlog::warn("{}: a standby could not take it over ({}); starting one of its own", spec.instanceId,
                   handed.error());
    }
  }
  auto running = co_await runContainer(spec, std::move(onExit));
  if (!running) co_return running.error();
  co_return std::unique_ptr<Instance>(std::move(*running));
}

InstanceSpec DockerBackend::standbySpec(Runtime launcher, int number) const {
  InstanceSpec spec;
  spec.instanceId = "standby-" + std::to_string(number);
  spec.runtime = launcher;
  spec.socketDir = options_.stateDir / "run" / spec.instanceId;
  // Bound read-only at its own path (the handler's working directory); the
  // function's code is linked into it at the handover.
  spec.codeDir = options_.stateDir / "standby" / spec.instanceId;
  spec.env = {"TINYFAAS_STANDBY=1", "TINYFAAS_CONTROL_SOCKET=" + (spec.socketDir / kControlSocketName).string()};
  return spec;
}

asio::awaitable<boost::system::result<std::unique_ptr<Standby>, std::string>> DockerBackend::startStandby(
    Runtime launcher) {
  const InstanceSpec spec = standbySpec(launcher, nextStandby_++);
  auto made = makeStandbyFolder(options_.stateDir, spec.instanceId, options_.identity);
  if (!made) co_return made.error();
  const fs::path slot = *made;
  std::error_code ec;
  // The daemon listens before the container runs: its handler connects
  // first thing.
  fs::create_directories(spec.socketDir, ec);
  const fs::path controlPath = spec.socketDir / kControlSocketName;
  auto giveUp = [&](std::string why) {
    fs::remove_all(slot, ec);
    fs::remove_all(spec.socketDir, ec);
    return why;
  };
  auto listener = listenForControl(executor_, controlPath);
  if (!listener) co_return giveUp(listener.error());
  if (::chown(controlPath.c_str(), uid_, gid_) != 0 && geteuid() == 0)
    co_return giveUp("cannot hand " + controlPath.string() + " to the function's user: " + std::strerror(errno));
  auto running = co_await runContainer(spec, nullptr);
  if (!running) co_return giveUp(running.error());
  auto instance = std::move(*running);
  instance->slotDir = slot;
  auto control = co_await acceptControl(*listener, controlPath, kConnectWait);
  // Without a connection the standby never says it is up: the pool finds
  // out that its handler does not know standbys.
  co_return std::unique_ptr<Standby>(std::make_unique<ContainerStandby>(
      launcher, std::move(instance), control ? std::move(*control) : asio::local::stream_protocol::socket(executor_)));
}

asio::awaitable<boost::system::result<std::unique_ptr<Instance>, std::string>> DockerBackend::handOver(
    std::unique_ptr<ContainerStandby> standby, const InstanceSpec& spec, const ExitCallback& onExit) {
  ContainerInstance& instance = *standby->instance;
  std::shared_ptr<Container> container = instance.container;
  auto fail = [&](std::string why) -> asio::awaitable<boost::system::result<std::unique_ptr<Instance>, std::string>> {
    co_await stop(instance);
    co_return why;
  };
  makeReadable(spec.codeDir);
  const fs::path folder = instance.slotDir / "code";
  if (auto linked = sandbox::linkTree(spec.codeDir, folder); !linked) co_return co_await fail(linked.error());
  auto updated = co_await client_.request(http::verb::post, "/containers/" + container->id + "/update",
                                          docker::limitsConfig(containerSettings_, spec.limits).dump());
  // 200 updated (a memory limit below what the standby uses already is refused).
  if (!updated) co_return co_await fail(updated.error());
  if (!updated->is({200})) co_return co_await fail("cannot set its limits: " + updated->message());

  InstanceSpec as = spec;
  as.socketDir = container->socketDir;
  as.codeDir = folder;
  const std::string program = spec.runtime == Runtime::go ? (folder / kGoHandlerFile).string() : "";
  auto message = assignmentMessage(folder, program, handlerEnvironment(as));
  if (!message) co_return co_await fail("an environment variable holds a NUL byte");

  container->function = spec.function;
  container->instanceId = spec.instanceId;
  container->onExit = onExit;  // a copy: a failed handover falls back to a start of its own
  auto written =
      co_await asio::async_write(standby->control, asio::buffer(*message), asio::as_tuple(asio::use_awaitable));
  if (std::get<0>(written)) co_return co_await fail("cannot hand it over: " + std::get<0>(written).message());
  if (saysReady(spec.runtime)) instance.ready = co_await readyWaits_.await(standby->control, kReadyWait);
  watcher_.lockOnceBound(container);
  spdlog::debug("{} took over a standby {} container", spec.instanceId, toString(standby->launcher));
  co_return std::unique_ptr<Instance>(std::move(standby->instance));
}

asio::awaitable<void> DockerBackend::stop(Instance& base) {
  auto container = static_cast<ContainerInstance&>(base).container;
  container->onExit = nullptr;
  if (container->notified && !container->ended.isSet()) {
    // Its process is gone already: let the engine's account (exit status,
    // out of memory) reach the logs before the container is removed.
    asio::steady_timer guard(executor_, kExitWatchTimeout);
    guard.async_wait([container](boost::system::error_code ec) {
      if (!ec) container->waitCanceller->cancel();
    });
    co_await container->ended.wait();
    guard.cancel();
  }
  container->stopping = true;
  if (container->process) container->process->close();
  if (!container->ended.isSet()) {
    RequestOptions options;
    options.timeout = options_.stopGrace + std::chrono::seconds(15);
    const auto grace = std::chrono::ceil<std::chrono::seconds>(options_.stopGrace).count();
    auto stopped = co_await client_.request(
        http::verb::post, "/containers/" + container->id + "/stop?t=" + std::to_string(grace), {}, options);
    // 204 stopped; 304 was not running; 404 already gone: it runs no more either way.
    if (!stopped) {
      spdlog::warn("cannot stop container {}: {}", container->name, stopped.error());
    } else if (!stopped->is({204, 304, 404})) {
      spdlog::warn("cannot stop container {}: {}", container->name, stopped->message());
    }
  }
  co_await docker::removeContainer(client_, container->id);
  if (!container->ended.isSet()) {
    // Removal ends the wait and the log stream; should the engine not close
    // them, they are cut here.
    asio::steady_timer guard(executor_, kExitWatchTimeout);
    guard.async_wait([container](boost::system::error_code ec) {
      if (ec) return;
      container->waitCanceller->cancel();
      container->logCanceller->cancel();
    });
    co_await container->ended.wait();
    guard.cancel();
  }
  std::error_code ec;
  fs::remove_all(container->socketDir, ec);
  auto& instance = static_cast<ContainerInstance&>(base);
  if (!instance.slotDir.empty()) fs::remove_all(instance.slotDir, ec);
  if (container->egress) co_await networks_.release(container->function);
}

}  // namespace tinyfaas
