#include "backend/docker/docker_backend.hpp"

#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <random>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "backend/docker/log_demux.hpp"
#include "core/async.hpp"
#include "sandbox/seccomp_policy.hpp"
#include "util/durable_file.hpp"
#include "util/pidfd.hpp"
#include "util/private_dir.hpp"
#include "util/run_on.hpp"

namespace tinyfaas {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using docker::EngineResult;
using docker::RequestOptions;

namespace {

constexpr std::size_t kMaxListBytes = 16u << 20;   // container and image lists of a busy engine
constexpr std::size_t kMaxWaitBody = 64u << 10;    // {"StatusCode":N,"Error":...}
constexpr std::size_t kMaxSmokeOutput = 64u << 10;
// How long a lost connection to the engine is retried before an instance is
// given up as lost (and restarted by the manager).
constexpr int kMaxEngineFailures = 30;
constexpr std::chrono::seconds kLogDrainTimeout{2};
constexpr std::chrono::seconds kExitWatchTimeout{5};
constexpr std::chrono::seconds kSocketLockTimeout{120};

// A go function's handler is its own static binary, in its code folder:
// it runs in the binary runtime's minimal image, with no toolchain.
Runtime imageRuntime(Runtime runtime) { return runtime == Runtime::go ? Runtime::binary : runtime; }

std::size_t indexOf(Runtime runtime) {
  switch (imageRuntime(runtime)) {
    case Runtime::nodejs: return 0;
    case Runtime::python3: return 1;
    default: return 2;
  }
}

std::string labelFilter(const std::string& label) { return json{{"label", {label}}}.dump(); }

// Import and pull answers are 200 with a progress stream; failures arrive
// inside it as {"error": "...", "errorDetail": {...}}.
std::string progressStreamError(const std::string& body) {
  std::size_t start = 0;
  while (start < body.size()) {
    auto end = body.find('\n', start);
    if (end == std::string::npos) end = body.size();
    auto line = json::parse(body.substr(start, end - start), nullptr, false);
    if (!line.is_discarded() && line.is_object()) {
      auto error = line.find("error");
      if (error != line.end() && error->is_string()) return error->get<std::string>();
    }
    start = end + 1;
  }
  return {};
}

std::string describeExit(std::int64_t code) {
  std::string text = "exited with status " + std::to_string(code);
  if (code > 128 && code < 128 + 65) text += " (killed by signal " + std::to_string(code - 128) + ")";
  return text;
}

std::string seconds(Clock::duration d) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", std::chrono::duration<double>(d).count());
  return text;
}

asio::awaitable<void> sleepFor(Clock::duration d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(useTuple);
}

// Debian 12's engine; older ones do not serve the API version we pin.
bool apiAtLeast(const std::string& version, int major, int minor) {
  int gotMajor = 0, gotMinor = 0;
  if (std::sscanf(version.c_str(), "%d.%d", &gotMajor, &gotMinor) != 2) return false;
  return gotMajor > major || (gotMajor == major && gotMinor >= minor);
}

}  // namespace

struct DockerBackend::ImageState {
  explicit ImageState(asio::any_io_executor executor) : buildEnded(std::move(executor)) {}
  std::string reference;  // empty until found or built
  std::vector<std::string> command;
  std::vector<std::pair<std::string, std::string>> extraMounts;  // read-only host file -> path inside
  bool building = false;
  AsyncEvent buildEnded;  // wakes the deploys that wait for a build
};

// Shared by the instance, its watcher and its log pump, so that whichever
// ends last frees it.
struct DockerBackend::Container {
  explicit Container(const asio::any_io_executor& executor) : ended(executor), logsDone(executor) {}
  std::string id;
  std::string name;
  std::string function;
  std::string instanceId;
  fs::path socketDir;
  bool egress = false;
  bool stopping = false;
  bool socketReady = false;  // its handler bound the socket: past start-up
  bool notified = false;     // onExit was called
  ExitCallback onExit;
  AsyncEvent ended;     // set once the watcher saw the end
  AsyncEvent logsDone;  // set once the log stream ended
  // The handler process itself, watched through a pidfd: it tells of a
  // death ~50-150 ms before the engine's /wait does.
  std::unique_ptr<asio::posix::stream_descriptor> process;
  std::shared_ptr<docker::StreamCanceller> waitCanceller = std::make_shared<docker::StreamCanceller>();
  std::shared_ptr<docker::StreamCanceller> logCanceller = std::make_shared<docker::StreamCanceller>();
};

class DockerBackend::ContainerInstance final : public Instance {
 public:
  ContainerInstance(std::shared_ptr<Container> container, fs::path socket)
      : container(std::move(container)), socket_(std::move(socket)) {}
  const std::string& id() const override { return container->instanceId; }
  fs::path socketPath() const override { return socket_; }
  std::shared_ptr<Container> container;

 private:
  fs::path socket_;
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

boost::system::result<std::unique_ptr<DockerBackend>, std::string> DockerBackend::create(
    asio::any_io_executor executor, DockerBackendOptions options, LogSink& logs) {
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
      client_(executor, options_.socket) {
  // The sandbox user where the daemon can switch uids; else, as root, the
  // image's own user; otherwise the daemon can neither chown socket
  // directories nor read what that user writes, so the daemon's user.
  if (options_.identity.switchUser) {
    uid_ = options_.identity.uid;
    gid_ = options_.identity.gid;
  } else if (geteuid() == 0) {
    uid_ = docker::kFunctionUid;
    gid_ = docker::kFunctionGid;
  } else {
    uid_ = getuid();
    gid_ = getgid();
  }
  for (auto& image : images_) image = std::make_unique<ImageState>(executor);
}

DockerBackend::~DockerBackend() { worker_.join(); }

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

std::string DockerBackend::networkName(const std::string& function) const {
  return "tinyfaas-" + nodeId_ + "-" + function;
}

asio::awaitable<boost::system::result<void, std::string>> DockerBackend::connect(
    std::chrono::milliseconds timeout) {
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

asio::awaitable<void> DockerBackend::removeContainer(const std::string& id) {
  RequestOptions options;
  options.timeout = std::chrono::seconds(30);
  auto removed = co_await client_.request(http::verb::delete_, "/containers/" + id + "?force=1&v=1", {}, options);
  // 204 removed; 404 already gone; 409 removal already in progress: all fine for teardown.
  if (!removed) {
    spdlog::warn("cannot remove container {}: {}", id, removed.error());
  } else if (!removed->is({204, 404, 409})) {
    spdlog::warn("cannot remove container {}: {}", id, removed->message());
  }
}

asio::awaitable<boost::system::result<std::size_t, std::string>> DockerBackend::removeLeftovers() {
  const std::string filter = docker::encodeQueryValue(labelFilter("tinyfaas.node=" + nodeId_));
  RequestOptions listOptions;
  listOptions.maxBodyBytes = kMaxListBytes;
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
      co_await removeContainer(item["Id"].get<std::string>());
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
  // Image tars of a build that was interrupted.
  std::error_code ec;
  fs::remove_all(options_.stateDir / "images", ec);
  co_return removed;
}

// ---------------------------------------------------------------------------
// runtime images

asio::awaitable<boost::system::result<void, std::string>> DockerBackend::prepareImages() {
  const auto started = Clock::now();
  std::string errors;
  for (Runtime runtime : {Runtime::nodejs, Runtime::python3, Runtime::binary}) {
    auto image = co_await ensureImage(runtime);
    if (!image) errors += (errors.empty() ? "" : "; ") + image.error();
  }
  if (!errors.empty()) co_return errors;
  spdlog::info("runtime images ready in {}", seconds(Clock::now() - started));
  co_return boost::system::result<void, std::string>{};
}

asio::awaitable<boost::system::result<const DockerBackend::ImageState*, std::string>> DockerBackend::ensureImage(
    Runtime runtime) {
  ImageState& image = *images_[indexOf(runtime)];
  while (image.building) co_await image.buildEnded.wait();
  if (!image.reference.empty()) co_return &image;
  image.building = true;
  image.buildEnded.reset();
  boost::system::result<void, std::string> ready;
  if (options_.imageSource == RuntimeImageSource::local) {
    ready = co_await buildLocalImage(runtime, image);
  } else {
    ready = co_await pullOfficialImage(runtime, image);
  }
  image.building = false;
  image.buildEnded.set();
  if (!ready) {
    spdlog::error("{} runtime image: {}", toString(runtime), ready.error());
    co_return ready.error();
  }
  co_return &image;
}

asio::awaitable<boost::system::result<void, std::string>> DockerBackend::buildLocalImage(Runtime runtime,
                                                                                       ImageState& image) {
  using Prepared = boost::system::result<std::pair<docker::RuntimeImagePlan, std::string>, std::string>;
  const auto started = Clock::now();
  const std::string name(toString(runtime));
  auto prepare = [this, runtime]() -> Prepared {
    auto plan = docker::planRuntimeImage(runtime, options_.images);
    if (!plan) return plan.error();
    auto tag = docker::imageTag(*plan);
    if (!tag) return tag.error();
    return std::make_pair(std::move(*plan), std::move(*tag));
  };
  Prepared prepared = co_await runOn(worker_.get_executor(), prepare);
  if (!prepared) co_return "cannot assemble the " + name + " runtime image from this host: " + prepared.error();
  docker::RuntimeImagePlan& plan = prepared->first;
  const std::string reference = plan.repository + ":" + prepared->second;
  for (const auto& warning : plan.rootfs.warnings()) spdlog::debug("{} runtime image: left out: {}", name, warning);

  auto existing = co_await client_.request(http::verb::get, "/images/" + reference + "/json");
  if (!existing) co_return existing.error();
  // 200 built by an earlier run (of this node or another one on this
  // engine) from the same inputs; 404 not built yet.
  if (existing->is({200})) {
    auto claimed = co_await claimImage(plan.repository, prepared->second);
    if (!claimed) co_return claimed.error();
    image.reference = *claimed;
    image.command = plan.command;
    spdlog::info("runtime image {} is up to date (checked in {})", *claimed, seconds(Clock::now() - started));
    co_await pruneOldImages(runtime, *claimed);
    co_return boost::system::result<void, std::string>{};
  }
  if (!existing->is({404})) co_return "cannot inspect image " + reference + ": " + existing->message();

  spdlog::info("building runtime image {} from this host's {} ({} files, {} MB)", reference, name,
               plan.rootfs.entries().size(), plan.rootfs.contentBytes() >> 20);
  const fs::path dir = options_.stateDir / "images";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) co_return "cannot create " + dir.string() + ": " + ec.message();
  const fs::path tar = dir / (plan.repository + "-" + prepared->second + ".tar");
  auto write = [&plan, &tar] { return plan.rootfs.writeTar(tar); };
  auto written = co_await runOn(worker_.get_executor(), write);
  if (!written) {
    fs::remove(tar, ec);
    co_return "cannot pack the " + name + " runtime image: " + written.error();
  }

  std::string target = "/images/create?fromSrc=-&repo=" + docker::encodeQueryValue(plan.repository) +
                       "&tag=" + prepared->second +
                       "&message=" + docker::encodeQueryValue("tinyfaas runtime image, built from the host");
  for (const auto& change : plan.changes) target += "&changes=" + docker::encodeQueryValue(change);
  RequestOptions importOptions;
  importOptions.timeout = options_.imageBuildTimeout;
  importOptions.contentType = "application/x-tar";
  auto imported = co_await client_.upload(http::verb::post, target, tar, importOptions);
  fs::remove(tar, ec);
  if (!imported) co_return "importing the " + name + " runtime image failed: " + imported.error();
  // 200 with a progress stream, which carries any failure.
  if (!imported->is({200})) co_return "the Docker engine refused the " + name + " runtime image: " + imported->message();
  if (auto error = progressStreamError(imported->body); !error.empty())
    co_return "the Docker engine refused the " + name + " runtime image: " + error;

  if (auto works = co_await smokeTest(reference, plan.smokeTest); !works) {
    auto deleted = co_await client_.request(http::verb::delete_, "/images/" + reference + "?force=1");
    (void)deleted;  // 200 deleted, 404 gone, 409 in use: the next start tries again either way
    co_return "the " + name + " runtime image built from this host does not work: " + works.error();
  }

  std::string size = "?";
  if (auto inspect = co_await client_.request(http::verb::get, "/images/" + reference + "/json");
      inspect && inspect->is({200})) {
    auto parsed = json::parse(inspect->body, nullptr, false);
    if (parsed.is_object() && parsed.contains("Size") && parsed["Size"].is_number())
      size = std::to_string(parsed["Size"].get<std::int64_t>() / 1000000);
  }
  auto claimed = co_await claimImage(plan.repository, prepared->second);
  if (!claimed) co_return claimed.error();
  spdlog::info("built runtime image {} in {} ({} MB)", *claimed, seconds(Clock::now() - started), size);
  image.reference = *claimed;
  image.command = plan.command;
  co_await pruneOldImages(runtime, *claimed);
  co_return boost::system::result<void, std::string>{};
}

asio::awaitable<boost::system::result<std::string, std::string>> DockerBackend::claimImage(
    const std::string& repository, const std::string& contentTag) {
  const std::string tag = nodeImageTag(contentTag);
  auto tagged = co_await client_.request(http::verb::post, "/images/" + repository + ":" + contentTag +
                                                               "/tag?repo=" + docker::encodeQueryValue(repository) +
                                                               "&tag=" + tag);
  using Result = boost::system::result<std::string, std::string>;
  if (!tagged) co_return Result(boost::system::in_place_error, tagged.error());
  // 201 tagged (also when the tag was there already).
  if (!tagged->is({201}))
    co_return Result(boost::system::in_place_error,
                     "cannot tag runtime image " + repository + ":" + tag + ": " + tagged->message());
  co_return Result(boost::system::in_place_value, repository + ":" + tag);
}

asio::awaitable<boost::system::result<void, std::string>> DockerBackend::pullOfficialImage(Runtime runtime,
                                                                                         ImageState& image) {
  // Handler files are bind-mounted from this host rather than baked in, so
  // the images are used exactly as published.
  std::string repository, tag;
  std::vector<std::string> command;
  std::vector<std::pair<std::string, std::string>> mounts;
  const auto& in = options_.images;
  switch (runtime) {
    case Runtime::nodejs:
      repository = "node", tag = "20-bookworm-slim";
      command = {"node", "/opt/tinyfaas/handler.js"};
      mounts = {{(in.runtimesDir / "nodejs" / "handler.js").string(), "/opt/tinyfaas/handler.js"}};
      break;
    case Runtime::python3:
      repository = "python", tag = "3.11-slim-bookworm";
      command = {"python3", "/opt/tinyfaas/handler.py"};
      mounts = {{(in.runtimesDir / "python3" / "handler.py").string(), "/opt/tinyfaas/handler.py"}};
      break;
    case Runtime::binary:
    case Runtime::go:  // never asked for: go functions use the binary image
      repository = "debian", tag = "bookworm-slim";
      command = {"/opt/tinyfaas/tinyfaas-binary-handler"};
      mounts = {{in.binaryHandler.string(), "/opt/tinyfaas/tinyfaas-binary-handler"}};
      break;
  }
  const std::string reference = repository + ":" + tag;
  auto existing = co_await client_.request(http::verb::get, "/images/" + reference + "/json");
  if (!existing) co_return existing.error();
  // 200 pulled before; 404 not yet.
  if (!existing->is({200})) {
    if (!existing->is({404})) co_return "cannot inspect image " + reference + ": " + existing->message();
    spdlog::info("pulling {} from the registry", reference);
    RequestOptions pullOptions;
    pullOptions.timeout = options_.imageBuildTimeout;
    pullOptions.maxBodyBytes = 16u << 20;
    auto pulled = co_await client_.request(
        http::verb::post, "/images/create?fromImage=" + repository + "&tag=" + tag, {}, pullOptions);
    if (!pulled) co_return "pulling " + reference + " failed: " + pulled.error();
    if (!pulled->is({200})) co_return "pulling " + reference + " failed: " + pulled->message();
    if (auto error = progressStreamError(pulled->body); !error.empty())
      co_return "pulling " + reference + " failed: " + error;
  }
  image.reference = reference;
  image.command = command;
  image.extraMounts = mounts;
  co_return boost::system::result<void, std::string>{};
}

asio::awaitable<boost::system::result<void, std::string>> DockerBackend::smokeTest(
    const std::string& image, const std::vector<std::string>& command) {
  json config = {
      {"Image", image},
      {"Cmd", command},
      {"User", std::to_string(uid_) + ":" + std::to_string(gid_)},
      {"Env", {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8"}},
      {"Labels", {{"tinyfaas.node", nodeId_}, {"tinyfaas.purpose", "image-check"}}},
      {"HostConfig",
       {{"NetworkMode", "none"},
        {"ReadonlyRootfs", true},
        {"Tmpfs", {{"/tmp", "rw,nosuid,nodev,size=16m,mode=1777"}}},
        {"CapDrop", {"ALL"}},
        {"SecurityOpt", securityOptions()},
        {"PidsLimit", options_.pidsLimit},
        {"Memory", std::int64_t{256} << 20},
        {"MemorySwap", std::int64_t{256} << 20}}}};
  auto created = co_await client_.request(http::verb::post, "/containers/create", config.dump());
  if (!created) co_return created.error();
  // 201 created.
  if (!created->is({201})) co_return "cannot create a container from it: " + created->message();
  const std::string id = json::parse(created->body, nullptr, false).value("Id", std::string());
  if (id.empty()) co_return std::string("the engine created a container without an id");

  std::string failure;
  auto started = co_await client_.request(http::verb::post, "/containers/" + id + "/start");
  // 204 started; 304 already running.
  if (!started) {
    failure = started.error();
  } else if (!started->is({204, 304})) {
    failure = "cannot start a container from it: " + started->message();
  } else {
    RequestOptions waitOptions;
    waitOptions.timeout = std::chrono::seconds(60);
    waitOptions.maxBodyBytes = kMaxWaitBody;
    auto waited = co_await client_.request(http::verb::post, "/containers/" + id + "/wait", {}, waitOptions);
    std::int64_t status = -1;
    if (!waited) {
      failure = waited.error();
    } else if (waited->is({200})) {
      status = json::parse(waited->body, nullptr, false).value("StatusCode", std::int64_t{-1});
    } else {
      failure = "waiting for the check failed: " + waited->message();
    }
    if (failure.empty() && status != 0) {
      RequestOptions logOptions;
      logOptions.maxBodyBytes = kMaxSmokeOutput;
      auto output =
          co_await client_.request(http::verb::get, "/containers/" + id + "/logs?stdout=1&stderr=1&tail=10", {},
                                   logOptions);
      std::string text;
      if (output && output->is({200})) {
        docker::LogDemuxer demux(docker::LogDemuxer::Framing::multiplexed, [&text](int, std::string_view line) {
          text += (text.empty() ? "" : " | ") + std::string(line);
        });
        demux.feed(output->body);
        demux.finish();
      }
      failure = "its check (" + command.front() + " ...) " + describeExit(status) +
                (text.empty() ? "" : ": " + text);
    }
  }
  co_await removeContainer(id);
  if (!failure.empty()) co_return failure;
  co_return boost::system::result<void, std::string>{};
}

std::string DockerBackend::nodeImageTag(const std::string& contentTag) const { return contentTag + "-" + nodeId_; }

// Every node tags the runtime images it uses with its node id
// (CONTENT-NODE) and removes only its own tags: another node on the same
// engine may use an older image. An image is deleted when its last node tag
// goes; the engine keeps one a container still runs from (409).
asio::awaitable<void> DockerBackend::pruneOldImages(Runtime runtime, const std::string& keep) {
  const std::string repository = "tinyfaas-runtime-" + std::string(toString(runtime));
  const std::string ownSuffix = "-" + nodeId_;
  RequestOptions listOptions;
  listOptions.maxBodyBytes = kMaxListBytes;
  auto images = co_await client_.request(
      http::verb::get,
      "/images/json?filters=" +
          docker::encodeQueryValue(labelFilter("tinyfaas.runtime=" + std::string(toString(runtime)))),
      {}, listOptions);
  if (!images || !images->is({200})) co_return;
  auto list = json::parse(images->body, nullptr, false);
  if (!list.is_array()) co_return;
  for (const auto& item : list) {
    if (!item.is_object() || !item.contains("RepoTags") || !item["RepoTags"].is_array()) continue;
    std::vector<std::string> own, content;
    bool stillUsed = false;  // by this node now or by another node
    for (const auto& entry : item["RepoTags"]) {
      if (!entry.is_string()) continue;
      const std::string name = entry.get<std::string>();
      if (name == keep) stillUsed = true;
      if (name == keep || name.rfind(repository + ":", 0) != 0) continue;
      const std::string tag = name.substr(repository.size() + 1);
      if (tag.ends_with(ownSuffix)) {
        own.push_back(name);
      } else if (tag.find('-') == std::string::npos) {
        content.push_back(name);
      } else {
        stillUsed = true;
      }
    }
    if (own.empty()) continue;  // never ours: another node's, or from before node tags
    for (const auto& name : own) {
      auto removed = co_await client_.request(http::verb::delete_, "/images/" + name);
      // 200 untagged or deleted; 404 already gone; 409 a container of ours still uses it.
      if (removed && removed->is({200})) spdlog::info("removed outdated runtime image tag {}", name);
    }
    if (stillUsed) continue;
    for (const auto& name : content) {
      auto removed = co_await client_.request(http::verb::delete_, "/images/" + name);
      if (removed && removed->is({200})) spdlog::info("removed outdated runtime image {}: no node uses it", name);
    }
  }
}

// ---------------------------------------------------------------------------
// networks for functions with egress

asio::awaitable<boost::system::result<void, std::string>> DockerBackend::acquireNetwork(const std::string& function) {
  auto guard = co_await networkMutex_.lock();
  NetworkState& network = networks_[function];
  if (!network.exists) {
    json body = {{"Name", networkName(function)},
                 {"Driver", "bridge"},
                 {"CheckDuplicate", true},
                 {"Labels", {{"tinyfaas.node", nodeId_}, {"tinyfaas.function", function}}}};
    auto created = co_await client_.request(http::verb::post, "/networks/create", body.dump());
    if (!created || !created->is({201, 409})) {
      const std::string why = created ? created->message() : created.error();
      if (network.users == 0) networks_.erase(function);
      co_return "cannot create the network of " + function + ": " + why;
    }
    // 201 created; 409 a network of that name exists: this node's (the name
    // holds the node id), left by a stop that failed, so it is reused.
    network.exists = true;
  }
  ++network.users;
  co_return boost::system::result<void, std::string>{};
}

asio::awaitable<void> DockerBackend::releaseNetwork(const std::string& function) {
  auto guard = co_await networkMutex_.lock();
  auto it = networks_.find(function);
  if (it == networks_.end()) co_return;
  if (--it->second.users > 0) co_return;
  networks_.erase(it);
  auto removed = co_await client_.request(http::verb::delete_, "/networks/" + networkName(function));
  // 204 removed; 404 already gone. Otherwise the next start's leftover sweep removes it.
  if (!removed) {
    spdlog::warn("cannot remove the network of {}: {}", function, removed.error());
  } else if (!removed->is({204, 404})) {
    spdlog::warn("cannot remove the network of {}: {}", function, removed->message());
  }
}

// ---------------------------------------------------------------------------
// instances

std::vector<std::string> DockerBackend::environment(const InstanceSpec& spec) const {
  const auto env = handlerEnvironment(spec);
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

std::vector<std::string> DockerBackend::securityOptions() {
  // The same deny table as the process backend's seccomp filter, on top of
  // no_new_privs and no capabilities.
  static const std::string profile = sandbox::dockerSeccompProfile();
  return {"no-new-privileges", "seccomp=" + profile};
}

std::string DockerBackend::containerConfig(const InstanceSpec& spec, const std::string& image,
                                           const std::vector<std::string>& command) const {
  json cmd = command;
  // Last, as on the process backend: tells instances apart in `ps`.
  cmd.push_back((spec.socketDir / "handler.sock").string());
  json mounts = json::array();
  mounts.push_back({{"Type", "bind"}, {"Source", spec.codeDir.string()}, {"Target", spec.codeDir.string()},
                    {"ReadOnly", true}});
  mounts.push_back({{"Type", "bind"}, {"Source", spec.socketDir.string()}, {"Target", spec.socketDir.string()},
                    {"ReadOnly", false}});
  const ImageState& state = *images_[indexOf(spec.runtime)];
  for (const auto& [source, target] : state.extraMounts)
    mounts.push_back({{"Type", "bind"}, {"Source", source}, {"Target", target}, {"ReadOnly", true}});

  const std::int64_t memory = spec.limits.memoryMb > 0 ? std::int64_t{spec.limits.memoryMb} << 20 : 0;
  // The engine refuses more CPUs than the host has; more than all of them
  // means no limit anyway.
  const double hostCpus = std::max(1u, std::thread::hardware_concurrency());
  const double cpus = std::min(spec.limits.cpus, hostCpus);
  const auto nanoCpus = cpus > 0 ? static_cast<std::int64_t>(std::llround(cpus * 1e9)) : std::int64_t{0};

  json host = {
      {"NetworkMode", spec.limits.egress ? networkName(spec.function) : "none"},
      {"Mounts", mounts},
      {"ReadonlyRootfs", true},
      {"Tmpfs", {{"/tmp", "rw,nosuid,nodev,size=" + std::to_string(options_.tmpfsBytes) + ",mode=1777"}}},
      {"ShmSize", options_.shmBytes},
      {"IpcMode", "private"},
      {"CapDrop", {"ALL"}},
      {"SecurityOpt", securityOptions()},
      {"PidsLimit", options_.pidsLimit},
      {"Memory", memory},
      // Equal to Memory: no swap on top of the limit.
      {"MemorySwap", memory},
      {"NanoCpus", nanoCpus},
      {"RestartPolicy", {{"Name", "no"}}},
      // The manager keeps what it needs; the engine's copy stays small.
      {"LogConfig", {{"Type", "json-file"}, {"Config", {{"max-size", "1m"}, {"max-file", "1"}}}}}};
  json config = {
      {"Image", image},
      {"Cmd", cmd},
      {"Env", environment(spec)},
      {"WorkingDir", spec.codeDir.string()},
      {"User", std::to_string(uid_) + ":" + std::to_string(gid_)},
      {"Tty", false},
      {"OpenStdin", false},
      {"StopSignal", "SIGTERM"},
      {"StopTimeout", std::chrono::ceil<std::chrono::seconds>(options_.stopGrace).count()},
      {"Labels",
       {{"tinyfaas.node", nodeId_}, {"tinyfaas.function", spec.function}, {"tinyfaas.instance", spec.instanceId}}},
      {"HostConfig", host}};
  return config.dump();
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

asio::awaitable<boost::system::result<std::unique_ptr<Instance>, std::string>> DockerBackend::start(
    InstanceSpec spec, ExitCallback onExit) {
  const std::string runtime(toString(spec.runtime));
  const fs::path socket = spec.socketDir / "handler.sock";
  std::error_code ec;
  fs::create_directories(spec.socketDir, ec);
  if (ec) co_return "cannot create " + spec.socketDir.string() + ": " + ec.message();
  fs::remove(socket, ec);
  // Writable for the function's user until its handler has bound the socket
  // (lockSocketDir), and for nobody else.
  if (::chown(spec.socketDir.c_str(), uid_, gid_) != 0 && geteuid() == 0)
    co_return "cannot hand " + spec.socketDir.string() + " to the function's user: " + std::strerror(errno);
  ::chmod(spec.socketDir.c_str(), 0700);
  makeReadable(spec.codeDir);

  if (spec.limits.egress) {
    if (auto network = co_await acquireNetwork(spec.function); !network) co_return network.error();
  }
  auto giveUp = [&](std::string why) -> asio::awaitable<std::string> {
    if (spec.limits.egress) co_await releaseNetwork(spec.function);
    co_return why;
  };

  const std::string name = containerName(spec);
  std::string id;
  for (int attempt = 0;; ++attempt) {
    auto image = co_await ensureImage(imageRuntime(spec.runtime));
    if (!image) co_return co_await giveUp("the " + runtime + " runtime image is not available: " + image.error());
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
      images_[indexOf(spec.runtime)]->reference.clear();
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
    co_await removeContainer(id);
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
  asio::co_spawn(executor_, pumpLogs(container), asio::detached);
  asio::co_spawn(executor_, watch(container), asio::detached);
  asio::co_spawn(executor_, lockSocketDir(container), asio::detached);
  co_return std::unique_ptr<Instance>(std::make_unique<ContainerInstance>(container, socket));
}

asio::awaitable<void> DockerBackend::pumpLogs(std::shared_ptr<Container> container) {
  LogSink& logs = logs_;
  // Containers run without a TTY, so stdout and stderr come multiplexed.
  docker::LogDemuxer demux(docker::LogDemuxer::Framing::multiplexed,
                           [&logs, container](int, std::string_view line) {
                             logs.append(container->function, container->instanceId, line);
                           });
  RequestOptions options;
  // Named, not a temporary in the co_await expression: GCC 12 destroys
  // such temporaries twice.
  std::function<void(std::string_view)> onData = [&demux](std::string_view bytes) { demux.feed(bytes); };
  auto streamed = co_await client_.stream(
      http::verb::get, "/containers/" + container->id + "/logs?follow=1&stdout=1&stderr=1", onData, options,
      container->logCanceller);
  demux.finish();
  if (demux.broken()) spdlog::warn("log stream of {} is garbled; the rest is lost", container->instanceId);
  if (!streamed && !container->stopping) spdlog::debug("log stream of {}: {}", container->instanceId, streamed.error());
  container->logsDone.set();
}

void DockerBackend::notifyExit(const std::shared_ptr<Container>& c, std::string how) {
  if (c->notified || c->stopping || !c->onExit) return;
  c->notified = true;
  auto onExit = std::move(c->onExit);
  c->onExit = nullptr;
  onExit(std::move(how));
}

asio::awaitable<void> DockerBackend::watchProcess(std::shared_ptr<Container> c) {
  auto inspected = co_await client_.request(http::verb::get, "/containers/" + c->id + "/json");
  if (!inspected || !inspected->is({200}) || c->ended.isSet() || c->stopping) co_return;
  auto state = json::parse(inspected->body, nullptr, false);
  if (!state.is_object() || !state.contains("State") || !state["State"].is_object()) co_return;
  const auto pid = state["State"].value("Pid", std::int64_t{0});
  if (pid <= 0) co_return;
  // Without the engine's PID namespace (tinyfaas itself in a container) or
  // on old kernels this fails, and the engine's /wait alone tells.
  const int fd = static_cast<int>(syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0));
  if (fd < 0) co_return;
  // The pid may have been reused since the inspect: the process must be in
  // the container's cgroup.
  std::ifstream cgroup("/proc/" + std::to_string(pid) + "/cgroup");
  const std::string groups((std::istreambuf_iterator<char>(cgroup)), std::istreambuf_iterator<char>());
  if (groups.find(c->id) == std::string::npos) {
    ::close(fd);
    co_return;
  }
  c->process = std::make_unique<asio::posix::stream_descriptor>(executor_, fd);
  const auto ec = co_await awaitProcessEnd(*c->process);
  // Before its socket was bound, a death is a failed start: the engine's
  // account with the instance's last output is what the manager reports.
  if (ec || c->ended.isSet() || c->stopping || !c->socketReady) co_return;
  notifyExit(c, "ended (its handler process died)");
}

asio::awaitable<void> DockerBackend::watch(std::shared_ptr<Container> c) {
  std::string how;
  std::optional<std::int64_t> exitCode;
  int engineFailures = 0;
  asio::co_spawn(executor_, watchProcess(c), asio::detached);
  while (!c->stopping) {
    std::string body;
    RequestOptions options;
    options.maxBodyBytes = kMaxWaitBody;
    // The long-poll: the engine answers the header at once and the body when
    // the container stops.
    std::function<void(std::string_view)> onData = [&body](std::string_view bytes) {
      if (body.size() + bytes.size() <= kMaxWaitBody) body.append(bytes);
    };
    auto waited = co_await client_.stream(http::verb::post, "/containers/" + c->id + "/wait?condition=not-running",
                                          onData, options, c->waitCanceller);
    if (c->stopping) break;
    // 200 it stopped (StatusCode in the body); 404 removed (not by us).
    if (waited && waited->is({200})) {
      auto parsed = json::parse(body, nullptr, false);
      if (parsed.is_object() && parsed.contains("StatusCode") && parsed["StatusCode"].is_number_integer()) {
        exitCode = parsed["StatusCode"].get<std::int64_t>();
        break;
      }
    } else if (waited && waited->is({404})) {
      how = "disappeared (its container was removed outside tinyfaas)";
      break;
    }
    // The connection broke or the answer was odd: ask how the container is.
    auto inspected = co_await client_.request(http::verb::get, "/containers/" + c->id + "/json");
    if (c->stopping) break;
    if (inspected && inspected->is({200})) {
      engineFailures = 0;
      auto state = json::parse(inspected->body, nullptr, false);
      if (state.is_object() && state.contains("State") && state["State"].is_object() &&
          !state["State"].value("Running", false)) {
        exitCode = state["State"].value("ExitCode", std::int64_t{-1});
        break;
      }
    } else if (inspected && inspected->is({404})) {
      how = "disappeared (its container was removed outside tinyfaas)";
      break;
    } else if (++engineFailures >= kMaxEngineFailures) {
      how = "was lost: the Docker engine stopped answering (" +
            (inspected ? inspected->message() : inspected.error()) + ")";
      break;
    }
    co_await sleepFor(std::chrono::seconds(1));
  }

  spdlog::debug("container of {} stopped: {}", c->instanceId, exitCode ? describeExit(*exitCode) : how);
  // The output first: a failed start quotes the instance's last lines.
  if (!c->logsDone.isSet()) {
    asio::steady_timer guard(executor_, kLogDrainTimeout);
    guard.async_wait([c](boost::system::error_code ec) {
      if (!ec) c->logCanceller->cancel();
    });
    co_await c->logsDone.wait();
    guard.cancel();
  }
  if (exitCode && (!c->stopping || c->notified)) {
    how = describeExit(*exitCode);
    auto inspected = co_await client_.request(http::verb::get, "/containers/" + c->id + "/json");
    if (inspected && inspected->is({200})) {
      auto state = json::parse(inspected->body, nullptr, false);
      if (state.is_object() && state.contains("State") && state["State"].is_object() &&
          state["State"].value("OOMKilled", false))
        how = "was killed (out of memory)";
    }
  }
  c->ended.set();
  if (c->process) c->process->close();
  if (c->notified) {
    // The manager heard of the death from the pidfd; this is how it died.
    if (!how.empty()) {
      spdlog::info("container of {} {}", c->instanceId, how);
      logs_.append(c->function, c->instanceId, "tinyfaas: container " + how);
    }
  } else {
    notifyExit(c, std::move(how));
  }
}

asio::awaitable<void> DockerBackend::lockSocketDir(std::shared_ptr<Container> c) {
  // Once the handler has bound its socket the directory need not be
  // writable any more; locking it keeps a function from filling the host's
  // disk through its only writable host directory.
  const fs::path socket = c->socketDir / "handler.sock";
  const auto deadline = Clock::now() + kSocketLockTimeout;
  auto step = std::chrono::milliseconds(5);
  while (!c->ended.isSet() && !c->stopping && Clock::now() < deadline) {
    std::error_code ec;
    if (fs::exists(socket, ec)) {
      c->socketReady = true;
      if (geteuid() == 0) {
        if (::chown(c->socketDir.c_str(), 0, 0) == 0) ::chmod(c->socketDir.c_str(), 0755);
      } else {
        ::chmod(c->socketDir.c_str(), 0555);
      }
      co_return;
    }
    co_await sleepFor(step);
    step = std::min(step * 2, std::chrono::milliseconds(100));
  }
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
  co_await removeContainer(container->id);
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
  if (container->egress) co_await releaseNetwork(container->function);
}

}  // namespace tinyfaas
