#include "backend/docker/runtime_images.hpp"

#include <cstdio>
#include <utility>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "backend/docker/engine_calls.hpp"
#include "backend/docker/log_demux.hpp"
#include "util/run_on.hpp"

namespace tinyfaas::docker {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kMaxSmokeOutput = 64u << 10;

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

std::string seconds(Clock::duration d) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", std::chrono::duration<double>(d).count());
  return text;
}

}  // namespace

RuntimeImages::RuntimeImages(asio::any_io_executor executor, EngineClient& engine, RuntimeImagesOptions options)
    : engine_(engine), client_(executor, engine.socket()), options_(std::move(options)) {
  for (auto& slot : slots_) slot = std::make_unique<Slot>(executor);
}

RuntimeImages::~RuntimeImages() { worker_.join(); }

RuntimeImages::Slot& RuntimeImages::slot(Runtime runtime) { return *slots_[indexOf(runtime)]; }

const ContainerImage& RuntimeImages::known(Runtime runtime) const { return slots_[indexOf(runtime)]->image; }

void RuntimeImages::forget(Runtime runtime) { slot(runtime).image.reference.clear(); }

void RuntimeImages::cancel() {
  cancelled_ = true;
  client_.closeAll();
}

asio::awaitable<boost::system::result<void, std::string>> RuntimeImages::prepareAll() {
  const auto started = Clock::now();
  std::string errors;
  for (Runtime runtime : {Runtime::nodejs, Runtime::python3, Runtime::binary}) {
    auto image = co_await ensure(runtime);
    if (!image) errors += (errors.empty() ? "" : "; ") + image.error();
  }
  if (!errors.empty()) co_return errors;
  spdlog::info("runtime images ready in {}", seconds(Clock::now() - started));
  co_return boost::system::result<void, std::string>{};
}

asio::awaitable<boost::system::result<const ContainerImage*, std::string>> RuntimeImages::ensure(Runtime runtime) {
  runtime = imageRuntime(runtime);
  Slot& state = slot(runtime);
  while (state.building) co_await state.buildEnded.wait();
  if (!state.image.reference.empty()) co_return &state.image;
  if (cancelled_) co_return std::string(kShuttingDown);
  state.building = true;
  state.buildEnded.reset();
  boost::system::result<void, std::string> ready;
  if (options_.source == RuntimeImageSource::local) {
    ready = co_await buildLocal(runtime, state.image);
  } else {
    ready = co_await pullOfficial(runtime, state.image);
  }
  state.building = false;
  state.buildEnded.set();
  if (!ready) {
    if (!cancelled_) spdlog::error("{} runtime image: {}", toString(runtime), ready.error());
    co_return ready.error();
  }
  co_return &state.image;
}

asio::awaitable<boost::system::result<void, std::string>> RuntimeImages::buildLocal(Runtime runtime,
                                                                                    ContainerImage& image) {
  using Prepared = boost::system::result<std::pair<RuntimeImagePlan, std::string>, std::string>;
  const auto started = Clock::now();
  const std::string name(toString(runtime));
  auto prepare = [this, runtime]() -> Prepared {
    auto plan = planRuntimeImage(runtime, options_.inputs);
    if (!plan) return plan.error();
    auto tag = imageTag(*plan);
    if (!tag) return tag.error();
    return std::make_pair(std::move(*plan), std::move(*tag));
  };
  Prepared prepared = co_await runOn(worker_.get_executor(), prepare);
  if (cancelled_) co_return std::string(kShuttingDown);
  if (!prepared) co_return "cannot assemble the " + name + " runtime image from this host: " + prepared.error();
  RuntimeImagePlan& plan = prepared->first;
  const std::string reference = plan.repository + ":" + prepared->second;
  for (const auto& warning : plan.rootfs.warnings()) spdlog::debug("{} runtime image: left out: {}", name, warning);

  auto existing = co_await client_.request(http::verb::get, "/images/" + reference + "/json");
  if (!existing) co_return existing.error();
  // 200 built by an earlier run (of this node or another one on this
  // engine) from the same inputs; 404 not built yet.
  if (existing->is({200})) {
    auto claimed = co_await claim(plan.repository, prepared->second);
    if (!claimed) co_return claimed.error();
    image.reference = *claimed;
    image.command = plan.command;
    spdlog::info("runtime image {} is up to date (checked in {})", *claimed, seconds(Clock::now() - started));
    co_await pruneOld(runtime, *claimed);
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
  if (!written || cancelled_) {
    fs::remove(tar, ec);
    if (cancelled_) co_return std::string(kShuttingDown);
    co_return "cannot pack the " + name + " runtime image: " + written.error();
  }

  std::string target = "/images/create?fromSrc=-&repo=" + encodeQueryValue(plan.repository) +
                       "&tag=" + prepared->second +
                       "&message=" + encodeQueryValue("tinyfaas runtime image, built from the host");
  for (const auto& change : plan.changes) target += "&changes=" + encodeQueryValue(change);
  RequestOptions importOptions;
  importOptions.timeout = options_.buildTimeout;
  importOptions.contentType = "application/x-tar";
  auto imported = co_await client_.upload(http::verb::post, target, tar, importOptions);
  fs::remove(tar, ec);
  if (!imported) co_return "importing the " + name + " runtime image failed: " + imported.error();
  // 200 with a progress stream, which carries any failure.
  if (!imported->is({200}))
    co_return "the Docker engine refused the " + name + " runtime image: " + imported->message();
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
  auto claimed = co_await claim(plan.repository, prepared->second);
  if (!claimed) co_return claimed.error();
  spdlog::info("built runtime image {} in {} ({} MB)", *claimed, seconds(Clock::now() - started), size);
  image.reference = *claimed;
  image.command = plan.command;
  co_await pruneOld(runtime, *claimed);
  co_return boost::system::result<void, std::string>{};
}

asio::awaitable<boost::system::result<std::string, std::string>> RuntimeImages::claim(const std::string& repository,
                                                                                      const std::string& contentTag) {
  const std::string tag = contentTag + "-" + options_.nodeId;
  auto tagged = co_await client_.request(http::verb::post, "/images/" + repository + ":" + contentTag + "/tag?repo=" +
                                                               encodeQueryValue(repository) + "&tag=" + tag);
  using Result = boost::system::result<std::string, std::string>;
  if (!tagged) co_return Result(boost::system::in_place_error, tagged.error());
  // 201 tagged (also when the tag was there already).
  if (!tagged->is({201}))
    co_return Result(boost::system::in_place_error,
                     "cannot tag runtime image " + repository + ":" + tag + ": " + tagged->message());
  co_return Result(boost::system::in_place_value, repository + ":" + tag);
}

asio::awaitable<boost::system::result<void, std::string>> RuntimeImages::pullOfficial(Runtime runtime,
                                                                                      ContainerImage& image) {
  // Handler files are bind-mounted from this host rather than baked in, so
  // the images are used exactly as published.
  std::string repository, tag;
  std::vector<std::string> command;
  std::vector<std::pair<std::string, std::string>> mounts;
  const auto& in = options_.inputs;
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
    pullOptions.timeout = options_.buildTimeout;
    pullOptions.maxBodyBytes = 16u << 20;
    auto pulled = co_await client_.request(http::verb::post, "/images/create?fromImage=" + repository + "&tag=" + tag,
                                           {}, pullOptions);
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

asio::awaitable<boost::system::result<void, std::string>> RuntimeImages::smokeTest(
    const std::string& image, const std::vector<std::string>& command) {
  json config = {{"Image", image},
                 {"Cmd", command},
                 {"User", options_.user},
                 {"Env", {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8"}},
                 {"Labels", {{"tinyfaas.node", options_.nodeId}, {"tinyfaas.purpose", "image-check"}}},
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
      auto output = co_await client_.request(http::verb::get, "/containers/" + id + "/logs?stdout=1&stderr=1&tail=10",
                                             {}, logOptions);
      std::string text;
      if (output && output->is({200})) {
        LogDemuxer demux(LogDemuxer::Framing::multiplexed, [&text](int, std::string_view line) {
          text += (text.empty() ? "" : " | ") + std::string(line);
        });
        demux.feed(output->body);
        demux.finish();
      }
      failure = "its check (" + command.front() + " ...) " + describeExit(status) + (text.empty() ? "" : ": " + text);
    }
  }
  co_await removeContainer(engine_, id);
  if (!failure.empty()) co_return failure;
  co_return boost::system::result<void, std::string>{};
}

// An image is deleted when its last node tag goes; the engine keeps one a
// container still runs from (409).
asio::awaitable<void> RuntimeImages::pruneOld(Runtime runtime, const std::string& keep) {
  const std::string repository = "tinyfaas-runtime-" + std::string(toString(runtime));
  const std::string ownSuffix = "-" + options_.nodeId;
  RequestOptions listOptions;
  listOptions.maxBodyBytes = kMaxListBytes;
  auto images = co_await client_.request(
      http::verb::get,
      "/images/json?filters=" + encodeQueryValue(labelFilter("tinyfaas.runtime=" + std::string(toString(runtime)))), {},
      listOptions);
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

}  // namespace tinyfaas::docker
