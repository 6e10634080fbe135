#pragma once
// One container image per runtime (nodejs, python3, binary), built locally
// and offline from the host's own runtime, reused by every function of that
// runtime, and tagged by a digest of its inputs so that it is rebuilt only
// when they change.
//
// Why the host's runtime: no container registry is reachable on many edge
// sites (nor here), so official images cannot be pulled, and debootstrap
// needs a Debian mirror. The host already has the interpreters the process
// backend runs. An image is therefore a root file system FROM scratch with:
//   - the interpreter (node, python3) or the binary handler, every shared
//     library it loads (ELF DT_NEEDED, resolved like ld.so does) and the
//     host's ld.so.cache;
//   - for python3 its standard library (sys.prefix/lib/python3.X without
//     site-packages, dist-packages, the test suite, tkinter, idlelib,
//     ensurepip, lib2to3, the static libpython, optimised .pyc files), and
//     every extension module's libraries (ssl, sqlite3, ctypes, ...);
//   - /bin/sh (dash) and a few coreutils (cat, printenv, env, ...), so that
//     binary functions' fn.sh and shell-outs from other runtimes work;
//   - /etc/passwd and /etc/group with a dedicated user (tinyfaas, uid 10001),
//     nsswitch.conf, the CA bundle; an empty /tmp;
//   - the handler under /opt/tinyfaas.
// It is packed as a tar file and imported with POST /images/create?fromSrc=-
// (one layer, no Dockerfile build step), with USER, WORKDIR and labels as
// import changes.
//
// Measured on this host (Debian 12, node 20 from NodeSource, python 3.11):
// nodejs ~105 MB, python3 ~45 MB, binary ~5 MB; building all three the first
// time takes a few seconds (see bench/docker-bench for the figure).

#include <filesystem>
#include <string>
#include <vector>

#include <boost/system/result.hpp>

#include "backend/docker/rootfs.hpp"
#include "core/runtime.hpp"

namespace tinyfaas::docker {

// The user functions run as inside the container.
inline constexpr unsigned kFunctionUid = 10001;
inline constexpr unsigned kFunctionGid = 10001;

struct RuntimeImageInputs {
  std::filesystem::path runtimesDir;    // nodejs/handler.js, python3/handler.py
  std::filesystem::path binaryHandler;  // tinyfaas-binary-handler
  std::string node = "node";            // found in PATH when it has no '/'
  std::string python = "/usr/bin/python3";
};

struct RuntimeImagePlan {
  Runtime runtime = Runtime::nodejs;
  std::string repository;              // tinyfaas-runtime-<runtime>
  std::vector<std::string> command;    // the handler command, before the socket path
  std::vector<std::string> changes;    // import changes: USER, WORKDIR, LABEL
  std::vector<std::string> smokeTest;  // a command that must exit 0 in a fresh container
  RootfsBuilder rootfs;
};

// Collects the files of `runtime`'s image (reads the host, does not hash).
boost::system::result<RuntimeImagePlan, std::string> planRuntimeImage(Runtime runtime,
                                                                      const RuntimeImageInputs& inputs);

// The first 12 hex digits of the digest of the plan's files and changes.
boost::system::result<std::string, std::string> imageTag(const RuntimeImagePlan& plan);

// Where python3's standard library is for an interpreter at `canonical`
// (e.g. /usr/bin/python3.11 -> /usr/lib/python3.11); exposed for tests.
boost::system::result<std::filesystem::path, std::string> pythonStdlibDir(const std::filesystem::path& canonical);

// Whether a path below the standard library goes into the image.
bool keepInPythonStdlib(const std::filesystem::path& relative);

}  // namespace tinyfaas::docker
