#pragma once
// Handler instances as child processes, each in a bubblewrap sandbox when
// `bwrap` is available: no network, its own code read-only, a private /tmp,
// and nothing of the host but the system's read-only files.

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/result.hpp>

#include "backend/backend.hpp"
#include "core/log_sink.hpp"

namespace tinyfaas {

enum class SandboxMode { automatic, bwrap, none };

struct ProcessBackendOptions {
  std::filesystem::path runtimesDir;    // holds nodejs/handler.js and python3/handler.py
  std::filesystem::path binaryHandler;  // the binary runtime's handler executable
  std::string node = "node";
  std::string python = "python3";
  SandboxMode sandbox = SandboxMode::automatic;
  std::chrono::milliseconds stopGrace{3000};
};

class ProcessBackend final : public Backend {
 public:
  // Fails when a required tool is missing (bwrap when asked for explicitly).
  static boost::system::result<std::unique_ptr<ProcessBackend>, std::string> create(
      boost::asio::any_io_executor executor, ProcessBackendOptions options, LogSink& logs);

  std::string describe() const override;
  boost::asio::awaitable<boost::system::result<std::unique_ptr<Instance>, std::string>> start(
      InstanceSpec spec, ExitCallback onExit) override;
  boost::asio::awaitable<void> stop(Instance& instance) override;

  // The full command line an instance runs with (exposed for tests).
  std::vector<std::string> commandFor(const InstanceSpec& spec) const;

 private:
  ProcessBackend(boost::asio::any_io_executor executor, ProcessBackendOptions options, LogSink& logs,
                 std::string bwrap);
  std::vector<std::string> handlerCommand(const InstanceSpec& spec) const;
  std::vector<std::string> sandboxArguments(const InstanceSpec& spec) const;

  boost::asio::any_io_executor executor_;
  ProcessBackendOptions options_;
  LogSink& logs_;
  std::string bwrap_;  // empty: no sandbox
};

}  // namespace tinyfaas
