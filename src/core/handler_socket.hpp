#pragma once
// Where a handler instance serves: a Unix socket of this name in the
// instance's own socket directory (STATE/run/NAME.N). The manager checks
// the path fits sockaddr_un, the backends create it (or have the handler
// bind it), and the handler gets the full path as TINYFAAS_SOCKET and as its
// last argument.

#include <filesystem>

namespace tinyfaas {

inline constexpr char kHandlerSocketName[] = "handler.sock";

inline std::filesystem::path handlerSocketPath(const std::filesystem::path& socketDir) {
  return socketDir / kHandlerSocketName;
}

}  // namespace tinyfaas
