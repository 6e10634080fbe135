#include "daemon/daemon.hpp"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "api/management_api.hpp"
#include "api/upload_request.hpp"
#include "backend/docker/docker_backend.hpp"
#include "backend/process/process_backend.hpp"
#include "cluster/cluster_options.hpp"
#include "cluster/nats_transport.hpp"
#include "daemon/bound_ports.hpp"
#include "daemon/config_file.hpp"
#include "daemon/fd_limit.hpp"
#include "daemon/node.hpp"
#include "manager/log_store.hpp"
#include "net/listen_socket.hpp"
#include "sandbox/cgroup_limits.hpp"
#include "sandbox/sandbox_identity.hpp"

namespace tinyfaas {

namespace asio = boost::asio;

namespace {

void setUpLogging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("tinyfaas");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
  spdlog::set_level(spdlog::level::from_str(level));
}

// Runs a start-up step on the management loop from this thread (which will
// run that loop later) and returns its result: the steps before serving.
template <class T>
T runToCompletion(asio::io_context& io, asio::awaitable<T> task) {
  std::optional<T> result;
  asio::co_spawn(io, std::move(task), [&result](std::exception_ptr error, T value) {
    if (error) std::rethrow_exception(error);
    result.emplace(std::move(value));
  });
  while (!result && io.run_one() > 0) {
  }
  io.restart();
  return std::move(*result);
}

// --backend auto|docker|process: builds the backend, and for docker checks
// the engine and removes what an earlier run left before anything is served.
boost::system::result<std::unique_ptr<Backend>, std::string> selectBackend(const DaemonConfig& config,
                                                                           const sandbox::SandboxIdentity& identity,
                                                                           const sandbox::CgroupTree& cgroups,
                                                                           asio::io_context& management,
                                                                           LogSink& logs) {
  std::string choice = config.backend;
  auto socket = docker::parseDockerHost(config.dockerHost);
  if (!socket) {
    if (choice == "docker") return "--docker-host: " + socket.error();
    if (choice == "auto") spdlog::info("--backend auto: {}; using the process backend", socket.error());
    choice = "process";
  }
  if (choice == "auto") {
    auto probe = runToCompletion(
        management, probeDockerEngine(management.get_executor(), *socket, std::chrono::milliseconds(1000)));
    if (probe) {
      spdlog::info("--backend auto: a Docker engine answers on {}; using the docker backend", socket->string());
      choice = "docker";
    } else {
      spdlog::info("--backend auto: no usable Docker engine ({}); using the process backend", probe.error());
      choice = "process";
    }
  }

  if (choice == "docker") {
    DockerBackendOptions options;
    options.socket = *socket;
    options.stateDir = config.stateDir;
    options.images.runtimesDir = config.runtimesDir;
    options.images.binaryHandler = config.binaryHandler;
    options.images.node = config.node;
    options.images.python = config.python;
    options.imageSource = config.runtimeImages == "official" ? RuntimeImageSource::official : RuntimeImageSource::local;
    options.identity = identity;
    options.warmPool = config.warmPool;
    auto backend = DockerBackend::create(management.get_executor(), options, logs);
    if (!backend) return backend.error();
    DockerBackend& docker = **backend;
    if (auto connected = runToCompletion(management, docker.connect(std::chrono::seconds(10))); !connected)
      return connected.error();
    auto leftovers = runToCompletion(management, docker.removeLeftovers());
    if (!leftovers) return "cannot remove what an earlier run left in the Docker engine: " + leftovers.error();
    if (*leftovers > 0)
      spdlog::info("removed {} container(s) and network(s) an earlier run of node {} left behind", *leftovers,
                   docker.nodeId());
    return std::unique_ptr<Backend>(std::move(*backend));
  }

  ProcessBackendOptions backendOptions;
  backendOptions.runtimesDir = config.runtimesDir;
  backendOptions.binaryHandler = config.binaryHandler;
  backendOptions.node = config.node;
  backendOptions.python = config.python;
  backendOptions.sandbox = config.sandbox == "bwrap"  ? SandboxMode::bwrap
                           : config.sandbox == "none" ? SandboxMode::none
                                                      : SandboxMode::automatic;
  backendOptions.identity = identity;
  backendOptions.stateDir = config.stateDir;
  backendOptions.cgroups = cgroups;
  backendOptions.warmPool = config.warmPool;
  if (!cgroups.enforced())
    spdlog::warn(
        "the process backend cannot limit memory, pids and CPU of instances ({}); GET /functions shows "
        "limits.enforced false",
        cgroups.reason());
  auto backend = ProcessBackend::create(management.get_executor(), backendOptions, logs);
  if (!backend) return backend.error();
  if ((*backend)->describe().find("no sandbox") != std::string::npos)
    spdlog::warn("functions run as plain child processes with the daemon's rights; install bubblewrap to isolate them");
  return std::unique_ptr<Backend>(std::move(*backend));
}

// At start and on SIGHUP.
boost::system::result<AccessTokens, std::string> loadTokenFile(const std::filesystem::path& file) {
  auto loaded = AccessTokens::load(file);
  if (!loaded) return loaded.error();
  std::error_code ec;
  const auto perms = std::filesystem::status(file, ec).permissions();
  if (!ec && (perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all)) !=
                 std::filesystem::perms::none)
    spdlog::warn("token file {} can be read by other users; chmod 600 it", file.string());
  return loaded;
}

// SIGHUP re-reads the token file, as daemons re-read their configuration;
// runs on the management thread, which owns the API and its tokens.
void reloadTokens(const std::filesystem::path& file, ManagementApi& api) {
  if (file.empty()) {
    spdlog::info("received SIGHUP: nothing to reload (no --token-file); still serving");
    return;
  }
  auto loaded = loadTokenFile(file);
  if (!loaded) {
    spdlog::error("received SIGHUP: cannot reload tokens: {}; keeping the {} token(s) loaded before", loaded.error(),
                  api.tokenCount());
    return;
  }
  const std::size_t count = loaded->size();
  const std::size_t before = api.tokenCount();
  api.replaceTokens(std::move(*loaded));
  spdlog::info("received SIGHUP: reloaded tokens from {}: {} token(s) (was {})", file.string(), count, before);
}

// Everything the node is built with, from the configuration. Connection
// caps stay within the file descriptor limit: a quarter of the descriptors
// for the HTTP endpoint's connections, a sixteenth for the management API's;
// the rest stays for handler sockets, upstream connections, pipes, files
// and the other endpoints.
// Connects to NATS (in the background when no server answers yet: the node
// serves its own functions meanwhile) and refuses a node name a live
// daemon already has.
boost::system::result<std::unique_ptr<cluster::NatsTransport>, std::string> joinCluster(const DaemonConfig& config) {
  auto servers = cluster::parseServerList(config.cluster);
  if (!servers) return "--cluster: " + servers.error();
  auto nats =
      cluster::NatsTransport::connect({*servers, config.clusterCredentials.string(), "tinyfaas-" + config.nodeName});
  if (!nats) return "--cluster: " + nats.error();
  if (!(*nats)->connected()) {
    spdlog::warn("cluster: no NATS server answers yet; node {} serves its own functions and joins once one does",
                 config.nodeName);
    return std::move(*nats);
  }
  auto taken = cluster::nameInUse(**nats, config.nodeName, std::chrono::milliseconds(2500),
                                  [](std::chrono::milliseconds pause) { std::this_thread::sleep_for(pause); });
  if (!taken) spdlog::warn("cluster: cannot check whether node name {} is free: {}", config.nodeName, taken.error());
  if (taken && *taken)
    return "--node-name " + config.nodeName +
           ": a live node of the cluster has this name already (its heartbeat goes on); give each node its own name";
  spdlog::info("cluster: joined as node {} ({})", config.nodeName, config.cluster);
  return std::move(*nats);
}

NodeOptions nodeOptions(const DaemonConfig& config, const sandbox::SandboxIdentity& identity,
                        const sandbox::CgroupTree& cgroups, const FdLimit& fds, std::optional<AccessTokens> tokens) {
  auto withinFds = [&fds](const char* flag, std::size_t wanted, unsigned share) {
    const std::size_t cap = connectionsWithin(wanted, fds.soft, share);
    if (cap < wanted)
      spdlog::warn("{} {} lowered to {}: the file descriptor limit is {} (raise LimitNOFILE or ulimit -n)", flag,
                   wanted, cap, fds.soft);
    return cap;
  };
  NodeOptions options;
  options.asyncCalls.maxInFlight = config.asyncMaxCalls;
  options.asyncCalls.maxInFlightBytes = config.asyncBodyBytes;
  options.asyncCalls.limits.queuePerFunction = config.asyncQueueLimit;
  options.asyncCalls.limits.maxBytes = config.asyncStoreBytes;
  options.asyncCalls.limits.maxResults = config.asyncMaxResults;
  options.asyncCalls.limits.retention = std::chrono::seconds(config.asyncRetentionSeconds);
  options.mqttUrl = config.mqtt;
  options.mqttCa = config.mqttCa;
  options.mqttCredentials = config.mqttCredentials;

  ManagerOptions& manager = options.manager;
  manager.stateDir = config.stateDir;
  manager.npm = config.npm;
  manager.python = config.python;
  manager.go = config.go;
  manager.goProxy = config.goproxy;
  manager.goCacheBytes = static_cast<std::uintmax_t>(config.goCacheMb) << 20;
  manager.runtimesDir = config.runtimesDir;
  manager.upstream.callTimeout = std::chrono::seconds(config.callTimeoutSeconds);
  manager.upstream.maxResponseBytes = config.maxBodyBytes;
  manager.upstream.timeoutGrace = std::chrono::milliseconds(static_cast<long long>(config.timeoutGraceSeconds * 1000));
  manager.memoryBudgetMb = config.memoryBudgetMb;
  manager.budgetCounts = config.memoryBudgetCounts == "measured" ? ManagerOptions::BudgetCounts::measured
                                                                 : ManagerOptions::BudgetCounts::limit;
  manager.identity = identity;
  manager.cgroups = cgroups;
  manager.offline = config.offline;
  manager.installScripts = config.installScripts;

  if (config.httpPort >= 0) {
    HttpServerOptions& http = options.http.emplace();
    http.address = config.address;
    http.port = static_cast<std::uint16_t>(config.httpPort);
    http.maxBodyBytes = config.maxBodyBytes;
    http.maxConnections = withinFds("--max-connections", config.maxConnections, 4);
    http.maxBodyBytesInFlight = config.maxBodyBytesInFlight;
  }
  if (config.coapPort >= 0) {
    CoapOptions& coap = options.coap.emplace();
    coap.address = config.address;
    coap.port = static_cast<std::uint16_t>(config.coapPort);
    coap.maxPayloadBytes = config.maxBodyBytes;
    coap.maxUploads = config.coapMaxUploads;
    coap.maxUploadBytes = config.coapUploadBytes;
    // A backstop only: the proxy's own call timeout, the daemon's or the
    // function's, answers first.
    coap.callDeadline = std::chrono::seconds(std::max(config.callTimeoutSeconds, kMaxTimeoutSeconds) + 5);
  }
  if (config.grpcPort >= 0) {
    GrpcOptions& grpc = options.grpc.emplace();
    grpc.address = config.address;
    grpc.port = static_cast<std::uint16_t>(config.grpcPort);
    // The message wraps the payload in a few bytes of protobuf framing.
    grpc.limits.maxMessageBytes = config.maxBodyBytes + 1024;
    grpc.limits.maxPayloadBytes = config.maxBodyBytes;
    grpc.limits.maxInFlight = config.grpcMaxCalls;
    grpc.maxConnections = config.grpcMaxConnections;
    grpc.limits.maxInFlightBytes = config.grpcBodyBytes;
  }

  HttpServerOptions& management = options.management;
  management.address = config.managementAddress;
  management.port = static_cast<std::uint16_t>(config.managementPort);
  management.maxBodyBytes = config.maxUploadBytes;
  management.maxConnections = withinFds("--management-max-connections", config.managementMaxConnections, 16);
  // Two uploads at once (deploys take turns anyway).
  management.maxBodyBytesInFlight = 2 * config.maxUploadBytes;
  // An upload of --max-upload-bytes over a slow link takes minutes.
  management.readTimeout = std::chrono::seconds(900);

  options.api.downloads.maxBytes = config.maxUploadBytes;
  options.api.tokens = std::move(tokens);
  std::vector<AddressRange> allowed;
  for (const auto& range : config.uploadUrlAllow)
    allowed.push_back(*parseAddressRange(range));  // checked by finishConfig
  options.api.uploadUrlPolicy = AddressPolicy(std::move(allowed));
  options.shutdownTimeout = std::chrono::seconds(config.shutdownTimeoutSeconds);
  return options;
}

}  // namespace

int runDaemon(DaemonConfig config) {
  setUpLogging(config.logLevel);
  if (auto ok = finishConfig(config); !ok) {
    spdlog::error("{}", ok.error());
    return 2;
  }
  const FdLimit fds = raiseFdLimit();
  spdlog::info("file descriptors: soft limit {}{}, hard limit {}", fds.soft,
               fds.soft != fds.before ? " (raised from " + std::to_string(fds.before) + ")" : std::string(), fds.hard);
  // A file left by an earlier run would claim a readiness not reached yet.
  if (std::error_code ec; !config.portsFile.empty() && !std::filesystem::remove(config.portsFile, ec) && ec) {
    spdlog::error("--ports-file: cannot remove {}: {}", config.portsFile.string(), ec.message());
    return 2;
  }
  std::optional<AccessTokens> tokens;
  if (!config.tokenFile.empty()) {
    auto loaded = loadTokenFile(config.tokenFile);
    if (!loaded) {
      spdlog::error("{}", loaded.error());
      return 2;
    }
    tokens = std::move(*loaded);
  }

  // Two loops, one thread each: the data plane (frontends, router, upstream
  // connections) never waits for the management side (unzipping, npm,
  // starting processes), and neither needs a lock for its own state.
  asio::io_context dataPlane(1);
  asio::io_context management(1);
  auto dataPlaneWork = asio::make_work_guard(dataPlane);
  // Downloads for /uploadURL block in libcurl: one worker thread for them.
  asio::thread_pool downloads(1);
  // Taken from here on, so that a SIGHUP during start-up does not kill
  // (its default action); handled once the API exists.
  asio::signal_set hangups(management, SIGHUP);
  LogStore logs;

  // Who uploaded code runs as, decided once: handlers and installs of
  // both backends use it.
  const sandbox::SandboxIdentity identity = sandbox::resolveIdentity(config.sandboxUser, sandbox::currentCredentials());
  if (!identity.warning.empty()) spdlog::warn("{}", identity.warning);
  // Where the cgroups of process-backend instances and of dependency
  // installs (both backends) go.
  std::ifstream selfCgroup("/proc/self/cgroup");
  const std::string cgroupText((std::istreambuf_iterator<char>(selfCgroup)), std::istreambuf_iterator<char>());
  auto cgroups = sandbox::CgroupTree::detect("/sys/fs/cgroup", cgroupText, sandbox::cgroupNodeName(config.stateDir));
  if (cgroups.prepare(getpid()))
    spdlog::info("sandbox limits: cgroup {} under {}", cgroups.v2() ? "v2" : "v1", cgroups.parents().front().string());
  auto backend = selectBackend(config, identity, cgroups, management, logs);
  if (!backend) {
    spdlog::error("{}", backend.error());
    return 2;
  }
  spdlog::info("backend: {}", (*backend)->describe());

  std::string ipv6Missing;
  config.address = usableListenAddress(config.address, ipv6Missing);
  if (!ipv6Missing.empty()) spdlog::warn("{}", ipv6Missing);
  NodeOptions options = nodeOptions(config, identity, cgroups, fds, std::move(tokens));
  // Cluster mode: NATS calls block, so they get a thread of their own.
  asio::thread_pool clusterIo(1);
  std::unique_ptr<cluster::NatsTransport> nats;
  if (!config.cluster.empty()) {
    auto joined = joinCluster(config);
    if (!joined) {
      spdlog::error("{}", joined.error());
      return 2;
    }
    nats = std::move(*joined);
    ClusterSetup& cluster = options.cluster.emplace();
    cluster.nats = nats.get();
    cluster.io = clusterIo.get_executor();
    cluster.agent.nodeName = config.nodeName;
    cluster.forwarder.nodeName = config.nodeName;
    cluster.forwarder.maxBodyBytes = config.maxBodyBytes;
  }
  auto built = Node::create({dataPlane.get_executor(), management.get_executor(), downloads.get_executor()}, **backend,
                            logs, std::move(options));
  if (!built) {
    spdlog::error("{}", built.error().message);
    return built.error().status;
  }
  Node& node = **built;
  if (!config.tokenFile.empty()) {
    spdlog::info("management API: bearer tokens required ({} in {})", node.api().tokenCount(),
                 config.tokenFile.string());
  } else {
    spdlog::warn("management API: no --token-file, so no authentication: listening on loopback only");
  }
  node.start();
  std::function<void(boost::system::error_code, int)> onHangup = [&](boost::system::error_code ec, int) {
    if (ec) return;
    reloadTokens(config.tokenFile, node.api());
    hangups.async_wait(onHangup);
  };
  hangups.async_wait(onHangup);

  asio::signal_set signals(management, SIGINT, SIGTERM);
  auto signalName = [](int number) { return number == SIGINT ? "SIGINT" : "SIGTERM"; };
  // Later signals: the first of them ends the wait for calls in flight.
  std::function<void(boost::system::error_code, int)> onLaterSignal = [&](boost::system::error_code ec, int number) {
    if (ec) return;
    spdlog::warn("received {} again: cutting the wait for calls in flight short", signalName(number));
    node.hurry();
    signals.async_wait(onLaterSignal);
  };
  signals.async_wait([&](boost::system::error_code ec, int signalNumber) {
    if (ec) return;
    spdlog::info("received {}, shutting down", signalName(signalNumber));
    signals.async_wait(onLaterSignal);
    asio::co_spawn(
        management,
        [&]() -> asio::awaitable<void> {
          co_await node.stop();
          cgroups.release();
          // Nothing of the node is left on the loops: once the signal sets
          // and the work guard go too, both run out and their threads end.
          // Clearing them restores the default actions, so ignore these
          // signals instead: a repeated SIGTERM now must not turn a clean
          // exit into death by signal (status -15).
          boost::system::error_code ignored;
          for (asio::signal_set* set : {&signals, &hangups}) {
            set->clear(ignored);
            set->cancel(ignored);
          }
          for (int number : {SIGINT, SIGTERM, SIGHUP}) std::signal(number, SIG_IGN);
          dataPlaneWork.reset();
        },
        // An exception here is a bug: out of run(), not hidden by detached.
        [](std::exception_ptr error) {
          if (error) std::rethrow_exception(error);
        });
  });

  // Last, once SIGTERM is handled: whoever waits for the file may stop us.
  const BoundPorts bound = node.ports();
  spdlog::info("listening: {}", describe(bound));
  if (!config.portsFile.empty()) {
    if (auto written = writePortsFile(config.portsFile, bound); !written) {
      spdlog::error("{}", written.error());
      return 1;
    }
  }

  std::thread dataPlaneThread([&dataPlane] { dataPlane.run(); });
  // Returns once the node stopped: nothing of it is left on either loop.
  management.run();
  dataPlaneThread.join();
  downloads.join();
  clusterIo.join();
  if (std::error_code ignored; !config.portsFile.empty()) std::filesystem::remove(config.portsFile, ignored);
  spdlog::info("stopped");
  return 0;
}

void addServeCommand(CLI::App& app, int& exitCode) {
  struct Options {
    DaemonConfig config;
    std::filesystem::path file;
    bool print = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* serve = app.add_subcommand("serve", "Run the tinyFaaS platform (management API and function endpoints)");
  addDaemonOptions(*serve, options->config);
  serve
      ->add_option("--config", options->file,
                   "TOML file of settings, keys named as these flags without -- (flags and environment "
                   "variables override it)")
      ->envname("TINYFAAS_CONFIG");
  serve->add_flag("--print-config", options->print, "Print the effective configuration as a config file and exit");
  serve->callback([options, serve, &exitCode] {
    if (!options->file.empty()) {
      if (auto applied = applyConfigFile(options->file, *serve); !applied) {
        std::fprintf(stderr, "tinyfaas: %s\n", applied.error().c_str());
        exitCode = 2;
        return;
      }
    }
    if (options->print) {
      if (auto finished = finishConfig(options->config); !finished) {
        std::fprintf(stderr, "tinyfaas: %s\n", finished.error().c_str());
        exitCode = 2;
        return;
      }
      std::fputs(formatConfig(options->config).c_str(), stdout);
      exitCode = 0;
      return;
    }
    exitCode = runDaemon(options->config);
  });
}

}  // namespace tinyfaas
