#include "daemon/daemon.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <functional>
#include <memory>
#include <optional>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "backend/docker/docker_backend.hpp"
#include "backend/process/process_backend.hpp"
#include "daemon/config_file.hpp"
#include "daemon/fd_limit.hpp"
#include "daemon/graceful_shutdown.hpp"
#include "frontend/coap/coap_frontend.hpp"
#include "frontend/grpc/grpc_frontend.hpp"
#include "frontend/http/http_frontend.hpp"
#include "manager/function_manager.hpp"
#include "manager/log_store.hpp"
#include "api/management_api.hpp"
#include "api/upload_request.hpp"
#include "metrics/metered_invoker.hpp"
#include "net/listen_socket.hpp"
#include "proxy/proxy.hpp"
#include "proxy/router.hpp"
#include "sandbox/cgroup_limits.hpp"
#include "sandbox/sandbox_identity.hpp"
#include "util/run_on.hpp"

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
    // Built (or found up to date) in the background; deploys wait for their
    // runtime's image, so the API answers at once even on a first start.
    asio::co_spawn(
        management,
        [&docker]() -> asio::awaitable<void> {
          if (auto ready = co_await docker.prepareImages(); !ready)
            spdlog::error("runtime images: {}; deploys will try again", ready.error());
        },
        asio::detached);
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
  if (!cgroups.enforced())
    spdlog::warn("the process backend cannot limit memory, pids and CPU of instances ({}); GET /functions shows "
                 "limits.enforced false", cgroups.reason());
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
  // A quarter of the descriptors for the HTTP endpoint's connections, a
  // sixteenth for the management API's: the rest stays for handler sockets,
  // upstream connections, pipes, files and the other endpoints.
  auto withinFds = [&fds](const char* flag, std::size_t wanted, unsigned share) {
    const std::size_t cap = connectionsWithin(wanted, fds.soft, share);
    if (cap < wanted)
      spdlog::warn("{} {} lowered to {}: the file descriptor limit is {} (raise LimitNOFILE or ulimit -n)", flag,
                   wanted, cap, fds.soft);
    return cap;
  };
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
  // Taken from here on, so that a SIGHUP during start-up does not kill
  // (its default action); handled once the API exists.
  asio::signal_set hangups(management, SIGHUP);

  const metrics::StartTime started;
  Router router;
  ProxyOptions proxyOptions;
  proxyOptions.maxDetachedCalls = config.asyncMaxCalls;
  proxyOptions.maxDetachedBytes = config.asyncBodyBytes;
  Proxy proxy(dataPlane.get_executor(), router, proxyOptions);
  // Each frontend calls through its own metered view of the proxy.
  metrics::CallMetrics callMetrics(dataPlane.get_executor(), router);
  metrics::MeteredInvoker httpInvoker(proxy, callMetrics, metrics::Protocol::http);
  metrics::MeteredInvoker coapInvoker(proxy, callMetrics, metrics::Protocol::coap);
  metrics::MeteredInvoker grpcInvoker(proxy, callMetrics, metrics::Protocol::grpc);
  LogStore logs;

  // Who uploaded code runs as, decided once: handlers and installs of
  // both backends use it.
  const sandbox::SandboxIdentity identity =
      sandbox::resolveIdentity(config.sandboxUser, sandbox::currentCredentials());
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

  ManagerOptions managerOptions;
  managerOptions.stateDir = config.stateDir;
  managerOptions.npm = config.npm;
  managerOptions.python = config.python;
  managerOptions.go = config.go;
  managerOptions.goProxy = config.goproxy;
  managerOptions.goCacheBytes = static_cast<std::uintmax_t>(config.goCacheMb) << 20;
  managerOptions.runtimesDir = config.runtimesDir;
  managerOptions.upstream.callTimeout = std::chrono::seconds(config.callTimeoutSeconds);
  managerOptions.upstream.maxResponseBytes = config.maxBodyBytes;
  managerOptions.upstream.timeoutGrace =
      std::chrono::milliseconds(static_cast<long long>(config.timeoutGraceSeconds * 1000));
  managerOptions.memoryBudgetMb = config.memoryBudgetMb;
  managerOptions.identity = identity;
  managerOptions.cgroups = cgroups;
  managerOptions.offline = config.offline;
  managerOptions.installScripts = config.installScripts;
  FunctionManager manager(management.get_executor(), dataPlane.get_executor(), router, **backend, logs,
                          managerOptions);
  if (auto ok = manager.prepareStateDir(); !ok) {
    spdlog::error("{}", ok.error());
    return 2;
  }
  spdlog::info("state directory: {}", config.stateDir.string());
  if (auto kept = logs.keepIn(config.stateDir / "logs", management.get_executor()); !kept) {
    spdlog::error("logs: {}", kept.error());
    return 2;
  }
  manager.startScaling();

  std::string ipv6Missing;
  config.address = usableListenAddress(config.address, ipv6Missing);
  if (!ipv6Missing.empty()) spdlog::warn("{}", ipv6Missing);
  std::unique_ptr<HttpServer> httpFrontend;
  if (config.httpPort >= 0) {
    HttpServerOptions options;
    options.address = config.address;
    options.port = static_cast<std::uint16_t>(config.httpPort);
    options.maxBodyBytes = config.maxBodyBytes;
    options.maxConnections = withinFds("--max-connections", config.maxConnections, 4);
    options.maxBodyBytesInFlight = config.maxBodyBytesInFlight;
    auto server = startHttpFrontend(dataPlane.get_executor(), httpInvoker, options);
    if (!server) {
      spdlog::error("HTTP endpoint: {}", server.error());
      return 1;
    }
    httpFrontend = std::move(*server);
    spdlog::info("HTTP endpoint on {}", formatListenAddress(config.address, httpFrontend->port()));
  }
  std::unique_ptr<CoapFrontend> coapFrontend;
  if (config.coapPort >= 0) {
    CoapOptions options;
    options.address = config.address;
    options.port = static_cast<std::uint16_t>(config.coapPort);
    options.maxPayloadBytes = config.maxBodyBytes;
    options.maxUploads = config.coapMaxUploads;
    options.maxUploadBytes = config.coapUploadBytes;
    // A backstop only: the proxy's own call timeout, the daemon's or the
    // function's, answers first.
    options.callDeadline = std::chrono::seconds(std::max(config.callTimeoutSeconds, kMaxTimeoutSeconds) + 5);
    auto frontend = CoapFrontend::create(dataPlane.get_executor(), coapInvoker, options);
    if (!frontend) {
      spdlog::error("CoAP endpoint: {}", frontend.error());
      return 1;
    }
    coapFrontend = std::move(*frontend);
    spdlog::info("CoAP endpoint on {}/udp", formatListenAddress(config.address, coapFrontend->port()));
  }
  std::unique_ptr<GrpcFrontend> grpcFrontend;
  if (config.grpcPort >= 0) {
    GrpcOptions options;
    options.address = config.address;
    options.port = static_cast<std::uint16_t>(config.grpcPort);
    // The message wraps the payload in a few bytes of protobuf framing.
    options.maxMessageBytes = config.maxBodyBytes + 1024;
    options.maxPayloadBytes = config.maxBodyBytes;
    options.maxInFlight = config.grpcMaxCalls;
    options.maxConnections = config.grpcMaxConnections;
    options.maxInFlightBytes = config.grpcBodyBytes;
    auto frontend = GrpcFrontend::create(dataPlane.get_executor(), grpcInvoker, options);
    if (!frontend) {
      spdlog::error("gRPC endpoint: {}", frontend.error());
      return 1;
    }
    grpcFrontend = std::move(*frontend);
    spdlog::info("gRPC endpoint on {}", formatListenAddress(config.address, grpcFrontend->port()));
  }

  EndpointPorts ports;
  ports.http = httpFrontend ? httpFrontend->port() : -1;
  ports.coap = coapFrontend ? coapFrontend->port() : -1;
  ports.grpc = grpcFrontend ? grpcFrontend->port() : -1;
  // Downloads for /uploadURL block in libcurl: one worker thread for them.
  asio::thread_pool downloads(1);
  ManagementApiOptions apiOptions;
  apiOptions.ports = ports;
  apiOptions.downloads.maxBytes = config.maxUploadBytes;
  apiOptions.calls = &callMetrics;
  apiOptions.started = started;
  apiOptions.tokens = std::move(tokens);
  std::vector<AddressRange> allowed;
  for (const auto& range : config.uploadUrlAllow) allowed.push_back(*parseAddressRange(range));  // checked by finishConfig
  apiOptions.uploadUrlPolicy = AddressPolicy(std::move(allowed));
  ManagementApi api(manager, logs, downloads.get_executor(), apiOptions);
  // Runs once the loops do: restored functions are listed at once and
  // answer as soon as an instance is healthy (503 until then); /readyz
  // says 200 when all of them started or were given up on.
  asio::co_spawn(
      management,
      [&]() -> asio::awaitable<void> {
        co_await manager.restore();
        api.markReady();
        spdlog::info("ready: stored functions restored, endpoints listening");
      },
      asio::detached);
  std::function<void(boost::system::error_code, int)> onHangup = [&](boost::system::error_code ec, int) {
    if (ec) return;
    reloadTokens(config.tokenFile, api);
    hangups.async_wait(onHangup);
  };
  hangups.async_wait(onHangup);
  HttpServerOptions managementOptions;
  managementOptions.address = config.managementAddress;
  managementOptions.port = static_cast<std::uint16_t>(config.managementPort);
  managementOptions.maxBodyBytes = config.maxUploadBytes;
  managementOptions.maxConnections = withinFds("--management-max-connections", config.managementMaxConnections, 16);
  // Two uploads at once (deploys take turns anyway).
  managementOptions.maxBodyBytesInFlight = 2 * config.maxUploadBytes;
  // An upload of --max-upload-bytes over a slow link takes minutes.
  managementOptions.readTimeout = std::chrono::seconds(900);
  auto managementServer = HttpServer::create(
      management.get_executor(), managementOptions, [&api](HttpRequest& request) { return api.handle(request); },
      [&api](HttpRequest& request, boost::beast::tcp_stream& connection) { return api.stream(request, connection); },
      [&api](const HttpRequest& header) { return api.admit(header); });
  if (!managementServer) {
    spdlog::error("management API: {}", managementServer.error());
    return 1;
  }
  spdlog::info("management API on {}", formatListenAddress(config.managementAddress, (*managementServer)->port()));
  if (apiOptions.tokens) {
    spdlog::info("management API: bearer tokens required ({} in {})", apiOptions.tokens->size(),
                 config.tokenFile.string());
  } else {
    spdlog::warn("management API: no --token-file, so no authentication: listening on loopback only");
  }

  // Asynchronous calls have nobody waiting for an answer: drained like the
  // others, but cutting them short leaves them to end with their instances.
  struct AsyncCalls final : Drainable {
    explicit AsyncCalls(const Proxy& p) : proxy(p) {}
    const Proxy& proxy;
    void stopAccepting() override {}
    std::size_t callsInFlight() const override { return proxy.detachedCalls(); }
    void cutShort(std::string_view) override {}
  } asyncCalls(proxy);
  std::vector<DrainTarget> drainTargets;
  if (httpFrontend) drainTargets.push_back({"HTTP", httpFrontend.get(), dataPlane.get_executor()});
  if (coapFrontend) drainTargets.push_back({"CoAP", coapFrontend.get(), dataPlane.get_executor()});
  if (grpcFrontend) drainTargets.push_back({"gRPC", grpcFrontend.get(), dataPlane.get_executor()});
  drainTargets.push_back({"asynchronous", &asyncCalls, dataPlane.get_executor()});
  drainTargets.push_back({"management API", managementServer->get(), management.get_executor()});
  GracefulShutdown shutdown(std::move(drainTargets), std::chrono::seconds(config.shutdownTimeoutSeconds));

  asio::signal_set signals(management, SIGINT, SIGTERM);
  auto signalName = [](int number) { return number == SIGINT ? "SIGINT" : "SIGTERM"; };
  // Later signals: the first of them ends the wait for calls in flight.
  std::function<void(boost::system::error_code, int)> onLaterSignal = [&](boost::system::error_code ec, int number) {
    if (ec) return;
    spdlog::warn("received {} again: cutting the wait for calls in flight short", signalName(number));
    shutdown.hurry();
    signals.async_wait(onLaterSignal);
  };
  signals.async_wait([&](boost::system::error_code ec, int signalNumber) {
    if (ec) return;
    spdlog::info("received {}, shutting down", signalName(signalNumber));
    signals.async_wait(onLaterSignal);
    asio::co_spawn(
        management,
        [&]() -> asio::awaitable<void> {
          co_await api.endStreams();
          co_await shutdown.drain();
          auto stopFrontends = [&] {
            if (coapFrontend) coapFrontend->stop();
            if (grpcFrontend) grpcFrontend->stop();
          };
          co_await runOn(dataPlane.get_executor(), stopFrontends);
          co_await manager.shutdown();
          cgroups.release();
          dataPlaneWork.reset();
          dataPlane.stop();
          management.stop();
        },
        asio::detached);
  });

  std::thread dataPlaneThread([&] { dataPlane.run(); });
  management.run();
  dataPlaneThread.join();
  downloads.join();
  logs.flush();  // _Exit below runs no destructor
  spdlog::info("stopped");
  // Every instance is stopped and every endpoint closed. What remains are
  // coroutine frames suspended on the stopped loops; destroying them would
  // run destructors against objects they outlived (the loops are declared
  // first, so they are destroyed last). Leave the way most daemons do.
  spdlog::shutdown();
  std::fflush(nullptr);
  std::_Exit(0);
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
  serve->add_option("--config", options->file,
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
