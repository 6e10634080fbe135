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
// Standbys (backend/standby/): containers of a runtime's image started
// ahead of need with the same hardening, no network, no function's
// environment and an empty folder of their own where the code goes. A
// handover hard-links the function's code into that folder, sets its
// limits (POST /containers/{id}/update) and sends its folder and
// environment over a control socket the handler connects to in its
// socket directory. From then on the container's output, end and id are
// the instance's; its labels stay the standby's.
//
// Everything created carries the labels tinyfaas.node (a random id kept in
// <state dir>/node-id), tinyfaas.function and tinyfaas.instance, so that
// removeLeftovers() finds what a crashed earlier run left behind.
//
// This class starts and stops instances and sweeps leftovers; the rest is in
// runtime_images.hpp (the images on the engine), egress_networks.hpp,
// container_config.hpp (the create body) and container_watch.hpp (logs,
// end, socket directory lock of a running container).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/result.hpp>

#include "backend/backend.hpp"
#include "backend/docker/container_config.hpp"
#include "backend/docker/container_watch.hpp"
#include "backend/docker/egress_networks.hpp"
#include "backend/docker/engine_client.hpp"
#include "backend/docker/runtime_images.hpp"
#include "backend/standby/handler_control.hpp"
#include "backend/standby/warm_pool.hpp"
#include "core/log_sink.hpp"
#include "sandbox/sandbox_identity.hpp"

namespace tinyfaas {

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
  // Standbys kept per runtime of the deployed functions; 0: none.
  std::size_t warmPool = 1;
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
  // Hands the instance a standby when one is up, its function has no
  // egress and sets no variable its interpreter reads only at start, and
  // returns once the handler says it serves (at most kReadyWait). Else
  // creates a container of its own and returns once it runs.
  boost::asio::awaitable<boost::system::result<std::unique_ptr<Instance>, std::string>> start(
      InstanceSpec spec, ExitCallback onExit) override;
  boost::asio::awaitable<void> stop(Instance& instance) override;
  // prepareImages(), its failure logged; then runs the warm pool until cancel().
  boost::asio::awaitable<void> prepare() override;
  // Ends a runtime image build in progress and the warm pool.
  void cancel() override;
  void keepWarm(const std::set<Runtime>& runtimes) override;
  std::map<Runtime, std::size_t> standbys() override;

  static constexpr std::chrono::seconds kReadyWait{5};
  // How long a standby's handler may take to connect to its control socket.
  static constexpr std::chrono::seconds kConnectWait{10};

  const std::string& nodeId() const { return nodeId_; }
  std::string containerName(const InstanceSpec& spec) const;
  std::string networkName(const std::string& function) const;
  // Removes this node's tags of `runtime`'s images other than `keep`, and
  // an image whose last node tag that was (exposed for tests).
  boost::asio::awaitable<void> pruneOldImages(Runtime runtime, const std::string& keep);
  // The body of POST /containers/create for an instance (exposed for tests).
  std::string containerConfig(const InstanceSpec& spec, const std::string& image,
                              const std::vector<std::string>& command) const;
  // What a standby container of `launcher` is created as (exposed for tests).
  InstanceSpec standbySpec(Runtime launcher, int number) const;

 private:
  class ContainerInstance;
  class ContainerStandby;

  DockerBackend(boost::asio::any_io_executor executor, DockerBackendOptions options, LogSink& logs, std::string nodeId);

  void makeReadable(const std::filesystem::path& codeDir);
  // Creates and starts the container of `spec`, and follows it.
  boost::asio::awaitable<boost::system::result<std::unique_ptr<ContainerInstance>, std::string>> runContainer(
      const InstanceSpec& spec, ExitCallback onExit);
  boost::asio::awaitable<boost::system::result<std::unique_ptr<Standby>, std::string>> startStandby(Runtime launcher);
  boost::asio::awaitable<boost::system::result<std::unique_ptr<Instance>, std::string>> handOver(
      std::unique_ptr<ContainerStandby> standby, const InstanceSpec& spec, const ExitCallback& onExit);

  boost::asio::any_io_executor executor_;
  DockerBackendOptions options_;
  LogSink& logs_;
  std::string nodeId_;
  docker::EngineClient client_;
  std::string engineVersion_;
  unsigned uid_;
  unsigned gid_;
  docker::ContainerSettings containerSettings_;
  docker::RuntimeImages images_;
  docker::EgressNetworks networks_;
  docker::ContainerWatcher watcher_;
  std::set<std::string> readableCodeDirs_;
  std::unique_ptr<WarmPool> pool_;  // null with warmPool 0
  int nextStandby_ = 0;
  ReadyWaits readyWaits_;  // cancel() cuts them short
};

// Whether a Docker engine answers GET /_ping on `socket` within `timeout`
// (for --backend auto); the error says why not.
boost::asio::awaitable<boost::system::result<void, std::string>> probeDockerEngine(
    boost::asio::any_io_executor executor, std::filesystem::path socket, std::chrono::milliseconds timeout);

// The id in <stateDir>/node-id, created (random, 12 hex digits) on first use
// so that it stays the same across restarts on this state directory.
boost::system::result<std::string, std::string> loadNodeId(const std::filesystem::path& stateDir);

}  // namespace tinyfaas
