#include "cli/client_io.hpp"

#include <unistd.h>

#include <cstdlib>
#include <iostream>

namespace tinyfaas::cli {

int ClientIo::fail(int code, const std::string& message) const {
  err << "tinyfaas: " << message << '\n';
  err.flush();
  return code;
}

ClientIo& processIo() {
  static ClientIo io{
      std::cout,
      std::cerr,
      std::cin,
      ::isatty(STDIN_FILENO) == 1,
      ::isatty(STDOUT_FILENO) == 1,
      [](const std::string& name) -> std::optional<std::string> {
        const char* value = std::getenv(name.c_str());
        if (value == nullptr) return std::nullopt;
        return std::string(value);
      },
  };
  return io;
}

std::string managementUrl(const std::string& urlFlag, const ClientIo& io) {
  if (!urlFlag.empty()) return urlFlag;
  if (auto fromEnv = io.getEnv("TINYFAAS_MANAGEMENT_URL"); fromEnv && !fromEnv->empty()) return *fromEnv;
  return "http://localhost:8080";
}

}  // namespace tinyfaas::cli
