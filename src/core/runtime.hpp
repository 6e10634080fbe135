#pragma once

#include <optional>
#include <string_view>

namespace tinyfaas {

// The `env` field of an upload.
enum class Runtime { nodejs, python3, binary, go };

constexpr std::optional<Runtime> parseRuntime(std::string_view name) {
  if (name == "nodejs") return Runtime::nodejs;
  if (name == "python3") return Runtime::python3;
  if (name == "binary") return Runtime::binary;
  if (name == "go") return Runtime::go;
  return std::nullopt;
}

constexpr std::string_view toString(Runtime runtime) {
  switch (runtime) {
    case Runtime::nodejs: return "nodejs";
    case Runtime::python3: return "python3";
    case Runtime::binary: return "binary";
    case Runtime::go: return "go";
  }
  return "unknown";
}

// What an unknown env is told to use instead.
inline constexpr std::string_view kRuntimeNames = "nodejs, python3, binary or go";

// Whether `runtime`'s shipped handler also speaks the proxy's
// length-prefixed framing (proxy/handler_frame.hpp) on its socket; every
// handler speaks HTTP/1.1. All shipped handlers do; a new runtime's says so
// here.
constexpr bool speaksHandlerFrames(Runtime runtime) {
  switch (runtime) {
    case Runtime::nodejs:
    case Runtime::python3:
    case Runtime::binary:
    case Runtime::go: return true;
  }
  return false;
}

// The file a go function is built into at deploy (in its code folder): a
// static binary of fn.go and runtimes/go/tinyfaas_main.go, which is the
// instance's handler on both backends.
inline constexpr std::string_view kGoHandlerFile = ".tinyfaas-handler";

}  // namespace tinyfaas
