#pragma once
// The node's runtime images on the engine: found, built from this host's
// runtimes (runtime_image.hpp plans them) or pulled, smoke-tested, tagged
// for this node and pruned. One image per runtime; go functions use the
// binary runtime's image.
//
// Every node tags the images it uses with its node id (CONTENT-NODE) and
// removes only its own tags: another node on the same engine may still use
// an older image.

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/system/result.hpp>

#include "backend/docker/container_config.hpp"
#include "backend/docker/engine_client.hpp"
#include "backend/docker/runtime_image.hpp"
#include "core/runtime.hpp"
#include "util/async_sync.hpp"

namespace tinyfaas {

// Where runtime images come from: built from this host's runtime (default;
// works offline), or the official node/python/debian images pulled from a
// registry (only where one is reachable; not exercised by the tests here).
enum class RuntimeImageSource { local, official };

namespace docker {

struct RuntimeImagesOptions {
  RuntimeImageInputs inputs;
  RuntimeImageSource source = RuntimeImageSource::local;
  std::filesystem::path stateDir;  // image tars while building: STATE/images
  std::chrono::seconds buildTimeout{900};
  std::string nodeId;
  std::string user;  // numeric "UID:GID" the smoke test runs as
  std::int64_t pidsLimit = 256;
};

// Lives on its executor's thread; builds read and hash on a worker thread.
class RuntimeImages {
 public:
  // `engine` removes smoke-test containers, also after cancel(); the builds
  // talk to the engine over a client of their own, which cancel() closes.
  RuntimeImages(boost::asio::any_io_executor executor, EngineClient& engine, RuntimeImagesOptions options);
  RuntimeImages(const RuntimeImages&) = delete;
  RuntimeImages& operator=(const RuntimeImages&) = delete;
  ~RuntimeImages();

  // Finds or builds every runtime's image (logging the time taken).
  boost::asio::awaitable<boost::system::result<void, std::string>> prepareAll();
  // The image `runtime` runs from, found or built first; waits for a build
  // in progress and retries one that failed.
  boost::asio::awaitable<boost::system::result<const ContainerImage*, std::string>> ensure(Runtime runtime);
  // What is known of `runtime`'s image (empty reference before ensure()).
  const ContainerImage& known(Runtime runtime) const;
  // The engine lost the image (docker image prune): the next ensure() builds it again.
  void forget(Runtime runtime);
  // Removes this node's tags of `runtime`'s images other than `keep`, and
  // an image whose last node tag that was.
  boost::asio::awaitable<void> pruneOld(Runtime runtime, const std::string& keep);
  // Shutdown: a build or pull in progress ends at its next step (its engine
  // request is cut; hashing or packing on the worker finishes first), and
  // it and every later ensure() fail.
  void cancel();
  bool cancelled() const { return cancelled_; }

 private:
  struct Slot {
    explicit Slot(boost::asio::any_io_executor executor) : buildEnded(std::move(executor)) {}
    ContainerImage image;
    bool building = false;
    AsyncEvent buildEnded;  // wakes the deploys that wait for a build
  };

  Slot& slot(Runtime runtime);
  boost::asio::awaitable<boost::system::result<void, std::string>> buildLocal(Runtime runtime, ContainerImage& image);
  boost::asio::awaitable<boost::system::result<void, std::string>> pullOfficial(Runtime runtime, ContainerImage& image);
  boost::asio::awaitable<boost::system::result<void, std::string>> smokeTest(const std::string& image,
                                                                             const std::vector<std::string>& command);
  // Adds this node's tag to REPOSITORY:CONTENT_TAG; returns the reference
  // with it, which the node's containers use.
  boost::asio::awaitable<boost::system::result<std::string, std::string>> claim(const std::string& repository,
                                                                                const std::string& contentTag);

  EngineClient& engine_;
  EngineClient client_;
  RuntimeImagesOptions options_;
  bool cancelled_ = false;
  std::array<std::unique_ptr<Slot>, 3> slots_;
  // Hashing and packing runtime images reads ~150 MB: kept off the loop.
  boost::asio::thread_pool worker_{1};
};

}  // namespace docker
}  // namespace tinyfaas
