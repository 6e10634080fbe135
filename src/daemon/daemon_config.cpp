#include "daemon/daemon_config.hpp"

#include <unistd.h>

#include <cstdlib>
#include <limits>

#include <boost/asio/ip/address.hpp>

#include "cluster/cluster_options.hpp"
#include "manager/address_policy.hpp"
#include "util/install_paths.hpp"

namespace tinyfaas {

namespace fs = std::filesystem;

#ifndef TINYFAAS_SOURCE_RUNTIMES_DIR
#define TINYFAAS_SOURCE_RUNTIMES_DIR ""
#endif
#ifndef TINYFAAS_BUILD_BINARY_HANDLER
#define TINYFAAS_BUILD_BINARY_HANDLER ""
#endif

void addDaemonOptions(CLI::App& command, DaemonConfig& config) {
  command
      .add_option("--management-address", config.managementAddress,
                  "Address of the management API (keep it on loopback unless the network is trusted)")
      ->capture_default_str();
  command
      .add_option("--token-file", config.tokenFile,
                  "Bearer tokens for the management API, one 'TOKEN TENANT ROLE' per line (ROLE admin or "
                  "tenant); without it the API has no authentication and listens on loopback only")
      ->envname("TINYFAAS_TOKEN_FILE");
  command
      .add_option("--management-port", config.managementPort, "Port of the management API, 0 for one the kernel picks")
      ->capture_default_str();
  command
      .add_option("--address", config.address,
                  "Address the function endpoints listen on; :: is IPv6 and IPv4 (0.0.0.0 for IPv4 only)")
      ->capture_default_str();
  command.add_option("--http-port", config.httpPort, "HTTP endpoint port, -1 disables it, 0 lets the kernel pick one")
      ->envname("HTTP_PORT")
      ->capture_default_str();
  command
      .add_option("--coap-port", config.coapPort,
                  "CoAP endpoint port (UDP), -1 disables it, 0 lets the kernel pick one")
      ->envname("COAP_PORT")
      ->capture_default_str();
  command.add_option("--grpc-port", config.grpcPort, "gRPC endpoint port, -1 disables it, 0 lets the kernel pick one")
      ->envname("GRPC_PORT")
      ->capture_default_str();
  command.add_option("--ports-file", config.portsFile,
                     "Write the bound ports as JSON to this file once every endpoint listens (its existence means "
                     "ready to accept); useful with port 0");
  command
      .add_option("--state-dir", config.stateDir,
                  "Where function code and handler sockets live "
                  "(default /var/lib/tinyfaas as root, else $XDG_STATE_HOME/tinyfaas)")
      ->envname("TINYFAAS_STATE_DIR");
  // The last --backend wins, so scripts can override one given earlier.
  command
      .add_option("--backend", config.backend,
                  "Where handlers run: docker (containers), process (sandboxed child processes) or auto "
                  "(docker when its engine answers within 1 s, else process)")
      ->check(CLI::IsMember({"auto", "docker", "process"}))
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();
  command
      .add_option("--docker-host", config.dockerHost,
                  "Docker engine socket, unix:///path (default unix:///var/run/docker.sock)")
      ->envname("DOCKER_HOST");
  command
      .add_option("--runtime-images", config.runtimeImages,
                  "Docker backend runtime images: local (built offline from this host's node and python, "
                  "default) or official (node/python/debian images pulled from a registry)")
      ->check(CLI::IsMember({"local", "official"}))
      ->capture_default_str();
  command
      .add_option("--sandbox", config.sandbox,
                  "Process backend isolation: auto (bubblewrap when installed), bwrap (required) or none")
      ->check(CLI::IsMember({"auto", "bwrap", "none"}))
      ->capture_default_str();
  command.add_option("--log-level", config.logLevel, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->envname("TINYFAAS_LOG_LEVEL")
      ->capture_default_str();
  command.add_option("--max-body-bytes", config.maxBodyBytes, "Largest function input or output, in bytes")
      ->capture_default_str();
  command.add_option("--max-upload-bytes", config.maxUploadBytes, "Largest management API request, in bytes")
      ->capture_default_str();
  command
      .add_option("--max-connections", config.maxConnections,
                  "Connections the HTTP endpoint keeps open at once; beyond it the longest-idle one is closed, "
                  "or the newcomer gets 503 when all are busy")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command
      .add_option("--max-body-bytes-in-flight", config.maxBodyBytesInFlight,
                  "Bytes of request bodies the HTTP endpoint reads or handles at once; a request beyond it gets 503")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command
      .add_option("--management-max-connections", config.managementMaxConnections,
                  "Connections the management API keeps open at once (log followers included)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command
      .add_option("--upload-url-allow", config.uploadUrlAllow,
                  "A CIDR range (repeatable) that tenants' /uploadURL may reach although it is loopback, "
                  "link-local, private or the node's own")
      ->take_all();
  command.add_option("--call-timeout", config.callTimeoutSeconds, "Seconds a function call may take")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command
      .add_option("--shutdown-timeout", config.shutdownTimeoutSeconds,
                  "Seconds calls in flight may take to finish after SIGTERM; those still running then get an "
                  "error answer (503)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  command
      .add_option("--memory-budget-mb", config.memoryBudgetMb,
                  "Memory all handler instances may take together; scaling stays within it (0: no budget)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  command
      .add_option("--memory-budget-counts", config.memoryBudgetCounts,
                  "How the memory budget counts an instance: limit (at its memory_mb: instances can never "
                  "exceed the budget together) or measured (at what its function's instances were last "
                  "measured to use, PSS: more fit, and they may grow past the budget, each up to memory_mb)")
      ->check(CLI::IsMember({"limit", "measured"}))
      ->capture_default_str();
  command
      .add_option("--warm-pool", config.warmPool,
                  "Standbys: sandboxes (or containers) with a runtime started and no function yet, kept per "
                  "runtime of the deployed functions, so that a new instance starts in milliseconds (0: none)")
      ->check(CLI::Range(0, 16))
      ->capture_default_str();
  command
      .add_option("--timeout-grace", config.timeoutGraceSeconds,
                  "Seconds a timed-out call keeps its handler connection and concurrency slot waiting for the "
                  "late answer; an instance still busy with it then is replaced")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  // Aggregate limits (README "Bounded resources"): counts and byte budgets, at least 1.
  const auto limit = [&command](const char* flag, std::size_t& value, const char* help) {
    command.add_option(flag, value, help)
        ->check(CLI::Range(std::size_t{1}, std::numeric_limits<std::size_t>::max()))
        ->capture_default_str();
  };
  limit("--async-max-calls", config.asyncMaxCalls,
        "Asynchronous calls (X-tinyFaaS-Async, CoAP No-Response) running at once; more wait in their queue");
  limit("--async-body-bytes", config.asyncBodyBytes,
        "Bytes of the inputs of all asynchronous calls running together; more wait in their queue");
  limit("--async-queue-limit", config.asyncQueueLimit,
        "Asynchronous calls of one function stored and not finished; beyond it 503 / 5.03");
  limit("--async-store-bytes", config.asyncStoreBytes,
        "Bytes of inputs and results in the asynchronous call store (state dir) together; when full, old results "
        "go first, then new calls get 503 / 5.03");
  limit("--async-max-results", config.asyncMaxResults,
        "Finished asynchronous calls whose results are kept for GET /calls/ID; beyond it the oldest go");
  command
      .add_option("--async-retention", config.asyncRetentionSeconds,
                  "Seconds the result of a finished asynchronous call is kept for GET /calls/ID (and a dead letter "
                  "for GET /calls)")
      ->check(CLI::Range(1, 365 * 86400))
      ->capture_default_str();
  limit("--coap-max-uploads", config.coapMaxUploads, "CoAP block-wise (Block1) uploads in progress; beyond it 5.03");
  limit("--coap-upload-bytes", config.coapUploadBytes,
        "Bytes of all CoAP block-wise uploads in progress together; beyond it 5.03");
  limit("--grpc-max-calls", config.grpcMaxCalls, "gRPC calls in flight; beyond it RESOURCE_EXHAUSTED");
  limit("--grpc-max-connections", config.grpcMaxConnections,
        "gRPC connections open at once; a connection beyond it is closed at once");
  limit("--grpc-body-bytes", config.grpcBodyBytes,
        "Bytes of the inputs of all gRPC calls in flight together; beyond it RESOURCE_EXHAUSTED");
  command.add_option("--mqtt", config.mqtt,
                     "MQTT broker for functions' MQTT triggers, mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (TLS); "
                     "without it triggers stay inactive");
  command.add_option("--mqtt-ca", config.mqttCa,
                     "PEM file of the CA(s) that sign the MQTT broker's certificate, trusted instead of the "
                     "system's CA store (needs mqtts://)");
  command.add_option("--mqtt-credentials", config.mqttCredentials,
                     "File with the MQTT user name on its first line and the password on its second");
  command.add_option("--runtimes-dir", config.runtimesDir, "Folder holding the nodejs and python3 handlers");
  command.add_option("--binary-handler", config.binaryHandler, "The binary runtime's handler executable");
  command.add_option("--node", config.node, "Node.js interpreter for nodejs functions")->capture_default_str();
  command.add_option("--python", config.python,
                     "Python interpreter for python3 functions (default /usr/bin/python3, else python3 in PATH)");
  command.add_option("--npm", config.npm, "npm used to install nodejs dependencies")->capture_default_str();
  command.add_option("--go", config.go, "Go toolchain that builds go functions at deploy (default: go in PATH)")
      ->capture_default_str();
  command
      .add_option("--goproxy", config.goproxy,
                  "GOPROXY of go builds that fetch modules (a go function with vendor/ builds offline; "
                  "--offline makes it off)")
      ->capture_default_str();
  command
      .add_option("--go-cache-mb", config.goCacheMb,
                  "MB the go build caches (one per tenant, in the state dir) may take together; beyond it "
                  "the least recently used go first")
      ->check(CLI::Range(64, 1 << 20))
      ->capture_default_str();
  command
      .add_option("--sandbox-user", config.sandboxUser,
                  "System user that functions and dependency installs run as (never root; needs the daemon to "
                  "be root or have CAP_SETUID and CAP_SETGID)")
      ->capture_default_str();
  command.add_option("--cluster", config.cluster,
                     "Join a cluster of tinyFaaS nodes through NATS JetStream: the servers' URLs, comma-separated "
                     "(nats://HOST:PORT[,nats://HOST:PORT...])");
  command.add_option("--node-name", config.nodeName,
                     "This node's name in the cluster (letters, digits, - and _; default: the host name)");
  command.add_option("--cluster-credentials", config.clusterCredentials,
                     "NATS credentials file (.creds: user JWT and NKey seed) for --cluster");
  command.add_flag("--offline,!--no-offline", config.offline,
                   "The node has no network: dependency installs get none and requirements must be in the upload");
  command.add_flag("--install-scripts,!--no-install-scripts", config.installScripts,
                   "Let dependency installs run packages' own scripts (npm lifecycle scripts, pip source builds), "
                   "inside the install sandbox");
}

namespace {

bool isLoopback(const std::string& address) {
  if (address == "localhost") return true;
  boost::system::error_code ec;
  auto parsed = boost::asio::ip::make_address(address, ec);
  return !ec && parsed.is_loopback();
}

boost::system::result<void, std::string> checkPort(const char* name, int port) {
  if (port < -1 || port > 65535)
    return std::string(name) + " must be between -1 and 65535, got " + std::to_string(port);
  return {};
}

}  // namespace

boost::system::result<void, std::string> finishConfig(DaemonConfig& config) {
  for (auto [name, port] : {std::pair{"--http-port", config.httpPort}, std::pair{"--coap-port", config.coapPort},
                            std::pair{"--grpc-port", config.grpcPort}}) {
    if (auto ok = checkPort(name, port); !ok) return ok;
  }
  if (config.go.empty()) return std::string("--go must name a Go toolchain, e.g. /usr/bin/go");
  // GOPROXY's own syntax: URLs, "direct" and "off", separated by , or |.
  if (config.goproxy.empty() || config.goproxy.find_first_of(" \t\r\n\"'") != std::string::npos)
    return "--goproxy '" + config.goproxy + "' is not a GOPROXY list (URLs, direct or off, separated by commas)";
  if (config.sandboxUser.empty() || config.sandboxUser.find_first_of(" :/\t\n") != std::string::npos)
    return "--sandbox-user '" + config.sandboxUser + "' is not a user name";
  if (config.maxBodyBytesInFlight < config.maxBodyBytes)
    return "--max-body-bytes-in-flight (" + std::to_string(config.maxBodyBytesInFlight) +
           ") must be at least --max-body-bytes (" + std::to_string(config.maxBodyBytes) + ")";
  for (const auto& range : config.uploadUrlAllow) {
    if (auto parsed = parseAddressRange(range); !parsed) return "--upload-url-allow: " + parsed.error();
  }
  if (config.managementPort < 0 || config.managementPort > 65535)
    return "--management-port must be between 0 and 65535, got " + std::to_string(config.managementPort);
  // Refused rather than quietly moved to loopback: the operator asked for
  // a reachable API and would otherwise wonder why nobody can reach it.
  if (config.tokenFile.empty() && !isLoopback(config.managementAddress))
    return "--management-address " + config.managementAddress +
           " is not a loopback address, but without --token-file the management API has no authentication: "
           "give a --token-file or keep it on 127.0.0.1";

  if (!config.cluster.empty()) {
    if (auto servers = cluster::parseServerList(config.cluster); !servers) return "--cluster: " + servers.error();
    if (config.nodeName.empty()) config.nodeName = cluster::defaultNodeName();
    if (!cluster::isValidNodeName(config.nodeName))
      return "--node-name '" + config.nodeName + "' must be 1-64 letters, digits, - or _";
  } else if (!config.nodeName.empty() || !config.clusterCredentials.empty()) {
    return std::string("--node-name and --cluster-credentials need --cluster");
  }

  if (config.stateDir.empty()) {
    if (geteuid() == 0) {
      config.stateDir = "/var/lib/tinyfaas";
    } else if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && *xdg) {
      config.stateDir = fs::path(xdg) / "tinyfaas";
    } else if (const char* home = std::getenv("HOME"); home && *home) {
      config.stateDir = fs::path(home) / ".local" / "state" / "tinyfaas";
    } else {
      return std::string("--state-dir is required: neither HOME nor XDG_STATE_HOME is set");
    }
  }
  config.stateDir = fs::absolute(config.stateDir).lexically_normal();

  const fs::path exeDir = executableDir();
  if (config.runtimesDir.empty()) {
    config.runtimesDir = firstExisting({exeDir / "../share/tinyfaas/runtimes", TINYFAAS_SOURCE_RUNTIMES_DIR});
  }
  if (config.runtimesDir.empty() || !fs::exists(config.runtimesDir / "nodejs" / "handler.js"))
    return "--runtimes-dir: no nodejs/handler.js found in '" + config.runtimesDir.string() + "'";
  config.runtimesDir = fs::canonical(config.runtimesDir);
  if (config.binaryHandler.empty()) {
    config.binaryHandler = firstExisting(
        {exeDir / "../lib/tinyfaas/runtimes/binary/tinyfaas-binary-handler", TINYFAAS_BUILD_BINARY_HANDLER});
  }
  if (config.binaryHandler.empty() || access(config.binaryHandler.c_str(), X_OK) != 0)
    return "--binary-handler: '" + config.binaryHandler.string() + "' is not an executable";
  config.binaryHandler = fs::canonical(config.binaryHandler);
  // Debian's interpreter rather than a version-manager shim, which would not
  // work inside the sandbox.
  if (config.python.empty()) config.python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
  return {};
}

}  // namespace tinyfaas
