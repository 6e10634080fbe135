#pragma once
// Every setting of `tinyfaas serve`, with its flag, environment variable and
// default in one place.

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/system/result.hpp>

namespace tinyfaas {

struct DaemonConfig {
  std::string managementAddress = "localhost";  // 127.0.0.1 and ::1
  int managementPort = 8080;
  std::string address = "::";  // function endpoints: dual-stack
  int httpPort = 8000;         // -1 disables, as upstream
  int coapPort = 5683;
  int grpcPort = 9000;
  // Every port may be 0 (the kernel picks one); the bound ones are logged
  // and, with this, written as JSON once all listeners are bound.
  std::filesystem::path portsFile;
  std::filesystem::path stateDir;
  std::filesystem::path tokenFile;  // bearer tokens; without it the management API stays on loopback
  std::string backend = "auto";     // docker when its engine answers, else process
  std::string sandbox = "auto";
  std::string dockerHost;               // unix:///path or a path; "" = /var/run/docker.sock
  std::string runtimeImages = "local";  // docker backend: local (built from this host) or official
  std::string logLevel = "info";
  std::size_t maxBodyBytes = 16u << 20;
  std::size_t maxUploadBytes = 100u << 20;
  // HTTP servers' limits (net/http_server.hpp). The defaults suit a
  // Raspberry Pi; the daemon lowers the connection caps when the fd limit
  // would not hold them.
  std::size_t maxConnections = 1024;             // HTTP endpoint
  std::size_t maxBodyBytesInFlight = 64u << 20;  // HTTP endpoint
  std::size_t managementMaxConnections = 32;
  std::vector<std::string> uploadUrlAllow;  // CIDR ranges tenants' /uploadURL may reach besides public addresses
  int callTimeoutSeconds = 60;
  int shutdownTimeoutSeconds = 30;           // SIGTERM: how long calls in flight may finish
  int memoryBudgetMb = 0;                    // all instances together; 0: none
  std::string memoryBudgetCounts = "limit";  // "limit" (memory_mb) or "measured" (PSS)
  std::size_t warmPool = 1;                  // standbys per runtime in use; 0: none
  // Timed-out calls and aggregate limits of the function endpoints (README
  // "Bounded resources"): what a client can make the node hold at once.
  double timeoutGraceSeconds = 5;           // a timed-out call's late answer is awaited this long
  std::size_t asyncMaxCalls = 1024;         // X-tinyFaaS-Async and CoAP No-Response calls running at once
  std::size_t asyncBodyBytes = 32u << 20;   // their inputs together
  std::size_t asyncQueueLimit = 1000;       // asynchronous calls stored and not finished, per function
  std::size_t asyncStoreBytes = 64u << 20;  // inputs and results in the asynchronous call store together
  std::size_t asyncMaxResults = 10000;      // finished asynchronous calls kept for GET /calls/ID
  int asyncRetentionSeconds = 3600;         // ... for this long
  std::size_t coapMaxUploads = 64;          // CoAP block-wise uploads in progress
  std::size_t coapUploadBytes = 32u << 20;  // their bytes together
  std::size_t grpcMaxCalls = 1024;          // gRPC calls in flight
  std::size_t grpcMaxConnections = 1024;    // gRPC connections open
  std::size_t grpcBodyBytes = 32u << 20;    // inputs of gRPC calls in flight together
  // MQTT triggers (src/mqtt_triggers): the broker, empty for none.
  std::string mqtt;
  std::filesystem::path mqttCa;           // PEM: the CAs of the broker's certificate, instead of the system's store
  std::filesystem::path mqttCredentials;  // user name on the first line, password on the second
  std::filesystem::path runtimesDir;
  std::filesystem::path binaryHandler;
  std::string node = "node";
  std::string python;
  std::string npm = "npm";
  std::string go = "go";                                    // the toolchain go functions are built with
  std::string goproxy = "https://proxy.golang.org,direct";  // GOPROXY of go builds ("off" when offline)
  int goCacheMb = 1024;                                     // all go build caches together
  // Who uploaded code (handlers, per-call processes, dependency installs)
  // runs as; see sandbox/sandbox_identity.hpp.
  std::string sandboxUser = "tinyfaas-sandbox";
  // Cluster mode (src/cluster): NATS server URLs, comma-separated; empty: one node alone.
  std::string cluster;
  std::string nodeName;                      // default: the host name
  std::filesystem::path clusterCredentials;  // a NATS .creds file
  bool offline = false;                      // dependency installs get no network at all
  bool installScripts = false;               // npm/pip may run packages' own install scripts
};

// Declares the options on `command`, writing into `config`.
void addDaemonOptions(CLI::App& command, DaemonConfig& config);

// Fills defaults that depend on the machine (state dir, runtime files,
// python) and checks the values; the error names the offending setting.
boost::system::result<void, std::string> finishConfig(DaemonConfig& config);

}  // namespace tinyfaas
