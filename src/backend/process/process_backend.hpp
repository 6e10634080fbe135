#pragma once
// Handler instances as child processes, each in a bubblewrap sandbox when
// `bwrap` is available: no network, its own code read-only, a private /tmp,
// and nothing of the host but the system's read-only files; as the sandbox
// uid with no capabilities, no_new_privs and a seccomp filter. The daemon
// creates each instance's listening socket and hands it over as fd 3
// (TINYFAAS_LISTEN_FD), so the sandbox needs no path on the host.

#include <chrono>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/result.hpp>

#include "backend/backend.hpp"
#include "backend/process/process_instance.hpp"
#include "backend/standby/handler_control.hpp"
#include "backend/standby/warm_pool.hpp"
#include "core/log_sink.hpp"
#include "sandbox/bwrap_command.hpp"
#include "sandbox/cgroup_limits.hpp"
#include "sandbox/sandbox_identity.hpp"
#include "util/async_sync.hpp"
#include "util/child_process.hpp"

namespace tinyfaas {

enum class SandboxMode { automatic, bwrap, none };

struct ProcessBackendOptions {
  std::filesystem::path runtimesDir;    // holds nodejs/handler.js and python3/handler.py
  std::filesystem::path binaryHandler;  // the binary runtime's handler executable
  std::string node = "node";
  std::string python = "python3";
  SandboxMode sandbox = SandboxMode::automatic;
  std::chrono::milliseconds stopGrace{3000};
  // Who handlers run as; the default (no switch) keeps the daemon's uid.
  sandbox::SandboxIdentity identity;
  // The state dir: handler files the sandbox's uid cannot reach where they
  // are (a checkout under /root) are copied to STATE/sandbox-runtimes.
  std::filesystem::path stateDir;
  // Where instance cgroups go (memory, pids and CPU limits); prepared by
  // the caller. Not enforced: no limits, and limitsUnenforced() says why.
  sandbox::CgroupTree cgroups;
  // Standbys kept per runtime of the deployed functions (warm_pool.hpp);
  // 0: every instance starts its own sandbox and interpreter.
  std::size_t warmPool = 1;
};

class ProcessBackend final : public Backend {
 public:
  // Fails when a required tool is missing (bwrap when asked for explicitly).
  static boost::system::result<std::unique_ptr<ProcessBackend>, std::string> create(
      boost::asio::any_io_executor executor, ProcessBackendOptions options, LogSink& logs);

  ~ProcessBackend() override;
  std::string describe() const override;
  std::string limitsUnenforced() const override;
  // Hands the instance a standby when one is up and the function sets no
  // variable its interpreter reads only at start, and returns once the
  // handler says it serves (at most kReadyWait; then /health polling takes
  // over). Else starts it afresh and returns at once.
  boost::asio::awaitable<boost::system::result<std::unique_ptr<Instance>, std::string>> start(
      InstanceSpec spec, ExitCallback onExit) override;
  boost::asio::awaitable<void> stop(Instance& instance) override;
  void keepWarm(const std::set<Runtime>& runtimes) override;
  // Runs the warm pool until cancel().
  boost::asio::awaitable<void> prepare() override;
  void cancel() override;

  static constexpr std::chrono::seconds kReadyWait{5};
  std::map<Runtime, std::size_t> standbys() override;

  // How an instance is started: the command line, its environment and the
  // descriptors it inherits (the listening socket first, as fd 3; then the
  // control socket, when given).
  struct Launch {
    SpawnOptions spawn;         // inheritFds filled from fds
    sandbox::InheritedFds fds;  // kept open until the child has them
    int listenFd = -1;          // its number in the handler
  };
  boost::system::result<Launch, std::string> launchFor(const InstanceSpec& spec, UniqueFd listener,
                                                       UniqueFd control = {}) const;

 private:
  ProcessBackend(boost::asio::any_io_executor executor, ProcessBackendOptions options, LogSink& logs, std::string bwrap,
                 std::string seccomp);
  std::vector<std::string> handlerCommand(const InstanceSpec& spec) const;
  struct Spawned {
    std::unique_ptr<ProcessInstance> instance;
    boost::asio::local::stream_protocol::socket control;  // not open without one
    int listenFd;
  };
  boost::system::result<Spawned, std::string> spawn(const InstanceSpec& spec, const std::filesystem::path& socket,
                                                    bool control);
  boost::system::result<std::unique_ptr<Standby>, std::string> startStandby(Runtime launcher);
  boost::asio::awaitable<boost::system::result<std::unique_ptr<Instance>, std::string>> handOver(
      std::unique_ptr<ProcessStandby> standby, const InstanceSpec& spec, const ExitCallback& onExit);

  boost::asio::any_io_executor executor_;
  ProcessBackendOptions options_;
  LogSink& logs_;
  std::string bwrap_;    // empty: no sandbox
  std::string seccomp_;  // the BPF program bwrap loads
  // The coroutines waiting for each instance's end: each ends with its
  // instance (stopped or ended by itself), so nothing needs cancelling.
  WaitGroup watching_;
  std::unique_ptr<WarmPool> pool_;  // null with warmPool 0
  int nextStandby_ = 0;
  ReadyWaits readyWaits_;  // cancel() cuts them short
};

}  // namespace tinyfaas
