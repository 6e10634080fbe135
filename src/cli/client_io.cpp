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
      ::isatty(STDERR_FILENO) == 1,
  };
  return io;
}

}  // namespace tinyfaas::cli
