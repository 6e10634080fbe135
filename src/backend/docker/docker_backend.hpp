#pragma once
// Handler instances as Docker containers, one per instance, through the
// Docker Engine API (never the docker CLI).
//
// Every container comes from its runtime's image (built once from the host's
// runtime, see runtime_image.hpp), so a deploy builds nothing: the function's
// code is bind-mounted read-only at its own path and the instance's socket
// directory read-write at its own path, so the manager's socket path works
// unchanged. Hardening by default: no network (a dedicated bridge network per
// function only when it asked for egress), user 10001, read-only root file
// system with a small tmpfs /tmp, all capabilities dropped,
// no-new-privileges, a pids limit, and the function's memory (without swap)
// and CPU limits.
//
// An instance's end is seen twice: through a pidfd on its handler process,
// at once (the engine's /wait answers 50-150 ms later, and calls routed to a
// dead instance fail meanwhile), and through the engine's /wait long-poll
// with the exit status and whether the OOM killer struck, which goes to the
// logs. Before the handler has bound its socket only the engine's account
// counts, so a failed start is reported with the instance's last output.
//
// Everything created carries the labels tinyfaas.node (a random id kept in
// <state dir>/node-id), tinyfaas.function and tinyfaas.instance, so that
// removeLeftovers() finds what a crashed earlier run left behind.

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/system/result.hpp>

#include "backend/backend.hpp"
#include "sandbox/sandbox_identity.hpp"
#include "backend/docker/engine_client.hpp"
#include "backend/docker/runtime_image.hpp"
#include "core/log_sink.hpp"
#include "util/async_sync.hpp"

namespace tinyfaas {

// Where runtime images come from: built from this host's runtime (default;
// works offline), or the official node/python/debian images pulled from a
// registry (only where one is reachable; not exercised by the tests here).
enum class RuntimeImageSource { local, official };

struct DockerBackendOptions {
  std::filesystem::path socket = "/var/run/docker.sock";
  std::filesystem::path stateDir;  // holds node-id and, while building, image tars
  docker::RuntimeImageInputs images;
  RuntimeImageSource imageSource = RuntimeImageSource::local;
  std::chrono::milliseconds stopGrace{3000};
  std::int64_t pidsLimit = 256;
  std::int64_t tmpfsBytes = 64 << 20;  // /tmp, counted against the memory limit
  std::int64_t shmBytes = 16 << 20;    // /dev/shm
  std::chrono::seconds imageBuildTimeout{900};
  // Who containers run as (numeric User S:G, as process-backend handlers);
  // without a switch: the image's user as root, else the daemon's own uid.
  sandbox::SandboxIdentity identity;
};

class DockerBackend final : public Backend {
 public:
  // Reads or creates the node id; talks to no engine yet.
  static boost::system::result<std::unique_ptr<DockerBackend>, std::string> create(
      boost::asio::any_io_executor executor, DockerBackendOptions options, LogSink& logs);
  ~DockerBackend() override;

  // GET /_ping and /version within `timeout`; checks the API version.
  boost::asio::awaitable<boost::system::result<void, std::string>> connect(std::chrono::milliseconds timeout);
  const std::string& engineVersion() const { return engineVersion_; }
  // Removes the containers and networks labelled with this node's id: what an
  // earlier run that crashed left behind. Returns how many were removed.
  boost::asio::awaitable<boost::system::result<std::size_t, std::string>> removeLeftovers();
  // Finds or builds the image of every runtime (logging the time taken).
  // start() waits for a build in progress and retries one that failed.
  boost::asio::awaitable<boost::system::result<void, std::string>> prepareImages();

  std::string describe() const override;
  boost::asio::awaitable<boost::system::result<std::unique_ptr<Instance>, std::string>> start(
      InstanceSpec spec, ExitCallback onExit) override;
  boost::asio::awaitable<void> stop(Instance& instance) override;

  const std::string& nodeId() const { return nodeId_; }
  std::string containerName(const InstanceSpec& spec) const;
  std::string networkName(const std::string& function) const;
  // Removes this node's tags of `runtime`'s images other than `keep`, and
  // an image whose last node tag that was (exposed for tests).
  boost::asio::awaitable<void> pruneOldImages(Runtime runtime, const std::string& keep);
  // The body of POST /containers/create for an instance (exposed for tests).
  std::string containerConfig(const InstanceSpec& spec, const std::string& image,
                              const std::vector<std::string>& command) const;

 private:
  struct ImageState;
  struct NetworkState {
    int users = 0;  // instances started on it and not yet stopped
    bool exists = false;
  };
  struct Container;
  class ContainerInstance;

  DockerBackend(boost::asio::any_io_executor executor, DockerBackendOptions options, LogSink& logs,
                std::string nodeId);

  boost::asio::awaitable<boost::system::result<const ImageState*, std::string>> ensureImage(Runtime runtime);
  boost::asio::awaitable<boost::system::result<void, std::string>> buildLocalImage(Runtime runtime, ImageState& image);
  boost::asio::awaitable<boost::system::result<void, std::string>> pullOfficialImage(Runtime runtime,
                                                                                     ImageState& image);
  boost::asio::awaitable<boost::system::result<void, std::string>> smokeTest(const std::string& image,
                                                                             const std::vector<std::string>& command);
  // Adds this node's tag to REPOSITORY:CONTENT_TAG; returns the reference
  // with it, which the node's containers use.
  boost::asio::awaitable<boost::system::result<std::string, std::string>> claimImage(const std::string& repository,
                                                                                       const std::string& contentTag);
  std::string nodeImageTag(const std::string& contentTag) const;
  boost::asio::awaitable<boost::system::result<std::string, std::string>> createContainer(
      const std::string& name, const std::string& config);
  boost::asio::awaitable<void> removeContainer(const std::string& id);
  boost::asio::awaitable<boost::system::result<void, std::string>> acquireNetwork(const std::string& function);
  boost::asio::awaitable<void> releaseNetwork(const std::string& function);
  boost::asio::awaitable<void> watch(std::shared_ptr<Container> container);
  boost::asio::awaitable<void> watchProcess(std::shared_ptr<Container> container);
  void notifyExit(const std::shared_ptr<Container>& container, std::string how);
  boost::asio::awaitable<void> pumpLogs(std::shared_ptr<Container> container);
  boost::asio::awaitable<void> lockSocketDir(std::shared_ptr<Container> container);
  void makeReadable(const std::filesystem::path& codeDir);
  static std::vector<std::string> securityOptions();
  std::vector<std::string> environment(const InstanceSpec& spec) const;

  boost::asio::any_io_executor executor_;
  DockerBackendOptions options_;
  LogSink& logs_;
  std::string nodeId_;
  docker::EngineClient client_;
  std::string engineVersion_;
  unsigned uid_;
  unsigned gid_;
  std::array<std::unique_ptr<ImageState>, 3> images_;
  std::map<std::string, NetworkState> networks_;
  AsyncMutex networkMutex_;  // held while a network is created or removed
  std::set<std::string> readableCodeDirs_;
  // Hashing and packing runtime images reads ~150 MB: kept off the loop.
  boost::asio::thread_pool worker_{1};
};

// Whether a Docker engine answers GET /_ping on `socket` within `timeout`
// (for --backend auto); the error says why not.
boost::asio::awaitable<boost::system::result<void, std::string>> probeDockerEngine(
    boost::asio::any_io_executor executor, std::filesystem::path socket, std::chrono::milliseconds timeout);

// The id in <stateDir>/node-id, created (random, 12 hex digits) on first use
// so that it stays the same across restarts on this state directory.
boost::system::result<std::string, std::string> loadNodeId(const std::filesystem::path& stateDir);

}  // namespace tinyfaas
