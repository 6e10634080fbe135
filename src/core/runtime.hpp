#pragma once

#include <optional>
#include <string_view>

namespace tinyfaas {

// The `env` field of an upload.
enum class Runtime { nodejs, python3, binary };

constexpr std::optional<Runtime> parseRuntime(std::string_view name) {
  if (name == "nodejs") return Runtime::nodejs;
  if (name == "python3") return Runtime::python3;
  if (name == "binary") return Runtime::binary;
  return std::nullopt;
}

constexpr std::string_view toString(Runtime runtime) {
  switch (runtime) {
    case Runtime::nodejs: return "nodejs";
    case Runtime::python3: return "python3";
    case Runtime::binary: return "binary";
  }
  return "unknown";
}

// The shipped handlers that also speak the proxy's length-prefixed framing
// (proxy/handler_frame.hpp) on their socket; every handler speaks HTTP/1.1.
constexpr bool speaksHandlerFrames(Runtime runtime) { return runtime == Runtime::nodejs; }

}  // namespace tinyfaas
