#pragma once
// What the function manager needs from wherever handler instances run
// (child processes or containers).

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include "core/handler_socket.hpp"
#include "core/runtime.hpp"

namespace tinyfaas {

// Per-function limits from the optional upload fields `memory_mb`, `cpus`
// and `egress`. Backends that cannot enforce one say so in their docs.
struct ResourceLimits {
  int memoryMb = 256;   // per instance
  double cpus = 1.0;    // CPU share per instance
  bool egress = false;  // may the function open network connections?
};

struct InstanceSpec {
  std::string function;
  std::string instanceId;  // unique on this node, e.g. "echo.7"
  Runtime runtime = Runtime::nodejs;
  std::filesystem::path codeDir;    // the function's files; read-only for the instance
  std::filesystem::path socketDir;  // the handler serves on handlerSocketPath(socketDir)
  std::vector<std::string> env;     // "K=V" from the upload
  ResourceLimits limits;
};

// A running handler instance.
class Instance {
 public:
  virtual ~Instance() = default;
  virtual const std::string& id() const = 0;
  virtual std::filesystem::path socketPath() const = 0;
  // The instance's first process as this host sees it (the sandbox's, the
  // container's), whose tree is what the instance costs in memory; 0 while
  // not known.
  virtual pid_t hostPid() const { return 0; }
  // True when the handler itself said it serves calls (the process
  // backend's control socket): no /health probe needed.
  virtual bool saidReady() const { return false; }
};

// Called once when an instance ends without stop() having been asked for;
// the argument says how (e.g. "exited with status 3", "killed by signal 9").
using ExitCallback = std::function<void(std::string how)>;

// Lives on the management thread: every method is called there and every
// callback runs there.
class Backend {
 public:
  virtual ~Backend() = default;
  // A short description for the startup log, e.g. "process (bubblewrap sandbox)".
  virtual std::string describe() const = 0;
  // Why memory_mb, cpus and the pids limit are not enforced; empty when
  // they are.
  virtual std::string limitsUnenforced() const { return {}; }
  // Starts an instance; it is not yet known to be healthy when this returns.
  virtual boost::asio::awaitable<boost::system::result<std::unique_ptr<Instance>, std::string>> start(
      InstanceSpec spec, ExitCallback onExit) = 0;
  // Stops an instance: asks it to end, then forces it after a grace period.
  virtual boost::asio::awaitable<void> stop(Instance& instance) = 0;
  // Readies what instances need ahead of the first start (the docker
  // backend's runtime images); start() waits for it where it must. Logs its
  // own failures: a start tries again.
  virtual boost::asio::awaitable<void> prepare() { co_return; }
  // The runtimes of the deployed functions, whenever they change: a backend
  // that starts handlers ahead of need (standbys, backend/standby/)
  // does so for these.
  virtual void keepWarm(const std::set<Runtime>& runtimes) { (void)runtimes; }
  // Those handlers up and waiting, per runtime that starts them.
  virtual std::map<Runtime, std::size_t> standbys() { return {}; }
  // At shutdown: ends prepare() and starts still waiting for it as soon as
  // they can (they fail). Instances already running are left to stop().
  virtual void cancel() {}
};

}  // namespace tinyfaas
