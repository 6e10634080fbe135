#pragma once
// One handler process of the process backend (bwrap and the runtime in it,
// or the runtime alone without a sandbox), and a standby: one started
// ahead of need with no function yet (backend/standby/).

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include <boost/asio/local/stream_protocol.hpp>

#include "backend/backend.hpp"
#include "backend/standby/standby.hpp"
#include "sandbox/cgroup_limits.hpp"
#include "util/async_sync.hpp"
#include "util/child_process.hpp"

namespace tinyfaas {

// Whose lines a handler's output is: a standby's change when it is handed
// a function.
struct LogLabel {
  std::string function;
  std::string instance;
};

class ProcessInstance final : public Instance {
 public:
  ProcessInstance(boost::asio::any_io_executor executor, std::string id, std::filesystem::path socket)
      : ended(std::move(executor)), id_(std::move(id)), socket_(std::move(socket)) {}
  const std::string& id() const override { return id_; }
  std::filesystem::path socketPath() const override { return socket_; }
  pid_t hostPid() const override { return child ? child->pid() : 0; }
  bool saidReady() const override { return ready; }
  void rename(std::string id) { id_ = std::move(id); }

  AsyncEvent ended;  // set once the child has ended
  std::unique_ptr<ChildProcess> child;
  std::unique_ptr<sandbox::InstanceCgroup> cgroup;  // null without limits
  std::shared_ptr<LogLabel> label = std::make_shared<LogLabel>();
  ExitCallback onExit;  // once, when it ends without stop()
  // A standby's folder, bound read-only into its sandbox; the function's
  // code is linked into it at the handover. Removed with the instance.
  std::filesystem::path slotDir;
  bool stopping = false;
  bool ready = false;  // its handler said "ready" on the control socket

 private:
  std::string id_;
  std::filesystem::path socket_;
};

class ProcessStandby final : public Standby {
 public:
  ProcessStandby(Runtime launcher, std::unique_ptr<ProcessInstance> instance,
                 boost::asio::local::stream_protocol::socket control, int listenFd)
      : Standby(launcher, std::move(control)), instance(std::move(instance)), listenFd(listenFd) {}
  bool ended() const override { return instance->ended.isSet(); }
  void onEnd(ExitCallback callback) override { instance->onExit = std::move(callback); }

  std::unique_ptr<ProcessInstance> instance;
  int listenFd = -1;  // its listening socket's number in the handler
};

}  // namespace tinyfaas
