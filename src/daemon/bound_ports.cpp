#include "daemon/bound_ports.hpp"

#include <nlohmann/json.hpp>

#include "util/durable_file.hpp"

namespace tinyfaas {

namespace {

std::string portText(int port, const char* suffix = "") {
  return port < 0 ? std::string("disabled") : std::to_string(port) + suffix;
}

nlohmann::json portJson(int port) { return port < 0 ? nlohmann::json(nullptr) : nlohmann::json(port); }

}  // namespace

std::string describe(const BoundPorts& ports) {
  return "management " + portText(ports.management) + ", HTTP " + portText(ports.http) + ", CoAP " +
         portText(ports.coap, "/udp") + ", gRPC " + portText(ports.grpc);
}

std::string toJson(const BoundPorts& ports) {
  nlohmann::json out = nlohmann::json::object();
  out["management"] = portJson(ports.management);
  out["http"] = portJson(ports.http);
  out["coap"] = portJson(ports.coap);
  out["grpc"] = portJson(ports.grpc);
  return out.dump() + "\n";
}

boost::system::result<void, std::string> writePortsFile(const std::filesystem::path& file, const BoundPorts& ports) {
  if (auto written = writeFileDurably(file, toJson(ports)); !written) return "--ports-file: " + written.error();
  return {};
}

}  // namespace tinyfaas
