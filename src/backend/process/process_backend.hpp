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
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/result.hpp>

#include "backend/backend.hpp"
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
};

class ProcessBackend final : public Backend {
 public:
  // Fails when a required tool is missing (bwrap when asked for explicitly).
  static boost::system::result<std::unique_ptr<ProcessBackend>, std::string> create(
      boost::asio::any_io_executor executor, ProcessBackendOptions options, LogSink& logs);

  std::string describe() const override;
  std::string limitsUnenforced() const override;
  boost::asio::awaitable<boost::system::result<std::unique_ptr<Instance>, std::string>> start(
      InstanceSpec spec, ExitCallback onExit) override;
  boost::asio::awaitable<void> stop(Instance& instance) override;

  // How an instance is started: the command line, its environment and the
  // descriptors it inherits (the listening socket first, as fd 3).
  struct Launch {
    SpawnOptions spawn;         // inheritFds filled from fds
    sandbox::InheritedFds fds;  // kept open until the child has them
  };
  boost::system::result<Launch, std::string> launchFor(const InstanceSpec& spec, UniqueFd listener) const;

 private:
  ProcessBackend(boost::asio::any_io_executor executor, ProcessBackendOptions options, LogSink& logs, std::string bwrap,
                 std::string seccomp);
  std::vector<std::string> handlerCommand(const InstanceSpec& spec) const;

  boost::asio::any_io_executor executor_;
  ProcessBackendOptions options_;
  LogSink& logs_;
  std::string bwrap_;    // empty: no sandbox
  std::string seccomp_;  // the BPF program bwrap loads
  // The coroutines waiting for each instance's end: each ends with its
  // instance (stopped or ended by itself), so nothing needs cancelling.
  WaitGroup watching_;
};

}  // namespace tinyfaas
