#pragma once
// Optional parts that pull in large libraries (gRPC with protobuf and
// abseil; libcurl with its TLS, Kerberos and LDAP stack) are built as
// loadable modules and loaded on first use. A daemon that never sees a gRPC
// client or a /uploadURL never maps those libraries: they were two thirds of
// its idle memory when linked in (bench/README.md, "Footprint").
//
// A module is tinyfaas-NAME.so, found in the installed tree
// (EXE/../lib/tinyfaas/modules) or else in the build tree it was built in.
// It exports `extern "C" const void* tinyfaas_module_NAME()`, which returns
// its interface: a struct of function pointers that starts with a
// ModuleHeader and is declared in a header of its own, free of the large
// libraries' headers.

#include <filesystem>
#include <string>
#include <type_traits>

#include <boost/system/result.hpp>

namespace tinyfaas {

struct ModuleHeader {
  // The tinyfaas version the module was built for: a module from another
  // build is refused, since the interfaces are C++ types with no stable ABI.
  const char* version;
};

// The folder modules are looked up in first; empty for a build-tree binary.
std::filesystem::path installedModuleDir();

// Loads module `name` once per process (later calls return the same
// interface) and returns its interface. Thread-safe. Errors say which file
// was tried and why it did not load.
boost::system::result<const ModuleHeader*, std::string> loadModule(const std::string& name);

// loadModule, typed: `Api` is the module's interface struct.
template <class Api>
boost::system::result<const Api*, std::string> loadModuleApi(const std::string& name) {
  static_assert(std::is_standard_layout_v<Api> && std::is_same_v<decltype(Api::header), ModuleHeader>,
                "a module interface is a plain struct that starts with `ModuleHeader header;`");
  auto header = loadModule(name);
  if (!header) return header.error();
  return reinterpret_cast<const Api*>(*header);
}

}  // namespace tinyfaas
