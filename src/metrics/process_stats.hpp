#pragma once
// What /metrics reports about the daemon process itself, read from /proc.

#include <chrono>
#include <cstdint>

namespace tinyfaas::metrics {

struct ProcessStats {
  std::uint64_t residentBytes = 0;
  std::uint64_t openFds = 0;
  // Established TCP connections on this process's sockets: HTTP, gRPC and
  // management clients (CoAP is connectionless, handlers use Unix sockets).
  std::uint64_t tcpConnections = 0;
};

// Zeroes what cannot be read (e.g. /proc not mounted) rather than failing.
ProcessStats readProcessStats();

// When the daemon started, for uptime and process_start_time_seconds.
struct StartTime {
  std::chrono::system_clock::time_point wall = std::chrono::system_clock::now();
  std::chrono::steady_clock::time_point steady = std::chrono::steady_clock::now();
};

}  // namespace tinyfaas::metrics
