#pragma once
// The ports the daemon's listeners actually bound. Any of them may be
// configured as 0 (the kernel picks one), so whoever starts the daemon
// learns them here: one log line, and with --ports-file a JSON file written
// once every listener is bound.

#include <filesystem>
#include <string>

#include <boost/system/result.hpp>

namespace tinyfaas {

struct BoundPorts {
  int management = -1;
  int http = -1;  // -1: the endpoint is disabled
  int coap = -1;
  int grpc = -1;
};

// "management 8080, HTTP 8000, CoAP 5683/udp, gRPC disabled"
std::string describe(const BoundPorts& ports);

// {"management":8080,"http":8000,"coap":5683,"grpc":null}: null for a
// disabled endpoint.
std::string toJson(const BoundPorts& ports);

// Writes toJson(ports) to `file` atomically (a temporary renamed into
// place), so the file's existence means every listener accepts.
boost::system::result<void, std::string> writePortsFile(const std::filesystem::path& file, const BoundPorts& ports);

}  // namespace tinyfaas
